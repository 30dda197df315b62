"""Delivery against real local receivers (pytest-httpserver), files and streams.

Webhook receivers verify signatures with the reference `standardwebhooks` library, the
way a real consumer would; nothing here mocks httpx.
"""

from __future__ import annotations

import base64
import io
import json
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
from pytest_httpserver import HTTPServer
from standardwebhooks import Webhook, WebhookVerificationError
from werkzeug import Request, Response

from tests.conftest import REPO, HighestDraw, LowestDraw
from worker.alerts.payloads import (
    alert_id,
    console_text,
    jsonl_record,
    sample_alert,
    slack_payload,
    webhook_payload,
)
from worker.delivery.common import redact_url
from worker.delivery.http import classify_status
from worker.delivery.notify import deliver
from worker.delivery.retry_policy import (
    BASE_DELAY_SECONDS,
    MAX_ATTEMPTS,
    MAX_DELAY_SECONDS,
    next_attempt_delay,
)
from worker.models import AlertContent, DeliveryOutcome, DestinationConfig

SECRET = "whsec_" + base64.b64encode(b"storywatch-test-signing-key-32by").decode()
SLACK_TOKEN_PATH = "/services/T0001/B0002/s3cr3tSlackT0ken"


def make_alert(**changes: object) -> AlertContent:
    values: dict[str, object] = {
        "id": alert_id("story-cop29", "dev-finance-goal"),
        "story_id": "story-cop29",
        "story_title": "COP29 climate finance talks in Baku",
        "article_url": "https://news.example/cop29",
        "article_title": "Deal reached on $300bn finance goal",
        "source": "Example Wire",
        "published": datetime(2024, 11, 24, 3, 0, tzinfo=UTC),
        "new_facts": ("Countries agreed to triple finance to $300bn a year by 2035.",),
        "score": 0.77,
        "reasons": ("entities: COP29, Baku",),
        "detected_at": datetime(2024, 11, 24, 3, 5, tzinfo=UTC),
        "also_reported_by": 1,
    }
    values.update(changes)
    return AlertContent(**values)  # type: ignore[arg-type]


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as c:
        yield c


def webhook_to(server: HTTPServer, path: str = "/hook", secret: str = SECRET) -> DestinationConfig:
    return DestinationConfig(id="hook", kind="webhook", url=server.url_for(path), secret=secret)


def slack_to(server: HTTPServer, path: str = SLACK_TOKEN_PATH) -> DestinationConfig:
    return DestinationConfig(id="team-slack", kind="slack", url=server.url_for(path))


def assert_no_secret(outcome: DeliveryOutcome, *secrets: str) -> None:
    assert outcome.error is not None
    for secret in secrets:
        assert secret not in outcome.error


# ---------------------------------------------------------------------------------------
# Signed webhooks


def test_webhook_is_signed_per_standard_webhooks_with_a_stable_id(
    httpserver: HTTPServer, client: httpx.Client
) -> None:
    received: list[tuple[dict[str, str], object]] = []

    def receiver(request: Request) -> Response:
        headers = dict(request.headers)
        # Raises (and so answers 500) unless the signature covers these exact bytes.
        payload = Webhook(SECRET).verify(request.get_data(), headers)
        received.append((headers, payload))
        return Response("", status=204)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(receiver)
    alert = make_alert()
    first = deliver(alert, webhook_to(httpserver), client=client)
    second = deliver(alert, webhook_to(httpserver), client=client)

    assert first == DeliveryOutcome(ok=True, status_code=204)
    assert second.ok
    assert len(received) == 2
    for headers, payload in received:
        lowered = {k.lower(): v for k, v in headers.items()}
        assert lowered["webhook-id"] == alert.id
        assert lowered["content-type"] == "application/json"
        assert lowered["webhook-signature"].startswith("v1,")
        assert abs(int(lowered["webhook-timestamp"]) - time.time()) < 60
        assert lowered["user-agent"].startswith("storywatch/")
        assert payload == webhook_payload(alert)


