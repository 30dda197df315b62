"""The exception tree, and how long to wait before trying again.

Transient errors are retried with backoff, permanent ones recorded (`transient` on a
fetch error; `worker.pipeline.retries` for a task's run). One formula says how long to
wait (`backoff_delay`): feed polls after errors, page fetches, database retries, delivery
attempts and a destination's circuit all use it, each with its own base, cap and jitter.
"""

from __future__ import annotations

import random

_RNG = random.Random()


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


class OriginalUndecided(StorywatchError):
    """A copy's original is stored but not decided yet: the copy is counted as one more
    report of the original's story, so it waits (a retry) until that story is known."""


class StoryBusy(StorywatchError):
    """Another transaction holds the story's lock, and this one decides items it took
    along (worker.pipeline.deciding.decide_ready), which never wait for a lock: waiting
    while holding other stories' locks is how two deciders deadlock."""


def backoff_delay(
    failures: int,
    *,
    base: float,
    cap: float,
    jitter: float = 1.0,
    floor: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait after `failures` failures in a row (1 = the first).

    The window doubles from `base` (base * 2^(failures-1)) up to `cap`; the wait is drawn
    uniformly from its last `jitter` share: 1.0 is full jitter (anywhere in the window,
    which spreads many clients retrying one recovering server; AWS Architecture Blog,
    "Exponential Backoff And Jitter"), 0.1 keeps a polite minimum of 90% of the window,
    0.0 is no jitter. A server's Retry-After is a minimum (`floor`, RFC 9110 §10.2.3), but
    the cap still wins, so a bogus "Retry-After: 31536000" cannot park work for a year.
    """
    if failures < 1:
        raise ValueError(f"attempt numbers start at 1, got {failures}")
    if not 0.0 <= jitter <= 1.0:
        raise ValueError(f"jitter is a share of the window (0 to 1), got {jitter}")
    window = min(cap, base * 2.0 ** min(failures - 1, 64))
    delay = (rng if rng is not None else _RNG).uniform(window * (1.0 - jitter), window)
    if floor is not None:
        delay = max(delay, floor)
    return min(delay, cap)
