"""What a failed run of `store_item` or `decide_item` does next: one table from exceptions
to outcomes.

The task asks `item_retry` and does what it says: retry after the delay (recording the
error on the item first, unless the database itself failed), or record the error and
let the run fail, leaving the item to the sweep. Waits come from the one backoff formula,
`worker.errors.backoff_delay`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError, OperationalError

from worker.errors import OriginalUndecided, TransientFetchError, backoff_delay
from worker.settings import Settings

# Below the broker's visibility timeout (900 s, celery_app.py), past which an unacked
# message still waiting for its countdown would be handed to a second worker.
MAX_COUNTDOWN_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class RetryRule:
    errors: tuple[type[BaseException], ...]
    event: str  # the log event of a retry
    note_on_item: bool  # record the error on the item (not when the database failed)
    base: Callable[[Settings], float]  # the first wait, in seconds
    jitter: float  # share of each window the wait is drawn from (see backoff_delay)


ITEM_RETRIES = (
    # A page that timed out or answered 429/5xx: its host may ask for a wait (Retry-After);
    # at least half of each window, so a struggling host is not hit again at once.
    RetryRule((TransientFetchError,), "item.retry_page", True, lambda s: s.page_retry_seconds, 0.5),
    # Lock timeouts and a lost insert race with another worker: the next run sees the
    # winner's rows and finishes as a duplicate or rehash.
    RetryRule((OperationalError, IntegrityError), "item.retry_database", False, lambda _: 2.0, 1.0),
    # A copy stored moments after its original, which the decider has not reached yet.
    RetryRule((OriginalUndecided,), "item.wait_original", False, lambda _: 1.0, 1.0),
)


def item_retry(
    exc: BaseException, failures: int, settings: Settings
) -> tuple[RetryRule, float] | None:
    """The rule for `exc` and the seconds to wait after `failures` failed runs (1 = the
    first); None: not worth retrying now (a bug or bad input: the sweep takes it up)."""
    for rule in ITEM_RETRIES:
        if isinstance(exc, rule.errors):
            delay = backoff_delay(
                failures,
                base=rule.base(settings),
                cap=MAX_COUNTDOWN_SECONDS,
                jitter=rule.jitter,
                floor=getattr(exc, "retry_after_seconds", None),
            )
            return rule, delay
    return None
