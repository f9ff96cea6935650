"""Which addresses ponder may connect out to: http(s) only, and every address a host resolves to checked (loopback,
private, link-local, multicast, reserved or otherwise not globally routable: refused unless private addresses are
allowed). Browsing (``ponder.search``) and remote MCP servers (``ponder.tools``) share this one policy.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Protocol

import anyio
import httpx

from ponder.errors import BlockedAddress, FetchError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Resolver(Protocol):
    async def resolve(self, host: str, port: int) -> list[str]:
        """Every IP address ``host`` resolves to."""
        ...


class SystemResolver:
    async def resolve(self, host: str, port: int) -> list[str]:
        try:
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise FetchError(f"cannot resolve {host!r}: {exc}", hint="check the host name") from exc
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return is_public(ip.ipv4_mapped)
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local)


def check_url(url: str) -> httpx.URL:
    """The parsed URL, or BlockedAddress when it is not http(s)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise FetchError(f"{url!r} is not a valid URL", hint="give an absolute http(s) URL") from exc
    if parsed.scheme not in ("http", "https"):
        raise BlockedAddress(f"{url!r} uses the {parsed.scheme or 'empty'}:// scheme; only http and https are browsed")
    if not parsed.host:
        raise FetchError(f"{url!r} has no host", hint="give an absolute http(s) URL")
    return parsed


class AddressGuard:
    """The checked IP to connect to for a URL; ``resolver`` is a seam for tests."""

    def __init__(self, allow_private: bool = False, resolver: Resolver | None = None) -> None:
        self.allow_private = allow_private
        self.resolver = resolver or SystemResolver()

    async def address(self, url: httpx.URL) -> str:
        host = url.host
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in await self.resolver.resolve(host, port)]
        if not addresses:
            raise FetchError(f"{host!r} resolves to no address")
        if not self.allow_private:
            for ip in addresses:
                if not is_public(ip):
                    raise BlockedAddress(f"{url} points at {ip}, a loopback, private or link-local address")
        return str(addresses[0])

    async def check_public(self, url: str) -> None:
        """Raise BlockedAddress unless ``url`` is http(s) and resolves only to public addresses (or private ones
        are allowed)."""
        await self.address(check_url(url))
