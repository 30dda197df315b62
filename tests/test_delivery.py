"""Delivery from the outbox against real local receivers: circuit and rate limits.

The outbox rows (article, development, alert, delivery) are delivery's input contract,
so these tests write them directly instead of running feeds and pages first.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select, text
from sqlalchemy.orm import Session
from structlog.testing import capture_logs
from werkzeug import Request, Response

from tests.conftest import write_config
from tests.outbox import add_alerts
from worker import pipeline
from worker.delivery.throttle import FAILURES_TO_OPEN
from worker.models import DeliveryOutcome
from worker.pipeline.delivery import _circuit_step, lease_for
from worker.pipeline.runtime import Runtime
from worker.settings import load_settings
from worker.store import deliveries, schema
from worker.store.engine import make_engine, make_sessions, migrate, transaction


def _update_circuit(
    session: Session, destination_id: str, outcome: DeliveryOutcome, now: datetime
) -> None:
    """What recording an attempt does to the destination's circuit, in `session`."""
    deliveries.advance_circuit(
        session,
        destination_id,
        _circuit_step(outcome, now),
        now=now,
        failed=not outcome.ok and not outcome.permanent,
        error=outcome.error,
    )


def make_runtime(tmp_path: Path, destinations: str, **env: str) -> Runtime:
    config = write_config(tmp_path, destinations=destinations)
    environ = {
        "STORYWATCH_CONFIG_DIR": str(config),
        "STORYWATCH_DATA_DIR": str(tmp_path / "var"),
        "HOOK_URL": env.pop("HOOK_URL", "http://unused.invalid/"),
        **env,
    }
    runtime = pipeline.open_runtime(load_settings(environ, dotenv=False))
    pipeline.initialise(runtime)
    return runtime


@pytest.fixture
def receiver() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.clear()
    server.stop()


def test_a_destination_that_keeps_failing_opens_its_circuit(
    tmp_path: Path, receiver: HTTPServer
) -> None:
    receiver.expect_request("/hook").respond_with_data("down", status=503)
    runtime = make_runtime(
        tmp_path,
        '[[destinations]]\nid = "hook"\nkind = "webhook"\nurl_env = "HOOK_URL"\n'
        'secret_env = "HOOK_SECRET"\n',
        HOOK_URL=receiver.url_for("/hook"),
        HOOK_SECRET="whsec_Y2lyY3VpdC10ZXN0LXNlY3JldA==",
    )
    alerts = add_alerts(runtime, FAILURES_TO_OPEN + 3, "hook")
    with capture_logs() as logs:
        summaries = [pipeline.deliver_alert(runtime, ident) for ident in alerts]
    # Operators alert on these events: the circuit opens once, and each delivery it holds
    # back says until when.
    [opened] = [e for e in logs if e["event"] == "delivery.circuit_opened"]
    assert opened["destination_id"] == "hook" and opened["failures"] == FAILURES_TO_OPEN
    held_back = [e for e in logs if e["event"] == "delivery.circuit_open"]
    assert len(held_back) == 3 and {e["until"] for e in held_back} == {opened["until"]}

    assert len(receiver.log) == FAILURES_TO_OPEN  # the rest were never sent
    assert [s.failed for s in summaries[:FAILURES_TO_OPEN]] == [1] * FAILURES_TO_OPEN
    assert [s.postponed for s in summaries[FAILURES_TO_OPEN:]] == [1, 1, 1]
    with transaction(runtime.sessions) as session:
        state = session.get(schema.DestinationState, "hook")
        held = session.scalars(
            select(schema.Delivery).where(schema.Delivery.alert_id.in_(alerts[FAILURES_TO_OPEN:]))
        ).all()
        assert state is not None and state.open_until is not None
        assert all(d.attempts == 0 and d.next_attempt_at == state.open_until for d in held)
        reopen = state.open_until

    # After the cool-down the destination recovers: the probe succeeds and closes the circuit.
    receiver.clear()
    receiver.expect_request("/hook").respond_with_data("ok", status=200)
    later = reopen + timedelta(seconds=1)
    runtime.clock = lambda: later
    assert pipeline.deliver_alert(runtime, alerts[-1]).delivered == 1
    with transaction(runtime.sessions) as session:
        state = session.get(schema.DestinationState, "hook")
        assert state is not None and state.failures == 0 and state.open_until is None
    runtime.close()


def test_slack_destinations_are_paced_to_one_message_per_second(
    tmp_path: Path, receiver: HTTPServer
) -> None:
    arrivals: list[float] = []

    def slack(_request: Request) -> Response:
        arrivals.append(time.monotonic())
        return Response("ok", status=200)

    receiver.expect_request("/services/T0/B0/secret").respond_with_handler(slack)
    runtime = make_runtime(
        tmp_path,
        '[[destinations]]\nid = "team"\nkind = "slack"\nurl_env = "SLACK_URL"\n',
        SLACK_URL=receiver.url_for("/services/T0/B0/secret"),
    )
    assert runtime.settings.destinations[0].max_per_second == 1.0
    for ident in add_alerts(runtime, 3, "team"):
        assert pipeline.deliver_alert(runtime, ident).delivered == 1
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert len(arrivals) == 3 and all(gap >= 0.9 for gap in gaps), gaps
    runtime.close()


