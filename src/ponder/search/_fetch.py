"""Fetch a web page safely: http(s) only, every address checked after DNS resolution and after each redirect.

The guard resolves the host itself, refuses the URL if ANY address is loopback, private, link-local, multicast,
reserved or otherwise not globally routable, then connects to the address it checked (the URL's host goes in the
``Host`` header and the TLS SNI), so a second DNS answer cannot swap in an internal address (DNS rebinding).
Redirects are followed by hand, each hop through the same check. ``SearchSettings.allow_private`` lifts the
address check (for tests and intranets); the scheme check stays.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Protocol

import anyio
import httpx
from pydantic import BaseModel

from ponder.config import SearchSettings
from ponder.errors import BlockedAddress, FetchError
from ponder.search._ingest import decode, html_to_text

MAX_REDIRECTS = 5
TEXT_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "text/markdown")
USER_AGENT = "ponder-browser/0.1 (+https://github.com/ponder)"

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


class Page(BaseModel):
    url: str
    title: str = ""
    text: str
    content_type: str = ""


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


class Fetcher:
    """Fetches pages under the SSRF guard; ``resolver`` and ``transport`` are seams for tests."""

    def __init__(
        self,
        settings: SearchSettings,
        resolver: Resolver | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.resolver = resolver or SystemResolver()
        self.transport = transport

    async def _address(self, url: httpx.URL) -> str:
        """The checked IP to connect to for ``url``."""
        host = url.host
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in await self.resolver.resolve(host, port)]
        if not addresses:
            raise FetchError(f"{host!r} resolves to no address")
        if not self.settings.allow_private:
            for ip in addresses:
                if not is_public(ip):
                    raise BlockedAddress(f"{url} points at {ip}, a loopback, private or link-local address")
        return str(addresses[0])

    async def check_public(self, url: str) -> None:
        """Raise BlockedAddress unless ``url`` is http(s) and resolves only to public addresses (or private ones
        are allowed): the same policy as browsing, for other clients that connect out (MCP servers)."""
        await self._address(check_url(url))

    async def fetch(self, url: str) -> Page:
        target = check_url(url)
        timeout = httpx.Timeout(self.settings.fetch_timeout_s)
        async with httpx.AsyncClient(transport=self.transport, timeout=timeout, follow_redirects=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                ip = await self._address(target)
                literal = f"[{ip}]" if ":" in ip else ip
                request = client.build_request(
                    "GET",
                    target.copy_with(host=literal.strip("[]")),
                    headers={"Host": target.netloc.decode("ascii"), "User-Agent": USER_AGENT,
                             "Accept": "text/html,text/plain;q=0.9,*/*;q=0.1"},
                    extensions={"sni_hostname": target.host},
                )  # fmt: skip
                try:
                    response = await client.send(request, stream=True)
                except httpx.TimeoutException as exc:
                    raise FetchError(
                        f"{url} timed out after {self.settings.fetch_timeout_s:g} s", retryable=True
                    ) from exc
                except httpx.HTTPError as exc:
                    raise FetchError(f"cannot fetch {url}: {exc}", retryable=True) from exc
                try:
                    if response.is_redirect:
                        location = response.headers.get("location", "")
                        target = check_url(str(target.join(location)))
                        continue
                    return await self._read(str(target), response)
                finally:
                    await response.aclose()
        raise FetchError(f"{url} redirected more than {MAX_REDIRECTS} times")

    async def _read(self, url: str, response: httpx.Response) -> Page:
        if response.status_code >= 400:
            raise FetchError(f"{url} answered HTTP {response.status_code}", retryable=response.status_code >= 500)
        ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype and not ctype.startswith(TEXT_TYPES):
            raise FetchError(f"{url} is {ctype}, not a web page", hint="open HTML or plain-text pages only")
        limit = self.settings.max_page_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FetchError(f"{url} is {declared} bytes; pages over {limit} bytes are not read")
        body = bytearray()
        try:
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > limit:
                    raise FetchError(f"{url} is larger than {limit} bytes; pages that large are not read")
        except httpx.TimeoutException as exc:
            raise FetchError(f"{url} timed out while reading", retryable=True) from exc
        except httpx.HTTPError as exc:
            raise FetchError(f"reading {url} failed: {exc}", retryable=True) from exc
        text = _decode(bytes(body), response.charset_encoding)
        if ctype in ("text/plain", "text/markdown"):
            return Page(url=url, title=url.rsplit("/", 1)[-1], text=text, content_type=ctype)
        title, main = html_to_text(text)
        return Page(url=url, title=title, text=main, content_type=ctype or "text/html")


def _decode(body: bytes, charset: str | None) -> str:
    if charset:
        try:
            return body.decode(charset)
        except (LookupError, UnicodeDecodeError):
            pass  # unknown or wrong charset label: guess from the bytes
    return decode(body)
