"""Who may read and who may write on the desk.

Reads: loopback clients, or anyone when `public_reads`. Writes: the API wants
`Authorization: Bearer <STORYWATCH_WEB_TOKEN>` (none: 401, another: 403); forms want an
HttpOnly, SameSite=Strict cookie set by /login, plus a CSRF field, both keyed hashes of
the token, never the token itself (another site can neither read the cookie nor make the
browser send it, and whoever reads a browser's cookies gets no API token).
With no token configured, every write is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

COOKIE = "storywatch_token"


def is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


def same_token(given: str | None, token: str | None) -> bool:
    """Constant-time comparison; False when either is missing."""
    if not given or not token:
        return False
    return hmac.compare_digest(given.encode(), token.encode())


def session_value(token: str) -> str:
    """The cookie of a signed-in browser: a keyed hash of the token. A copied cookie signs
    in the desk's forms but is no Bearer token for the API; changing the token ends every
    session."""
    return _keyed(token, b"storywatch-session")


def csrf_value(token: str) -> str:
    """The CSRF field of a signed-in browser: a keyed hash, never the token itself."""
    return _keyed(token, b"storywatch-csrf")


def _keyed(token: str, purpose: bytes) -> str:
    """A value derived from the token for one purpose, from which neither the token nor
    another purpose's value can be computed."""
    return hmac.new(token.encode(), purpose, hashlib.sha256).hexdigest()


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None
