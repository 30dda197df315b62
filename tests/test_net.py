"""The guarded HTTP layer against a real local HTTP server (pytest-httpserver) and raw sockets.

The test server listens on 127.0.0.1, so tests of ordinary fetching opt in with
`allow_private_networks=True`; tests of the address guard use the default policy.
"""

from __future__ import annotations

import gzip
import ipaddress
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from worker.errors import (
    BlockedAddressError,
    PermanentFetchError,
    ResponseTooLargeError,
    TransientFetchError,
)
from worker.fetch import guard, net
from worker.fetch.guard import address_block_reason
from worker.fetch.net import FetchPolicy, GuardedClient, _decode_bounded, parse_retry_after

LOCAL = FetchPolicy(allow_private_networks=True)


def url(server: HTTPServer, path: str) -> str:
    return f"http://127.0.0.1:{server.port}{path}"


def fetch(target: str, policy: FetchPolicy = LOCAL, **kwargs: Any) -> Any:
    with GuardedClient(policy) as client:
        return client.get(target, **kwargs)


# ---------------------------------------------------------------------------------------
# Ordinary fetching and conditional GET


def test_get_returns_body_final_url_lowercased_headers_and_validators(httpserver: HTTPServer):
    httpserver.expect_request("/feed").respond_with_data(
        b"<rss/>",
        content_type="application/rss+xml",
        headers={"ETag": '"v1"', "Last-Modified": "Tue, 10 Jun 2025 04:00:00 GMT"},
    )
    result = fetch(url(httpserver, "/feed"))
    assert result.status_code == 200
    assert result.body == b"<rss/>"
    assert result.url == url(httpserver, "/feed")
    assert result.headers["content-type"] == "application/rss+xml"
    assert result.etag == '"v1"'
    assert result.last_modified == "Tue, 10 Jun 2025 04:00:00 GMT"
    assert not result.not_modified


def test_sends_storywatch_user_agent_and_accept(httpserver: HTTPServer):
    httpserver.expect_request(
        "/ua",
        headers={"User-Agent": net.DEFAULT_USER_AGENT, "Accept": "application/rss+xml"},
    ).respond_with_data(b"ok")
    assert net.DEFAULT_USER_AGENT.startswith("storywatch/")
    assert "(+https://github.com/storywatch)" in net.DEFAULT_USER_AGENT
    assert fetch(url(httpserver, "/ua"), accept="application/rss+xml").body == b"ok"


def test_conditional_get_sends_validators_and_returns_empty_304(httpserver: HTTPServer):
    """RFC 9110 §13.1: If-None-Match / If-Modified-Since are sent; 304 is a result, not error."""
    last_modified = "Tue, 10 Jun 2025 04:00:00 GMT"
    httpserver.expect_request(
        "/feed", headers={"If-None-Match": '"v1"', "If-Modified-Since": last_modified}
    ).respond_with_data(b"", status=304, headers={"ETag": '"v1"'})
    result = fetch(url(httpserver, "/feed"), etag='"v1"', last_modified=last_modified)
    assert result.not_modified
    assert result.status_code == 304
    assert result.body == b""
    assert result.etag == '"v1"'


def test_follows_relative_redirect_and_reports_final_url(httpserver: HTTPServer):
    httpserver.expect_request("/old").respond_with_data(
        b"", status=301, headers={"Location": "/new?x=1"}
    )
    httpserver.expect_request("/new").respond_with_data(b"moved here")
    result = fetch(url(httpserver, "/old"))
    assert result.body == b"moved here"
    assert result.url == url(httpserver, "/new?x=1")


def test_redirect_loop_beyond_max_redirects_is_permanent(httpserver: HTTPServer):
    httpserver.expect_request("/loop").respond_with_data(
        b"", status=302, headers={"Location": "/loop"}
    )
    with pytest.raises(PermanentFetchError, match="redirected more than 2 times"):
        fetch(url(httpserver, "/loop"), FetchPolicy(allow_private_networks=True, max_redirects=2))


def test_redirect_to_non_http_scheme_is_refused(httpserver: HTTPServer):
    httpserver.expect_request("/r").respond_with_data(
        b"", status=302, headers={"Location": "file:///etc/passwd"}
    )
    with pytest.raises(PermanentFetchError, match="only http and https") as info:
        fetch(url(httpserver, "/r"))
    assert info.value.url == url(httpserver, "/r")


@pytest.mark.parametrize("bad", ["ftp://example.com/feed", "not a url", "http:///nohost", ""])
def test_bad_scheme_or_invalid_url_is_permanent(bad: str):
    with pytest.raises(PermanentFetchError) as info:
        fetch(bad)
    assert not info.value.transient
    assert info.value.url == bad


# ---------------------------------------------------------------------------------------
# Status mapping and Retry-After