def test_webhook_signature_uses_utc_even_for_an_aware_local_now(
    httpserver: HTTPServer, client: httpx.Client
) -> None:
    """standardwebhooks' sign() replaces tzinfo instead of converting: a +04:00 `now` must
    be converted first or the signed timestamp and the header disagree."""

    def receiver(request: Request) -> Response:
        try:
            Webhook(SECRET).verify(request.get_data(), dict(request.headers))
        except WebhookVerificationError as exc:
            return Response(str(exc), status=401)
        return Response("", status=200)

    httpserver.expect_request("/hook").respond_with_handler(receiver)
    baku_now = datetime.now(timezone(timedelta(hours=4)))
    outcome = deliver(make_alert(), webhook_to(httpserver), client=client, now=baku_now)
    assert outcome.ok, outcome.error


def test_webhook_signed_with_another_secret_fails_verification_permanently(
    httpserver: HTTPServer, client: httpx.Client
) -> None:
    other = "whsec_" + base64.b64encode(b"a-different-key-of-32-bytes-long").decode()

    def receiver(request: Request) -> Response:
        try:
            Webhook(other).verify(request.get_data(), dict(request.headers))
        except WebhookVerificationError:
            return Response("invalid signature", status=401)
        return Response("", status=200)

    httpserver.expect_request("/hook").respond_with_handler(receiver)
    outcome = deliver(make_alert(), webhook_to(httpserver), client=client)
    assert not outcome.ok
    assert outcome.permanent
    assert outcome.status_code == 401
    assert "invalid signature" in (outcome.error or "")


def test_webhook_without_secret_or_with_a_malformed_one_is_permanent(
    httpserver: HTTPServer, client: httpx.Client
) -> None:
    missing = deliver(make_alert(), webhook_to(httpserver, secret=""), client=client)
    assert not missing.ok and missing.permanent
    assert "no signing secret" in (missing.error or "")
    bad_secret = "whsec_!!!"
    malformed = deliver(make_alert(), webhook_to(httpserver, secret=bad_secret), client=client)
    assert not malformed.ok and malformed.permanent
    assert_no_secret(malformed, bad_secret)
    assert len(httpserver.log) == 0  # nothing unsigned was ever sent


def test_server_error_is_transient(httpserver: HTTPServer, client: httpx.Client) -> None:
    httpserver.expect_request("/hook").respond_with_data("database down", status=500)
    outcome = deliver(make_alert(), webhook_to(httpserver), client=client)
    assert not outcome.ok
    assert not outcome.permanent
    assert outcome.status_code == 500
    assert outcome.retry_after_seconds is None
    assert "HTTP 500" in (outcome.error or "")
    assert "database down" in (outcome.error or "")


def test_429_retry_after_seconds_is_reported(httpserver: HTTPServer, client: httpx.Client) -> None:
    httpserver.expect_request("/hook").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "7"}
    )
    outcome = deliver(make_alert(), webhook_to(httpserver), client=client)
    assert not outcome.ok and not outcome.permanent
    assert outcome.status_code == 429
    assert outcome.retry_after_seconds == 7.0


def test_503_retry_after_http_date_is_relative_to_now(
    httpserver: HTTPServer, client: httpx.Client
) -> None:
    now = datetime(2024, 11, 24, 3, 10, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=120), usegmt=True)
    httpserver.expect_request(SLACK_TOKEN_PATH).respond_with_data(
        "maintenance", status=503, headers={"Retry-After": later}
    )
    outcome = deliver(make_alert(), slack_to(httpserver), client=client, now=now)
    assert not outcome.permanent
    assert outcome.retry_after_seconds == 120.0


