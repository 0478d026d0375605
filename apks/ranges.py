"""HTTP Range for the device download (RFC 9110 §14): one byte range, or the whole file.

A server may ignore a Range it does not like, so anything but one well-formed `bytes` range is
served whole (200): several ranges, another unit, bad syntax, an If-Range that is not the
current ETag (the file changed: resuming would splice two files). Only a well-formed range
that starts past the end is unsatisfiable (416)."""

import re

# ASCII digits only (int() would also take other scripts' digits and underscores), bounded.
_RANGE = re.compile(r"bytes[ \t]*=[ \t]*([0-9]{0,30})[ \t]*-[ \t]*([0-9]{0,30})[ \t]*", re.ASCII | re.IGNORECASE)
MAX_HEADER = 200


class Unsatisfiable(Exception):
    pass


def byte_range(header: str | None, size: int, *, if_range: str | None = None, etag: str = "") -> tuple[int, int] | None:
    """(first, last) inclusive, None for the whole file, or Unsatisfiable."""
    if not header or len(header) > MAX_HEADER:
        return None
    if if_range is not None and if_range.strip() != etag:
        return None
    match = _RANGE.fullmatch(header.strip())
    if not match:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise Unsatisfiable
        return max(0, size - n), size - 1
    start = int(first)
    end = int(last) if last != "" else size - 1
    if last != "" and end < start:
        return None  # invalid: ignored
    if start >= size:
        raise Unsatisfiable
    return start, min(end, size - 1)