def test_a_long_rate_limit_wait_reschedules_instead_of_blocking(
    tmp_path: Path, receiver: HTTPServer
) -> None:
    receiver.expect_request("/hook").respond_with_data("ok")
    runtime = make_runtime(
        tmp_path,
        '[[destinations]]\nid = "slow"\nkind = "webhook"\nurl_env = "HOOK_URL"\n'
        'secret_env = "HOOK_SECRET"\nmax_per_second = 0.1\n',
        HOOK_URL=receiver.url_for("/hook"),
        HOOK_SECRET="whsec_cmF0ZS1saW1pdC10ZXN0",
    )
    first, second = add_alerts(runtime, 2, "slow")
    assert pipeline.deliver_alert(runtime, first).delivered == 1
    started = time.monotonic()
    summary = pipeline.deliver_alert(runtime, second)
    assert time.monotonic() - started < 1.5
    assert summary.postponed == 1 and summary.next_attempt_at is not None
    assert summary.next_attempt_at > datetime.now(UTC) + timedelta(seconds=5)
    assert len(receiver.log) == 1
    runtime.close()


def test_the_sweep_enqueues_a_due_delivery_once_until_its_message_may_be_lost(
    tmp_path: Path,
) -> None:
    runtime = make_runtime(tmp_path, '[[destinations]]\nid = "out"\nkind = "console"\n')
    [ident] = add_alerts(runtime, 1, "out")
    assert pipeline.find_stalled_work(runtime).alert_ids == (ident,)
    assert pipeline.find_stalled_work(runtime).alert_ids == ()  # its message is queued
    later = runtime.clock() + lease_for(runtime) + timedelta(seconds=1)
    runtime.clock = lambda: later
    assert pipeline.find_stalled_work(runtime).alert_ids == (ident,)  # presumed lost
    assert pipeline.deliver_alert(runtime, ident).delivered == 1
    runtime.clock = lambda: later + timedelta(minutes=5)
    assert pipeline.find_stalled_work(runtime).alert_ids == ()  # delivered: nothing to do
    runtime.close()


def test_an_attempt_that_outlived_its_lease_does_not_overwrite_the_new_owner(
    tmp_path: Path, receiver: HTTPServer
) -> None:
    from worker.models import DeliveryOutcome  # noqa: PLC0415
    from worker.pipeline.delivery import _claim, _record  # noqa: PLC0415 - the mechanism

    runtime = make_runtime(tmp_path, '[[destinations]]\nid = "out"\nkind = "console"\n')
    add_alerts(runtime, 1, "out")
    with transaction(runtime.sessions) as session:
        delivery_id = session.scalars(select(schema.Delivery.id)).one()
    first = _claim(runtime, delivery_id)
    assert first is not None and _claim(runtime, delivery_id) is None  # leased
    late = runtime.clock() + lease_for(runtime) + timedelta(seconds=1)
    runtime.clock = lambda: late
    second = _claim(runtime, delivery_id)
    assert second is not None  # the lease ran out: another worker took it over
    ok = DeliveryOutcome(ok=True, status_code=200)
    assert _record(runtime, delivery_id, "out", *second, ok, 30.0) == "delivered"
    failed = DeliveryOutcome(ok=False, status_code=503, error="slow receiver")
    assert _record(runtime, delivery_id, "out", *first, failed, 30.0) == "lost"
    with transaction(runtime.sessions) as session:
        assert session.get(schema.Delivery, delivery_id).status == "delivered"
    runtime.close()


def test_a_story_routed_to_console_by_name_reaches_the_console(
    tmp_path: Path, receiver: HTTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    receiver.expect_request("/hook").respond_with_data("ok")
    runtime = make_runtime(
        tmp_path,
        '[[destinations]]\nid = "hook"\nkind = "webhook"\nurl_env = "HOOK_URL"\n'
        'secret_env = "HOOK_SECRET"\n',
        HOOK_URL=receiver.url_for("/hook"),
        HOOK_SECRET="whsec_Y29uc29sZS1yb3V0ZS10ZXN0",
    )
    [ident] = add_alerts(runtime, 1, "console")
    assert pipeline.deliver_alert(runtime, ident).delivered == 1
    assert "[storywatch] New development: Story" in capsys.readouterr().out
    runtime.close()


@pytest.mark.postgres
def test_two_workers_recording_a_new_destinations_first_outcomes_both_commit(
    postgres_url: str,
) -> None:
    """The first outcomes for a destination, recorded at once by two workers, create its
    circuit row once: neither transaction fails, so neither delivery is left undone and
    sent again after its lease (a duplicate webhook), and both outcomes count."""
    engine = make_engine(postgres_url)
    migrate(engine)
    sessions = make_sessions(engine)
    now = datetime.now(UTC)
    errors: list[Exception] = []

    def second_worker() -> None:
        try:
            with transaction(sessions) as session:
                _update_circuit(session, "hook", DeliveryOutcome(ok=False, error="503"), now)
        except Exception as exc:  # the assertion below reports it
            errors.append(exc)

    def waiting_on_a_lock() -> bool:
        with engine.connect() as probe:
            return bool(probe.scalar(text("select count(*) from pg_locks where not granted")))

    try:
        with transaction(sessions) as first:
            _update_circuit(first, "hook", DeliveryOutcome(ok=True, status_code=202), now)
            first.flush()
            thread = threading.Thread(target=second_worker)
            thread.start()
            # Commit only once the second worker waits on the first's uncommitted row:
            # committing earlier would let it find the row and miss the race.
            deadline = time.monotonic() + 20
            while not waiting_on_a_lock() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert waiting_on_a_lock(), "the second worker never reached the row"
        thread.join(timeout=30)
        assert not thread.is_alive()
        assert errors == []
        with transaction(sessions) as session:
            state = session.get(schema.DestinationState, "hook")
            assert state is not None and state.failures == 1 and state.last_error == "503"
    finally:
        engine.dispose()
