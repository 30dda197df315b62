"""The one guarded HTTP layer: every outbound GET for feeds and pages goes through here.

What it guarantees, per request:
1. timeouts on connect and on every read, plus an overall deadline that also bounds a
   server dripping bytes (enforced inside the socket wrapper, so headers count too);
2. a cap on the *decoded* body size, applied while decompressing, so a gzip bomb is
   stopped after at most `max_bytes` of output instead of after inflating in memory;
3. an SSRF guard: the host is resolved here, every address is checked, and the socket
   connects to the checked IP (so DNS rebinding cannot swap it), on every redirect hop;
4. conditional GET (RFC 9110 §13.1.1 If-None-Match, §13.1.3 If-Modified-Since);
5. one table mapping failures to `TransientFetchError` / `PermanentFetchError`.

It must not: keep a module-level client, send cookies or credentials, use proxies from
the environment (a proxy would bypass the address guard), or let feedparser/trafilatura
fetch anything. DNS lookups use the system resolver, whose own timeout applies.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType

import httpx

from worker import __version__
from worker.errors import (
    BlockedAddressError,
    FetchError,
    PermanentFetchError,
    ResponseTooLargeError,
    TransientFetchError,
)
from worker.fetch.guard import REQUEST_DEADLINE, AddressRefused, GuardedTransport
from worker.models import FetchResult

DEFAULT_USER_AGENT = f"storywatch/{__version__} (+https://github.com/storywatch)"
MAX_RETRY_AFTER_SECONDS = 86_400.0  # never let a server park a feed for more than a day
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_PERMANENT_REDIRECTS = frozenset({301, 308})
_ALLOW_HINT = "set STORYWATCH_ALLOW_PRIVATE_NETWORKS=true to allow private networks"
_CHUNK = 64 * 1024
_BODY_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """Limits for every request a `GuardedClient` makes."""

    connect_timeout: float = 10.0
    read_timeout: float = 20.0  # per socket read
    deadline_seconds: float = 30.0  # whole request: connect, headers, body, redirects
    max_bytes: int = 5 * 1024 * 1024  # decoded body
    max_redirects: int = 5
    user_agent: str = DEFAULT_USER_AGENT
    allow_private_networks: bool = False


# ---------------------------------------------------------------------------------------
# Error mapping


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After value (RFC 9110 §10.2.3), capped at one day.

    Both forms are accepted: delta-seconds ("120") and an HTTP-date. Dates in the past give
    0; anything unparseable gives None (the caller falls back to its own backoff).
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        seconds = float(text)
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; "-0000" parses as naive
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def error_for_status(
    url: str, status: int, retry_after: str | None, now: datetime, *, final_url: str | None = None
) -> FetchError:
    """The error for a non-success status: 408, 429 and 5xx retry later, other codes do not.

    `url` is the URL asked for (kept on the error); `final_url` the hop that answered.
    """
    where = url if final_url in (None, url) else f"{final_url} (redirected from {url})"
    if status in (408, 429) or 500 <= status <= 599:
        return TransientFetchError(
            f"GET {where} returned HTTP {status}",
            url=url,
            status_code=status,
            retry_after_seconds=parse_retry_after(retry_after, now),
        )
    return PermanentFetchError(f"GET {where} returned HTTP {status}", url=url, status_code=status)


# One table from transport exceptions to outcomes (first match wins).
_TRANSPORT_ERRORS: tuple[tuple[type[Exception], type[FetchError], str], ...] = (
    (httpx.TimeoutException, TransientFetchError, "timed out"),
    (httpx.UnsupportedProtocol, PermanentFetchError, "unsupported URL"),
    (httpx.LocalProtocolError, PermanentFetchError, "invalid request"),
    (httpx.InvalidURL, PermanentFetchError, "invalid URL"),
    (httpx.TransportError, TransientFetchError, "connection failed"),
)


def error_for_exception(url: str, exc: Exception) -> FetchError:
    """Map an httpx exception to our error tree (timeouts and network failures retry)."""
    for exc_type, error_type, what in _TRANSPORT_ERRORS:
        if isinstance(exc, exc_type):
            return error_type(f"GET {url} {what}: {exc}", url=url)
    return TransientFetchError(f"GET {url} failed: {exc!r}", url=url)


# ---------------------------------------------------------------------------------------
# Bounded decoding


# zlib window bits per Content-Encoding we ask for. RFC 9110 §8.4.1.2 says "deflate" is the
# zlib format; servers that send raw deflate instead are retried below.
_WBITS = {"gzip": zlib.MAX_WBITS | 16, "x-gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS}


def _decode_bounded(chunks: Iterable[bytes], encoding: str, limit: int) -> Iterator[bytes]:
    """Decompress `chunks`, yielding pieces of at most 64 KB and stopping past `limit`.

    httpx's own decoders inflate a whole network chunk at once (a 64 KB gzip chunk of
    zeros is ~64 MB), so we use zlib's `max_length` and stop as soon as the cap is passed.
    """
    if encoding in ("", "identity"):
        yield from chunks
        return
    wbits = _WBITS.get(encoding)
    if wbits is None:
        raise ValueError(f"unsupported Content-Encoding {encoding!r}")
    decoder = zlib.decompressobj(wbits)
    produced, started, trailing = 0, False, False
    for chunk in chunks:
        data = chunk
        while data and produced <= limit:
            try:
                out = decoder.decompress(data, min(_CHUNK, limit + 1 - produced))
            except zlib.error:
                if trailing:  # junk after a complete gzip member: ignore, as browsers do
                    return
                if started or encoding != "deflate" or wbits < 0:
                    raise
                wbits = -zlib.MAX_WBITS  # servers that send raw deflate despite the RFC
                decoder = zlib.decompressobj(wbits)
                continue
            started = True
            produced += len(out)
            if out:
                yield out
            data = decoder.unconsumed_tail
            if decoder.eof:
                if encoding == "deflate":
                    return
                # A further gzip member (RFC 1952 §2.2) may follow, in this chunk or, when
                # the member ended exactly at a network read, in the next one.
                data = decoder.unused_data
                decoder, trailing = zlib.decompressobj(wbits), True
        if produced > limit:
            return
    yield decoder.flush()


# ---------------------------------------------------------------------------------------
# The client


class GuardedClient:
    """A sync HTTP client enforcing `FetchPolicy`. Use as a context manager; share per worker."""

    def __init__(self, policy: FetchPolicy | None = None) -> None:
        self.policy = policy or FetchPolicy()
        p = self.policy
        self._client = httpx.Client(
            transport=GuardedTransport(allow_private_networks=p.allow_private_networks),
            timeout=httpx.Timeout(p.read_timeout, connect=p.connect_timeout),
            follow_redirects=False,  # each hop is checked and counted below
            trust_env=False,  # no env proxies (they would bypass the guard), no .netrc
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),  # keep none
            headers={"User-Agent": p.user_agent, "Accept-Encoding": "gzip, deflate"},
        )

    def __enter__(self) -> GuardedClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str | None = None,
    ) -> FetchResult:
        """GET `url` following up to `max_redirects` redirects; 2xx or 304, else raise.

        `etag`/`last_modified` are the validators of the previous response; a 304 comes
        back as a FetchResult with an empty body (RFC 9110 §15.4.5).
        """
        headers = {"Accept": accept or "*/*"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        token = REQUEST_DEADLINE.set(time.monotonic() + self.policy.deadline_seconds)
        try:
            return self._follow(url, headers)
        finally:
            REQUEST_DEADLINE.reset(token)

    def _follow(self, url: str, headers: dict[str, str]) -> FetchResult:
        current = url
        moved_to: str | None = None
        permanent = True  # every hop so far was a permanent redirect
        for _hop in range(self.policy.max_redirects + 1):
            target = _checked_url(url, current)
            try:
                with self._client.stream("GET", target, headers=headers) as response:
                    location = response.headers.get("location")
                    if response.status_code in _REDIRECT_STATUSES and location:
                        current = str(target.join(location))
                        permanent = permanent and response.status_code in _PERMANENT_REDIRECTS
                        moved_to = current if permanent else moved_to
                        continue
                    return replace(self._result(url, response), moved_to=moved_to)
            except AddressRefused as refused:
                raise _blocked(url, current, refused) from None
            except httpx.HTTPError as exc:
                deadline = REQUEST_DEADLINE.get() or float("inf")
                if isinstance(exc, httpx.TimeoutException) and time.monotonic() > deadline - 0.01:
                    raise TransientFetchError(
                        f"GET {url} exceeded the {self.policy.deadline_seconds:g}s deadline",
                        url=url,
                    ) from exc
                raise error_for_exception(url, exc) from exc
        raise PermanentFetchError(
            f"GET {url} redirected more than {self.policy.max_redirects} times", url=url
        )

    def _result(self, url: str, response: httpx.Response) -> FetchResult:
        status, final_url, headers = response.status_code, str(response.url), response.headers
        if status != 304 and not 200 <= status <= 299:
            retry_after, now = headers.get("retry-after"), datetime.now(UTC)
            raise error_for_status(url, status, retry_after, now, final_url=final_url)
        body = b"" if status == 304 else self._read_body(url, response)
        return FetchResult(
            url=final_url,
            status_code=status,
            # The body we return is decoded: encoding and length headers would now lie.
            headers={k.lower(): v for k, v in headers.items() if k.lower() not in _BODY_HEADERS},
            body=body,
            etag=headers.get("etag"),
            last_modified=headers.get("last-modified"),
        )

    def _read_body(self, url: str, response: httpx.Response) -> bytes:
        limit, status = self.policy.max_bytes, response.status_code
        encoding = response.headers.get("content-encoding", "").strip().lower()
        declared = response.headers.get("content-length", "")
        too_large = f"GET {url}: body exceeds the {limit} byte cap"
        if not encoding and declared.isdigit() and int(declared) > limit:
            too_large += f" (Content-Length: {declared})"
            raise ResponseTooLargeError(too_large, url=url, status_code=status)
        parts: list[bytes] = []
        size = 0
        try:
            for piece in _decode_bounded(response.iter_raw(_CHUNK), encoding, limit):
                size += len(piece)
                if size > limit:  # counted after decoding: a gzip bomb stops here
                    raise ResponseTooLargeError(too_large, url=url, status_code=status)
                parts.append(piece)
        except (ValueError, zlib.error) as exc:
            raise PermanentFetchError(
                f"GET {url}: cannot decode {encoding} body: {exc}", url=url, status_code=status
            ) from exc
        return b"".join(parts)


def _checked_url(asked: str, current: str) -> httpx.URL:
    try:
        target = httpx.URL(current)
    except httpx.InvalidURL as exc:
        raise PermanentFetchError(f"invalid URL {current!r}: {exc}", url=asked) from exc
    if target.scheme not in ("http", "https") or not target.host:
        raise PermanentFetchError(
            f"refusing to fetch {current!r}: only http and https URLs with a host", url=asked
        )
    return target


def _blocked(asked: str, current: str, refused: AddressRefused) -> BlockedAddressError:
    where = current if current == asked else f"{current} (redirected from {asked})"
    hint = _ALLOW_HINT if refused.allowable else "never allowed"
    return BlockedAddressError(f"refusing to fetch {where}: {refused.why} ({hint})", url=asked)