@pytest.mark.parametrize("status", [400, 404, 410, 422])
def test_client_errors_are_permanent(
    httpserver: HTTPServer, client: httpx.Client, status: int
) -> None:
    httpserver.expect_request("/hook").respond_with_data("no", status=status)
    outcome = deliver(make_alert(), webhook_to(httpserver), client=client)
    assert not outcome.ok
    assert outcome.permanent
    assert outcome.status_code == status


def test_redirects_are_not_followed_and_are_permanent(
    httpserver: HTTPServer, client: httpx.Client
) -> None:
    httpserver.expect_request("/hook").respond_with_data(
        "", status=301, headers={"Location": httpserver.url_for("/moved")}
    )
    httpserver.expect_request("/moved").respond_with_data("", status=200)
    outcome = deliver(make_alert(), webhook_to(httpserver), client=client)
    assert not outcome.ok and outcome.permanent
    assert outcome.status_code == 301
    assert [entry[0].path for entry in httpserver.log] == ["/hook"]


def test_receiver_slower_than_the_timeout_is_transient(
    httpserver: HTTPServer, client: httpx.Client
) -> None:
    def sleepy(request: Request) -> Response:
        time.sleep(1.0)
        return Response("", status=200)

    httpserver.expect_request("/hook").respond_with_handler(sleepy)
    started = time.monotonic()
    outcome = deliver(make_alert(), webhook_to(httpserver), client=client, timeout=0.2)
    assert time.monotonic() - started < 0.9
    assert not outcome.ok
    assert not outcome.permanent
    assert outcome.status_code is None
    assert "timed out" in (outcome.error or "")


def test_refused_connection_is_transient(client: httpx.Client) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    destination = DestinationConfig(
        id="gone", kind="webhook", url=f"http://127.0.0.1:{port}/hook", secret=SECRET
    )
    outcome = deliver(make_alert(), destination, client=client)
    assert not outcome.ok and not outcome.permanent
    assert "connection failed" in (outcome.error or "")


def test_unsupported_scheme_is_permanent(client: httpx.Client) -> None:
    destination = DestinationConfig(
        id="x", kind="webhook", url="ftp://h/x?token=t0k", secret=SECRET
    )
    outcome = deliver(make_alert(), destination, client=client)
    assert not outcome.ok and outcome.permanent
    assert_no_secret(outcome, "t0k")


def test_error_strings_never_contain_url_paths_or_tokens(
    httpserver: HTTPServer, client: httpx.Client
) -> None:
    # A receiver that echoes the request line back must not leak it through our error text.
    def echo(request: Request) -> Response:
        return Response(f"bad request to {request.full_path}", status=400)

    httpserver.expect_request("/hook/s3cr3t").respond_with_handler(echo)
    destination = DestinationConfig(
        id="hook",
        kind="webhook",
        url=httpserver.url_for("/hook/s3cr3t") + "?token=querys3cr3t",
        secret=SECRET,
    )
    outcome = deliver(make_alert(), destination, client=client)
    assert outcome.permanent
    assert_no_secret(outcome, "s3cr3t", "querys3cr3t", SECRET)
    assert f"http://localhost:{httpserver.port}/…" in (outcome.error or "")


# ---------------------------------------------------------------------------------------
# Slack


def test_slack_receives_block_kit_and_answers_ok(
    httpserver: HTTPServer, client: httpx.Client
) -> None:
    bodies: list[object] = []

    def slack(request: Request) -> Response:
        bodies.append(json.loads(request.get_data()))
        return Response("ok", status=200, content_type="text/plain")

    httpserver.expect_request(SLACK_TOKEN_PATH, method="POST").respond_with_handler(slack)
    alert = make_alert()
    outcome = deliver(alert, slack_to(httpserver), client=client)
    assert outcome == DeliveryOutcome(ok=True, status_code=200)
    assert bodies == [slack_payload(alert)]