def test_429_with_retry_after_seconds_is_transient_with_delay(httpserver: HTTPServer):
    httpserver.expect_request("/busy").respond_with_data(
        b"slow down", status=429, headers={"Retry-After": "120"}
    )
    with pytest.raises(TransientFetchError) as info:
        fetch(url(httpserver, "/busy"))
    assert info.value.status_code == 429
    assert info.value.retry_after_seconds == 120.0
    assert info.value.url == url(httpserver, "/busy")


def test_503_with_retry_after_http_date_is_transient_with_delay(httpserver: HTTPServer):
    when = datetime.now(UTC) + timedelta(seconds=300)
    httpserver.expect_request("/down").respond_with_data(
        b"", status=503, headers={"Retry-After": format_datetime(when, usegmt=True)}
    )
    with pytest.raises(TransientFetchError) as info:
        fetch(url(httpserver, "/down"))
    assert info.value.status_code == 503
    assert info.value.retry_after_seconds is not None
    assert 290 <= info.value.retry_after_seconds <= 301


@pytest.mark.parametrize("status", [408, 500, 502, 504])
def test_408_and_5xx_are_transient(httpserver: HTTPServer, status: int):
    httpserver.expect_request("/x").respond_with_data(b"oops", status=status)
    with pytest.raises(TransientFetchError) as info:
        fetch(url(httpserver, "/x"))
    assert info.value.status_code == status
    assert info.value.retry_after_seconds is None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_other_4xx_are_permanent(httpserver: HTTPServer, status: int):
    httpserver.expect_request("/x").respond_with_data(b"no", status=status)
    with pytest.raises(PermanentFetchError) as info:
        fetch(url(httpserver, "/x"))
    assert info.value.status_code == status
    assert not info.value.transient


def test_connection_refused_is_transient():
    with socket.socket() as sock:  # find a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransientFetchError, match="connection failed"):
        fetch(f"http://127.0.0.1:{port}/")


