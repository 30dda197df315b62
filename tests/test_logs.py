"""Logs never carry secrets, whatever a caller binds."""

from __future__ import annotations

from worker.observe.logs import redact_secrets, register_secrets


def test_secret_keys_and_values_are_masked() -> None:
    register_secrets(["s3cr3t-database-password"])
    event = redact_secrets(
        None,
        "info",
        {
            "event": "delivery.failed",
            "secret": "whsec_abc",
            "url": "https://hooks.slack.com/services/T000/B000/XXXXXXXX",
            "database": "postgresql+psycopg://app:s3cr3t-database-password@db/app",
            "error": "POST https://user:pw@example.org/hook failed, key whsec_Zm9vYmFy",
            "feed_id": "bbc-world",
        },
    )
    assert event["secret"] == "[redacted]"
    assert event["url"] == "https://hooks.slack.com/services/[redacted]"
    assert "s3cr3t" not in event["database"]
    assert "user:pw" not in event["error"] and "Zm9vYmFy" not in event["error"]
    assert event["feed_id"] == "bbc-world"