def test_slack_errors_are_classified_and_redact_the_webhook_path(
    httpserver: HTTPServer, client: httpx.Client
) -> None:
    httpserver.expect_request(SLACK_TOKEN_PATH).respond_with_data("no_service", status=404)
    outcome = deliver(make_alert(), slack_to(httpserver), client=client)
    assert not outcome.ok and outcome.permanent
    assert "no_service" in (outcome.error or "")
    assert_no_secret(outcome, "s3cr3tSlackT0ken", "/services", "T0001")


def test_slack_destination_without_url_is_permanent(client: httpx.Client) -> None:
    outcome = deliver(make_alert(), DestinationConfig(id="s", kind="slack"), client=client)
    assert not outcome.ok and outcome.permanent


# ---------------------------------------------------------------------------------------
# Console, JSONL, unknown kinds


def test_console_writes_the_message_to_the_given_stream(client: httpx.Client) -> None:
    out = io.StringIO()
    outcome = deliver(
        make_alert(), DestinationConfig(id="c", kind="console"), client=client, stream=out
    )
    assert outcome.ok
    assert out.getvalue().startswith("[storywatch] New development: COP29 climate finance")
    assert out.getvalue().endswith("\n")


def test_an_unforeseen_error_is_a_failed_attempt_not_a_crash(client: httpx.Client) -> None:
    # A console whose encoding cannot write the fact: UnicodeEncodeError is no OSError.
    ascii_console = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    outcome = deliver(
        make_alert(new_facts=("Finance rose to €300bn a year.",)),
        DestinationConfig(id="c", kind="console"),
        client=client,
        stream=ascii_console,
    )
    assert not outcome.ok and not outcome.permanent  # retried, and dead after the last try
    assert outcome.error is not None and "UnicodeEncodeError" in outcome.error


def test_jsonl_appends_one_valid_line_per_delivery(tmp_path: Path, client: httpx.Client) -> None:
    path = tmp_path / "nested" / "dir" / "alerts.jsonl"
    destination = DestinationConfig(id="file", kind="jsonl", path=str(path))
    first, second = make_alert(), make_alert(id=alert_id("story-cop29", "dev-2"))
    assert deliver(first, destination, client=client).ok
    assert deliver(second, destination, client=client).ok
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [jsonl_record(first), jsonl_record(second)]
    assert path.read_bytes().endswith(b"\n")


def test_a_test_alert_says_so_and_stays_out_of_the_alerts_file(
    tmp_path: Path, client: httpx.Client
) -> None:
    path = tmp_path / "alerts.jsonl"
    destination = DestinationConfig(id="file", kind="jsonl", path=str(path))
    assert deliver(make_alert(), destination, client=client).ok
    test = sample_alert()
    assert deliver(test, destination, client=client).ok
    assert [json.loads(line)["type"] for line in path.read_text().splitlines()] == [
        "story.development"
    ]
    [line] = (tmp_path / "alerts.test.jsonl").read_text().splitlines()
    record = json.loads(line)
    assert (record["type"], record["test"], record["id"]) == ("storywatch.test", True, test.id)
    assert webhook_payload(test)["type"] == "storywatch.test"
    assert "test" not in webhook_payload(make_alert())
    # Read by a person, it never looks like news either.
    assert console_text(test).startswith("[storywatch] Test alert: ")
    assert slack_payload(test)["text"].startswith("Test alert (")
    assert "New development" not in console_text(test) + slack_payload(test)["text"]


