"""The SSRF guard: which addresses may be fetched, and an httpcore backend that enforces it.

The backend resolves every host itself, refuses if any answer is private, loopback,
link-local, CGNAT, reserved or a cloud metadata address (unless private networks are
allowed; metadata never is), then connects to the checked IP so DNS rebinding cannot swap
it. It also bounds every socket read and write by the request's overall deadline.

It must not: fetch anything itself, or trust a proxy from the environment.
"""

from __future__ import annotations

import contextvars
import ipaddress
import socket
import ssl
import time
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata endpoints (AWS/GCP/Azure/OpenStack, AWS IPv6). Refused even when private
# networks are allowed: no feed lives there, and credentials do.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("fd00:ec2::254"),
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    }
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598 shared space; not "private" in stdlib


# ---------------------------------------------------------------------------------------
# Address guard


class AddressRefused(Exception):
    """Raised inside the transport; `GuardedClient` turns it into `BlockedAddressError`."""

    def __init__(self, why: str, *, allowable: bool) -> None:
        super().__init__(why)
        self.why, self.allowable = why, allowable


_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix
_LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))


def _unwrap(ip: IPAddress) -> IPAddress:
    """The IPv4 host an IPv6 wrapper (mapped, 6to4, NAT64) reaches, else `ip` itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour
        if inner is None and ip in _NAT64:
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None:
            return inner
    return ip


def never_allowed(ip: IPAddress) -> bool:
    """Cloud metadata and the whole link-local range (AWS ECS credentials at 169.254.170.2,
    instance metadata at 169.254.169.254): refused even when private networks are allowed,
    whatever IPv6 wrapper the address comes in. No feed lives there; credentials do."""
    inner = _unwrap(ip)
    return inner in METADATA_ADDRESSES or any(inner in net for net in _LINK_LOCAL)


def address_block_reason(ip: IPAddress) -> str | None:
    """Why `ip` must not be fetched from (e.g. "a loopback address"), or None if public."""
    inner = _unwrap(ip)
    if inner in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if never_allowed(ip):
        return "a link-local address"
    if inner is not ip:
        # An IPv6 wrapper around an IPv4 address reaches that IPv4 host: judge the inner one.
        return address_block_reason(inner)
    checks = (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT, "a carrier-grade NAT address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "a non-public address"),
    )
    return next((reason for blocked, reason in checks if blocked), None)


def resolve_checked(host: str, port: int, *, allow_private_networks: bool) -> list[str]:
    """Resolve `host` to IP strings, refusing if ANY answer is blocked.

    Refusing on any bad answer (rather than filtering) keeps a hostile DNS zone from mixing
    a public decoy with an internal target. An IP literal "resolves" to itself.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    addresses = [str(info[4][0]).split("%", 1)[0] for info in infos]
    for address in addresses:
        ip = ipaddress.ip_address(address)
        reason = address_block_reason(ip)
        if reason is None or (allow_private_networks and not never_allowed(ip)):
            continue
        literal = _is_ip(host) and ipaddress.ip_address(host) == ip
        why = f"{host} is {reason}" if literal else f"{host} resolves to {ip}, {reason}"
        raise AddressRefused(why, allowable=not never_allowed(ip))
    if not addresses:
        raise httpcore.ConnectError(f"{host} has no addresses")
    return addresses


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------------------
# httpcore network backend: resolve + check + connect to the checked IP, and a deadline

# Monotonic deadline of the request running in this thread/context (None: no deadline).
REQUEST_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "storywatch_fetch_deadline", default=None
)


def _bounded(timeout: float | None) -> float | None:
    deadline = REQUEST_DEADLINE.get()
    if deadline is None:
        return timeout
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise httpcore.ReadTimeout("overall request deadline exceeded")
    return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    """Bounds every read/write by the request deadline, so a slow drip cannot hang us."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        # server_hostname is the URL's host (httpcore passes it separately), so SNI and
        # certificate checks use the name even though we connected to an IP.
        tls = self._inner.start_tls(ssl_context, server_hostname, _bounded(timeout))
        return _DeadlineStream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.NetworkBackend):
    """A SyncBackend that only ever connects to addresses `resolve_checked` accepted."""

    def __init__(self, *, allow_private_networks: bool) -> None:
        self._allow_private = allow_private_networks
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = resolve_checked(host, port, allow_private_networks=self._allow_private)
        last_error: httpcore.ConnectError | None = None
        for address in addresses:
            # Connecting to the IP literal we checked: no second DNS lookup, no rebinding.
            try:
                stream = self._inner.connect_tcp(
                    address, port, _bounded(timeout), local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                last_error = exc
                continue
            return _DeadlineStream(stream)
        raise httpcore.ConnectError(f"cannot connect to {host}:{port}: {last_error}")


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with its pool rebuilt on `GuardedBackend`.

    HTTPTransport does not expose httpcore's `network_backend`, so we keep its request and
    exception mapping and replace only the pool (httpx 0.28 `_transports/default.py`).
    """

    def __init__(self, *, allow_private_networks: bool) -> None:
        super().__init__(trust_env=False)
        limits = httpx.Limits()
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(allow_private_networks=allow_private_networks),
        )