NOW = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (" 30 ", 30.0),
        ("Tue, 10 Jun 2025 12:05:00 GMT", 300.0),  # IMF-fixdate
        ("Tuesday, 10-Jun-25 12:01:00 GMT", 60.0),  # obsolete RFC 850 form
        ("Tue, 10 Jun 2025 11:00:00 GMT", 0.0),  # in the past: retry now
        ("99999999", 86_400.0),  # capped at one day
        ("Sat, 01 Jan 2000 00:00:00 GMT", 0.0),
        ("-5", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after_accepts_both_rfc9110_forms(value: str | None, expected: float | None):
    assert parse_retry_after(value, NOW) == expected


# ---------------------------------------------------------------------------------------
# Size cap, gzip bombs and slow servers


def test_plain_body_over_cap_is_refused_from_its_content_length(httpserver: HTTPServer):
    httpserver.expect_request("/big").respond_with_data(b"x" * 20_000)
    with pytest.raises(ResponseTooLargeError, match="Content-Length: 20000") as info:
        fetch(url(httpserver, "/big"), FetchPolicy(allow_private_networks=True, max_bytes=10_000))
    assert info.value.status_code == 200


def test_streamed_body_without_length_is_cut_at_cap(httpserver: HTTPServer):
    """A chunked body has no Content-Length: the cap must apply while streaming."""

    def endless(_request: Request) -> Response:
        return Response((b"y" * 4096 for _ in range(10_000)), mimetype="text/plain")

    httpserver.expect_request("/stream").respond_with_handler(endless)
    policy = FetchPolicy(allow_private_networks=True, max_bytes=100_000)
    with pytest.raises(ResponseTooLargeError, match="exceeds the 100000 byte cap"):
        fetch(url(httpserver, "/stream"), policy)


def test_gzip_body_under_cap_is_decoded_and_encoding_headers_dropped(httpserver: HTTPServer):
    httpserver.expect_request("/gz").respond_with_data(
        gzip.compress(b"hello " * 1000), headers={"Content-Encoding": "gzip"}
    )
    result = fetch(url(httpserver, "/gz"))
    assert result.body == b"hello " * 1000
    assert "content-encoding" not in result.headers
    assert "content-length" not in result.headers


@pytest.mark.parametrize("split", [False, True])
def test_every_gzip_member_is_decoded_wherever_the_network_splits_them(split: bool):
    """RFC 1952 §2.2: a gzip body may hold several members; the second one may start
    exactly at a network read boundary."""
    first, second = gzip.compress(b"first part, "), gzip.compress(b"second part")
    chunks = [first, second] if split else [first + second]
    decoded = b"".join(_decode_bounded(chunks, "gzip", limit=10_000))
    assert decoded == b"first part, second part"


def test_raw_deflate_body_is_decoded(httpserver: HTTPServer):
    """Some servers send raw deflate for "deflate" despite RFC 9110; we accept both."""
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw = compressor.compress(b"deflated text") + compressor.flush()
    httpserver.expect_request("/d").respond_with_data(raw, headers={"Content-Encoding": "deflate"})
    assert fetch(url(httpserver, "/d")).body == b"deflated text"


def test_gzip_bomb_is_stopped_by_decoded_cap_while_streaming(httpserver: HTTPServer):
    """50 MB of zeros gzip to ~50 KB: the cap (5 MB) must stop it with bounded memory."""
    bomb = gzip.compress(b"\0" * (50 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 100_000
    httpserver.expect_request("/bomb").respond_with_data(bomb, headers={"Content-Encoding": "gzip"})
    tracemalloc.start()
    try:
        with pytest.raises(ResponseTooLargeError, match="body exceeds the 5242880 byte cap"):
            fetch(url(httpserver, "/bomb"))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 12 * 1024 * 1024  # cap + buffers, never the 50 MB inflated body


class DripServer:
    """A raw socket server that sends the response one byte at a time, forever."""

    def __init__(self, *, headers_first: bool) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.headers_first = headers_first
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.recv(65536)
            head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n"
            if self.headers_first:
                conn.sendall(head)
                head = b""
            payload = head + b"z" * 1_000_000
            for byte in payload:
                if self.stop.wait(0.05):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        self.thread.join(timeout=5)


@pytest.fixture(params=[True, False], ids=["drip-body", "drip-headers"])
def drip_server(request: pytest.FixtureRequest) -> Iterator[DripServer]:
    server = DripServer(headers_first=request.param)
    yield server
    server.close()


def test_slow_drip_server_hits_overall_deadline(drip_server: DripServer):
    """Every read arrives well within the read timeout; only the deadline can stop it."""
    policy = FetchPolicy(allow_private_networks=True, read_timeout=5.0, deadline_seconds=1.0)
    started = time.monotonic()
    with pytest.raises(TransientFetchError, match="deadline") as info:
        fetch(f"http://127.0.0.1:{drip_server.port}/", policy)
    assert time.monotonic() - started < 3.0
    assert info.value.transient


# ---------------------------------------------------------------------------------------
# SSRF guard


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fc00::1", "a private address"),
        ("169.254.10.10", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("100.64.0.1", "a carrier-grade NAT address"),
        ("240.0.0.1", "a private address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("::ffff:10.0.0.1", "a private address"),
        ("2002:7f00:1::", "a loopback address"),  # 6to4 wrapping 127.0.0.1
        ("93.184.216.34", None),
        ("2606:2800:220:1:248:1893:25c8:1946", None),
        ("::ffff:93.184.216.34", None),
    ],
)
def test_address_block_reason_classifies_addresses(address: str, reason: str | None):
    assert address_block_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("http://127.0.0.1:8080/x", "127.0.0.1 is a loopback address"),
        ("http://localhost/", "localhost resolves to"),
        ("http://[::1]/", "::1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "a cloud metadata address (never allowed)"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1 is a loopback address"),
    ],
)
def test_default_policy_refuses_private_targets(target: str, message: str):
    with pytest.raises(BlockedAddressError, match="refusing to fetch") as info:
        fetch(target, FetchPolicy())
    assert message in str(info.value)
    assert info.value.url == target
    assert not info.value.transient


def test_block_message_names_url_address_and_how_to_allow():
    with pytest.raises(BlockedAddressError) as info:
        fetch("http://127.0.0.1:8080/x", FetchPolicy())
    assert str(info.value) == (
        "refusing to fetch http://127.0.0.1:8080/x: 127.0.0.1 is a loopback address "
        "(set STORYWATCH_ALLOW_PRIVATE_NETWORKS=true to allow private networks)"
    )


def test_metadata_address_stays_refused_when_private_networks_allowed():
    with pytest.raises(BlockedAddressError, match="cloud metadata"):
        fetch("http://169.254.169.254/latest/meta-data/", LOCAL)


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    """Make getaddrinfo answer `answers` for the given names; returns the names looked up."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in answers:
            return real(host, port, *args, **kwargs)
        asked.append(host)
        return [
            (
                socket.AF_INET6 if ":" in ip else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (ip, port, 0, 0) if ":" in ip else (ip, port),
            )
            for ip in answers[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def test_public_looking_hostname_resolving_to_private_address_is_refused(
    monkeypatch: pytest.MonkeyPatch,
):
    asked = fake_dns(monkeypatch, {"news.example.com": ["10.0.0.1"]})
    with pytest.raises(BlockedAddressError) as info:
        fetch("https://news.example.com/feed", FetchPolicy())
    assert "news.example.com resolves to 10.0.0.1, a private address" in str(info.value)
    assert asked == ["news.example.com"]


def test_any_private_answer_refuses_the_host(monkeypatch: pytest.MonkeyPatch):
    """A decoy public address next to an internal one must not get the request through."""
    fake_dns(monkeypatch, {"mixed.example.com": ["93.184.216.34", "127.0.0.1"]})
    with pytest.raises(guard.AddressRefused):
        guard.resolve_checked("mixed.example.com", 80, allow_private_networks=False)


def test_public_answers_are_returned_for_connecting(monkeypatch: pytest.MonkeyPatch):
    fake_dns(monkeypatch, {"public.example.com": ["93.184.216.34", "2606:2800:220:1::1"]})
    resolved = guard.resolve_checked("public.example.com", 443, allow_private_networks=False)
    assert resolved == ["93.184.216.34", "2606:2800:220:1::1"]


def test_connects_to_the_address_it_checked_and_keeps_host_header(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
):
    """The socket goes to the resolved, checked IP; the request still names the host."""
    fake_dns(monkeypatch, {"feeds.internal.test": ["127.0.0.1"]})
    httpserver.expect_request(
        "/f", headers={"Host": f"feeds.internal.test:{httpserver.port}"}
    ).respond_with_data(b"via checked ip")
    result = fetch(f"http://feeds.internal.test:{httpserver.port}/f", LOCAL)
    assert result.body == b"via checked ip"


def treat_test_server_as_public(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let 127.0.0.1 (the test server) pass the guard; every other address is judged as usual."""
    real = guard.address_block_reason

    def reason(ip: Any) -> str | None:
        return None if str(ip) == "127.0.0.1" else real(ip)

    monkeypatch.setattr(guard, "address_block_reason", reason)


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("http://10.0.0.1/admin", "10.0.0.1 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://[::1]:8080/", "::1 is a loopback address"),
    ],
)
def test_redirect_to_private_address_is_refused_after_allowed_first_hop(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, location: str, message: str
):
    treat_test_server_as_public(monkeypatch)
    httpserver.expect_request("/ok").respond_with_data(b"public ok")
    httpserver.expect_request("/jump").respond_with_data(
        b"", status=302, headers={"Location": location}
    )
    assert fetch(url(httpserver, "/ok"), FetchPolicy()).body == b"public ok"  # first hop allowed
    with pytest.raises(BlockedAddressError) as info:
        fetch(url(httpserver, "/jump"), FetchPolicy())
    assert f"refusing to fetch {location} (redirected from {url(httpserver, '/jump')})" in str(
        info.value
    )
    assert message in str(info.value)
    assert info.value.url == url(httpserver, "/jump")