def test_a_jsonl_append_that_fails_part_way_is_undone(tmp_path: Path) -> None:
    """A digest of two lines to a JSONL file whose size limit cuts the second: the file
    must be left as it was, so the retry does not write the first line twice."""
    path = tmp_path / "alerts.jsonl"
    path.write_bytes(b'{"earlier": true}\n')
    script = f"""
import dataclasses, resource, signal
import httpx
from worker.alerts.payloads import sample_alert
from worker.delivery.digest import deliver_digest
from worker.models import DestinationConfig
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
alerts = [dataclasses.replace(sample_alert(), id=f"alrt_{{n}}") for n in range(2)]
destination = DestinationConfig(id="j", kind="jsonl", path={str(path)!r})
limit = {path.stat().st_size} + 200
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
with httpx.Client() as client:
    outcome = deliver_digest(alerts, destination, client=client, timeout=5)
print(outcome.ok, outcome.permanent, outcome.error)
"""
    done = subprocess.run(  # noqa: PLW1510 - the output is asserted
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert done.stdout.startswith("False False could not append"), done.stdout + done.stderr
    assert path.read_bytes() == b'{"earlier": true}\n'


def test_jsonl_into_a_directory_or_without_path_is_permanent(
    tmp_path: Path, client: httpx.Client
) -> None:
    into_dir = deliver(
        make_alert(), DestinationConfig(id="f", kind="jsonl", path=str(tmp_path)), client=client
    )
    assert not into_dir.ok and into_dir.permanent
    no_path = deliver(make_alert(), DestinationConfig(id="f", kind="jsonl"), client=client)
    assert not no_path.ok and no_path.permanent


def test_unknown_kind_is_permanent(client: httpx.Client) -> None:
    outcome = deliver(make_alert(), DestinationConfig(id="x", kind="carrier-pigeon"), client=client)
    assert not outcome.ok and outcome.permanent
    assert "carrier-pigeon" in (outcome.error or "")


# ---------------------------------------------------------------------------------------
# Apprise (optional extra)


def test_apprise_json_url_delivers_to_a_local_receiver(
    httpserver: HTTPServer, client: httpx.Client
) -> None:
    pytest.importorskip("apprise")
    bodies: list[dict[str, object]] = []

    def receiver(request: Request) -> Response:
        bodies.append(json.loads(request.get_data()))
        return Response("", status=200)

    httpserver.expect_request("/apprise", method="POST").respond_with_handler(receiver)
    destination = DestinationConfig(
        id="ap", kind="apprise", url=f"json://127.0.0.1:{httpserver.port}/apprise"
    )
    assert deliver(make_alert(), destination, client=client).ok
    assert len(bodies) == 1
    assert "COP29 climate finance talks in Baku" in json.dumps(bodies[0])


def test_apprise_failure_is_transient_and_bad_url_permanent(
    httpserver: HTTPServer, client: httpx.Client
) -> None:
    pytest.importorskip("apprise")
    httpserver.expect_request("/apprise").respond_with_data("", status=500)
    failing = DestinationConfig(
        id="ap", kind="apprise", url=f"json://127.0.0.1:{httpserver.port}/apprise?token=t0k"
    )
    outcome = deliver(make_alert(), failing, client=client)
    assert not outcome.ok and not outcome.permanent
    assert_no_secret(outcome, "t0k", "/apprise")
    nonsense = DestinationConfig(id="ap", kind="apprise", url="not-a-service://x")
    bad = deliver(make_alert(), nonsense, client=client)
    assert not bad.ok and bad.permanent


# ---------------------------------------------------------------------------------------
# Status classification and URL redaction


@pytest.mark.parametrize(
    ("status", "ok", "permanent"),
    [
        (200, True, False),
        (204, True, False),
        (301, False, True),
        (400, False, True),
        (401, False, True),
        (408, False, False),
        (410, False, True),
        (429, False, False),
        (500, False, False),
        (502, False, False),
        (503, False, False),
        (504, False, False),
    ],
)
def test_classify_status(status: int, ok: bool, permanent: bool) -> None:
    outcome = classify_status(status)
    assert (outcome.ok, outcome.permanent, outcome.status_code) == (ok, permanent, status)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://hooks.slack.com/services/T0/B0/XyZ", "https://hooks.slack.com/…"),
        ("https://user:pw@example.org:8443/p?token=x", "https://example.org:8443/…"),
        ("http://[::1", "<unparseable URL>"),
    ],
)
def test_redact_url_keeps_only_scheme_and_host(url: str, expected: str) -> None:
    assert redact_url(url) == expected


