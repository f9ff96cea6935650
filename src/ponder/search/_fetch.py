"""Fetch a web page safely: http(s) only, every address checked after DNS resolution and after each redirect.

The guard (:mod:`ponder.netguard`, shared with remote MCP servers) resolves the host itself, refuses the URL if ANY
address is loopback, private, link-local, multicast, reserved or otherwise not globally routable, then connects to
the address it checked (the URL's host goes in the ``Host`` header and the TLS SNI), so a second DNS answer cannot
swap in an internal address (DNS rebinding). Redirects are followed by hand, each hop through the same check.
``SearchSettings.allow_private`` lifts the address check (for tests and intranets); the scheme check stays.
"""

from __future__ import annotations

import httpx
from pydantic import BaseModel

from ponder.config import SearchSettings
from ponder.errors import FetchError
from ponder.netguard import AddressGuard, Resolver, check_url
from ponder.search._ingest import decode, html_to_text

MAX_REDIRECTS = 5
TEXT_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "text/markdown")
USER_AGENT = "ponder-browser/0.1 (+https://github.com/ponder)"


class Page(BaseModel):
    url: str
    title: str = ""
    text: str
    content_type: str = ""


class Fetcher:
    """Fetches pages under the SSRF guard; ``resolver`` and ``transport`` are seams for tests."""

    def __init__(
        self,
        settings: SearchSettings,
        resolver: Resolver | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.guard = AddressGuard(settings.allow_private, resolver)
        self.resolver = self.guard.resolver
        self.transport = transport

    async def _address(self, url: httpx.URL) -> str:
        """The checked IP to connect to for ``url``."""
        return await self.guard.address(url)

    async def check_public(self, url: str) -> None:
        """The same policy as browsing, for other clients that connect out."""
        await self.guard.check_public(url)

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
