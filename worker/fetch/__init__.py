"""Fetching: the one guarded HTTP client (SSRF guard, size and time caps, decoding).

Every outbound GET for feeds and pages goes through `worker.fetch.net`; `worker.fetch.guard`
decides which addresses may be reached. Nothing here parses what it fetched.
"""