# ---------------------------------------------------------------------------------------
# Retry schedule


def test_backoff_window_doubles_from_the_base() -> None:
    delays = [next_attempt_delay(n, rng=HighestDraw()) for n in range(1, 7)]
    assert delays == [30.0, 60.0, 120.0, 240.0, 480.0, 960.0]
    assert BASE_DELAY_SECONDS == 30.0


def test_backoff_is_capped_even_for_absurd_attempt_numbers() -> None:
    assert next_attempt_delay(20, rng=HighestDraw()) == MAX_DELAY_SECONDS == 6 * 3600
    assert next_attempt_delay(10_000, rng=HighestDraw()) == MAX_DELAY_SECONDS


def test_backoff_uses_full_jitter() -> None:
    rng = random.Random(1234)
    draws = [next_attempt_delay(5, rng=rng) for _ in range(400)]
    assert all(0.0 <= d <= 480.0 for d in draws)
    assert len(set(draws)) == len(draws)
    assert min(draws) < 60.0 and max(draws) > 420.0  # the whole window is used
    assert 200.0 < sum(draws) / len(draws) < 280.0  # uniform: mean about 240


def test_retry_after_is_a_minimum_but_the_cap_still_applies() -> None:
    assert next_attempt_delay(1, retry_after=7.0, rng=LowestDraw()) == 7.0
    assert next_attempt_delay(3, retry_after=7.0, rng=HighestDraw()) == 120.0
    assert next_attempt_delay(1, retry_after=10 * 86_400.0, rng=LowestDraw()) == MAX_DELAY_SECONDS


def test_attempt_numbers_start_at_one() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        next_attempt_delay(0)


def test_schedule_outlasts_an_overnight_outage_on_average() -> None:
    """DESIGN §1: a webhook that was down must not lose the alert. With full jitter the
    expected wait is half of each window, summed over the retries MAX_ATTEMPTS allows."""
    expected_span = sum(
        min(MAX_DELAY_SECONDS, BASE_DELAY_SECONDS * 2 ** (n - 1)) / 2
        for n in range(1, MAX_ATTEMPTS)
    )
    assert expected_span >= 12 * 3600


def test_default_rng_is_used_when_none_is_given() -> None:
    draws = {next_attempt_delay(2) for _ in range(20)}
    assert all(0.0 <= d <= 60.0 for d in draws)
    assert len(draws) > 1


def test_an_update_names_the_other_outlets_in_every_format() -> None:
    update = make_alert(
        update=True,
        also_reported_by=2,
        also_reported=(
            ("Gulf Times", "https://gulf.example/a?x=<b>"),
            ("Bad Link", "javascript:alert(1)"),
        ),
    )
    slack = slack_payload(update)
    assert slack["blocks"][0]["text"]["text"] == "Update: COP29 climate finance talks in Baku"
    line = slack["blocks"][-1]["text"]["text"]
    assert line.startswith("Now also reported by 2 other sources: ")
    assert "<https://gulf.example/a?x=&lt;b&gt;|Gulf Times>" in line
    assert "javascript:" not in line and "Bad Link" in line  # named, never linked
    assert slack["text"].startswith("Update: COP29")
    console = console_text(update)
    assert console.startswith("[storywatch] Update: COP29 climate finance talks in Baku")
    assert "Gulf Times: https://gulf.example/a?x=<b>" in console
    payload = webhook_payload(update)
    assert payload["type"] == "story.development.updated" and payload["id"] == update.id
    assert payload["also_reported"][0] == {
        "source": "Gulf Times",
        "url": "https://gulf.example/a?x=<b>",
    }
    assert update.message_id == f"{update.id}_update"
    assert "also_reported" not in webhook_payload(make_alert())
