"""The client's IP address, the one answer audit, login lockout (django-axes), rate limits
(django-ratelimit) and the request log all use.

Behind a reverse proxy REMOTE_ADDR is the proxy, and the client is in X-Forwarded-For, which
anyone can also write. Only what a trusted proxy appended is believed: starting from the peer
(REMOTE_ADDR), while the address in hand is one of TRUSTED_PROXIES (CIDRs), step one entry left
in X-Forwarded-For; the first address that is not a trusted proxy is the client. A peer that is
not a trusted proxy is itself the client, whatever headers it sends.

Why not django-ipware (8.0): its trusted-proxy list is matched against the last entries of the
header, never against REMOTE_ADDR, so a client reaching the app directly can write a chain that
passes; and when the chain fails it falls back to other headers. Here the peer is the anchor.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Longer than any real chain; a header past this is cut (we only ever read its right end).
MAX_HEADER_CHARS = 4096


def parse_networks(cidrs) -> tuple:
    """The networks of a TRUSTED_PROXIES value (CIDRs or single addresses); raises ValueError
    naming a bad entry (settings.py turns it into a start-up error naming the variable)."""
    out = []
    for cidr in cidrs:
        try:
            out.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"not an IP network: {cidr!r}") from exc
    return tuple(out)


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple:
    return parse_networks(cidrs)


def parse_ip(text: str | None) -> IPAddress | None:
    """An address as a proxy writes it ("203.0.113.7", "2001:db8::1", "[2001:db8::1]"), IPv4-mapped
    IPv6 folded to IPv4; None for anything else (ports, names, "unknown")."""
    if not text:
        return None
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if "%" in text:  # a zone id never names a client on the internet
        return None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _trusted(ip: IPAddress, networks) -> bool:
    return any(ip.version == net.version and ip in net for net in networks)


def resolve(remote_addr: str | None, forwarded_for: str | None, networks) -> str | None:
    """The client address given the peer and its X-Forwarded-For (see the module docstring)."""
    peer = parse_ip(remote_addr)
    if peer is None:
        return None
    if not networks or not forwarded_for or not _trusted(peer, networks):
        return str(peer)
    client = peer
    for hop in reversed(forwarded_for[-MAX_HEADER_CHARS:].split(",")):
        ip = parse_ip(hop)
        if ip is None:
            # What a trusted proxy appends is always an address; anything else came from the
            # client side, so the last address a trusted hop vouched for is the best we know.
            break
        client = ip
        if not _trusted(ip, networks):
            break
    return str(client)


def client_ip(request) -> str | None:
    """The client's address for this request (None without a request or a usable REMOTE_ADDR)."""
    if request is None:
        return None
    meta = request.META
    cached = meta.get("mdm.client_ip")
    if cached is not None:
        return cached or None
    ip = resolve(meta.get("REMOTE_ADDR"), meta.get("HTTP_X_FORWARDED_FOR"), _networks(tuple(settings.TRUSTED_PROXIES)))
    meta["mdm.client_ip"] = ip or ""
    return ip


def client_ip_for_limits(request) -> str:
    """client_ip for django-ratelimit (RATELIMIT_IP_META_KEY), which needs a string: requests
    without a usable address share one bucket."""
    return client_ip(request) or "0.0.0.0"
