"""Files only their owner may read (the embedded default's secret key, the first admin's password).

`write_text()` then `chmod(0o600)` left a window in which the file existed with the umask's mode
(0o644 under the usual 022): anyone on the machine could read the key in between, and a crash in
between left it readable for good. Here the bytes go into a new file that is created 0o600 (a
umask can only take bits away, so it is never wider) and is moved into place only once complete,
so the name is never readable by others nor half-written. No Django import: settings use it.
"""

import os
import secrets
from contextlib import suppress
from pathlib import Path

MODE = 0o600


def write_private(path: Path, text: str, *, replace: bool = True) -> bool:
    """Write `text` to `path` with mode 0o600. With `replace=False` an existing file wins (two
    processes starting at once agree on one secret): returns False and leaves it as it was."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temp, path)
            return True
        try:
            os.link(temp, path)  # atomic, and fails if another process got there first
        except FileExistsError:
            return False
        return True
    finally:
        with suppress(FileNotFoundError):
            os.unlink(temp)


def restrict(path: Path) -> None:
    """Take group and other bits off a file written by an older version."""
    path = Path(path)
    if path.stat().st_mode & 0o077:
        path.chmod(MODE)
