"""Delivery: one attempt to one destination, one module per kind of destination.

`notify` is the front door (`deliver`, `attempt`) and picks the channel: `files` (console
and JSONL), `http` (a POST and its answer; Slack), `webhook` (Standard Webhooks, signed),
`apprise_url` (Apprise). `common` holds what they share (templates, failures, keeping
secrets out of messages), `digest` sends a digest, `retry_policy` spaces the attempts and
`throttle` keeps a failing or busy destination from being hammered.
"""
