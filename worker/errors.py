"""The exception tree: transient errors are retried with backoff, permanent ones recorded.

One rule decides outcomes (`is_transient`), not `except` ladders spread over the code.
"""

from __future__ import annotations


class StorywatchError(Exception):
    """Base of every error storywatch raises on purpose."""


class ConfigError(StorywatchError):
    """Configuration is invalid. `problems` lists every problem found, with file and key."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n  - " + "\n  - ".join(problems))


class FetchError(StorywatchError):
    """A fetch failed. `url` is the URL asked for; `status_code` is set for HTTP errors."""

    transient = False

    def __init__(
        self,
        message: str,
        *,
        url: str,
        status_code: int | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        self.url = url
        self.status_code = status_code
        self.retry_after_seconds = retry_after_seconds
        super().__init__(message)


class TransientFetchError(FetchError):
    """Timeouts, connection failures, 408/429/5xx: worth trying again later."""

    transient = True


class PermanentFetchError(FetchError):
    """4xx (other than 408/429), bad scheme, unparseable URL: retrying now will not help."""


class BlockedAddressError(PermanentFetchError):
    """The URL resolves to a private, loopback, link-local or metadata address."""


class ResponseTooLargeError(PermanentFetchError):
    """The body (after decompression) exceeded the configured size cap."""


class FeedParseError(StorywatchError):
    """The bytes are not a feed feedparser can read (no entries and a fatal bozo error)."""


class ExtractionError(StorywatchError):
    """No usable main text could be extracted from a page."""


def is_transient(exc: BaseException) -> bool:
    """True when trying again later may succeed."""
    if isinstance(exc, FetchError):
        return exc.transient
    # Database and broker hiccups surface as these; anything else is a bug or bad input.
    return isinstance(exc, ConnectionError | TimeoutError)