def test_redirect_to_hostname_resolving_private_is_refused(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
):
    treat_test_server_as_public(monkeypatch)
    fake_dns(monkeypatch, {"cdn.example.net": ["192.168.0.10"]})
    httpserver.expect_request("/jump").respond_with_data(
        b"", status=307, headers={"Location": "https://cdn.example.net/feed.xml"}
    )
    with pytest.raises(BlockedAddressError, match=r"cdn\.example\.net resolves to 192\.168\.0\.10"):
        fetch(url(httpserver, "/jump"), FetchPolicy())


def test_cookies_from_one_response_are_never_sent_back(httpserver: HTTPServer):
    """No cookie jar: one feed's cookies must not follow us to the next request."""
    httpserver.expect_request("/set").respond_with_data(
        b"first", headers={"Set-Cookie": "session=secret; Path=/"}
    )

    def echo_cookie(request: Request) -> Response:
        return Response(request.headers.get("Cookie", "no cookie"))

    httpserver.expect_request("/check").respond_with_handler(echo_cookie)
    with GuardedClient(LOCAL) as client:
        client.get(url(httpserver, "/set"))
        assert client.get(url(httpserver, "/check")).body == b"no cookie"


def test_environment_proxy_is_ignored(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch):
    """A proxy would connect for us and bypass the address guard: env proxies are not used."""
    monkeypatch.setenv("HTTP_PROXY", "http://10.255.255.1:3128")
    monkeypatch.setenv("ALL_PROXY", "http://10.255.255.1:3128")
    httpserver.expect_request("/direct").respond_with_data(b"direct")
    assert fetch(url(httpserver, "/direct")).body == b"direct"


@pytest.mark.parametrize(
    "address",
    [
        "::ffff:169.254.169.254",
        "2002:a9fe:a9fe::1",
        "64:ff9b::a9fe:a9fe",
        "169.254.170.2",
        "100.100.100.200",
        "fe80::1",
    ],
)
def test_metadata_and_link_local_stay_refused_when_private_networks_are_allowed(
    address: str,
) -> None:
    """Every IPv6 wrapper of a metadata address, and all of link-local, is never allowed."""
    with pytest.raises(guard.AddressRefused) as refused:
        guard.resolve_checked(address, 80, allow_private_networks=True)
    assert not refused.value.allowable
