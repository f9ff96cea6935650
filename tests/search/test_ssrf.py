"""The SSRF guard: loopback, private, link-local and non-http addresses are refused, also behind DNS names and
redirects. Names resolve through a resolver injected at our own seam (no real DNS queries); the only real traffic
goes to the loopback server, and only where the test's configuration allows private addresses."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from ponder.config import SearchSettings
from ponder.errors import BlockedAddress, FetchError
from ponder.search import Fetcher

from ._server import _Server, serve

PUBLIC_IP = "93.184.216.34"  # never contacted: the hops that "reach" it are answered by a MockTransport


class MapResolver:
    """Names to addresses from a dict; records every lookup."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.calls: list[str] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        if host not in self.table:
            raise FetchError(f"cannot resolve {host!r}")
        return self.table[host]


@pytest.fixture(scope="module")
def site() -> Iterator[tuple[str, _Server]]:
    with serve() as s:
        yield s


def guarded(resolver: MapResolver | None = None, transport: httpx.AsyncBaseTransport | None = None) -> Fetcher:
    return Fetcher(SearchSettings(allow_private=False, fetch_timeout_s=2.0), resolver or MapResolver({}), transport)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/", "http://127.1.2.3:8080/x", "http://10.0.0.1/", "http://172.16.5.4/", "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/", "http://0.0.0.0/", "http://[::1]/", "http://[fe80::1]/",
        "http://[fd00::1]/", "http://[::ffff:127.0.0.1]/", "http://100.64.0.1/", "http://224.0.0.1/",
    ],
)  # fmt: skip
async def test_internal_addresses_are_refused(url: str) -> None:
    with pytest.raises(BlockedAddress, match="loopback, private or link-local"):
        await guarded().fetch(url)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/x", "gopher://example.org/", "data:,hi"])
async def test_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(BlockedAddress, match="scheme"):
        await guarded().fetch(url)


async def test_public_looking_name_resolving_to_loopback(site: tuple[str, _Server]) -> None:
    base, server = site
    port = base.rsplit(":", 1)[1]
    before = len(server.requests)
    resolver = MapResolver({"news.example.com": ["127.0.0.1"]})
    with pytest.raises(BlockedAddress, match=r"127\.0\.0\.1"):
        await guarded(resolver).fetch(f"http://news.example.com:{port}/volcanoes.html")
    assert resolver.calls == ["news.example.com"]
    assert len(server.requests) == before  # refused before connecting


async def test_any_internal_address_among_several_is_refused() -> None:
    resolver = MapResolver({"mixed.example.com": [PUBLIC_IP, "10.1.2.3"]})  # a DNS-rebinding style answer
    with pytest.raises(BlockedAddress, match=r"10\.1\.2\.3"):
        await guarded(resolver).fetch("http://mixed.example.com/")


@pytest.mark.parametrize(
    "location",
    ["http://127.0.0.1/admin", "http://[::1]:8080/", "http://internal.example.com/", "file:///etc/passwd",
     "http://169.254.169.254/latest/meta-data/"],
)  # fmt: skip
async def test_redirects_to_internal_addresses_are_refused(location: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(302, headers={"Location": location})

    resolver = MapResolver({"public.example.com": [PUBLIC_IP], "internal.example.com": ["192.168.0.10"]})
    with pytest.raises(BlockedAddress):
        await guarded(resolver, httpx.MockTransport(handler)).fetch("http://public.example.com/start")
    assert len(seen) == 1  # the first hop only; the internal target was never requested
    assert seen[0].url.host == PUBLIC_IP and seen[0].headers["host"] == "public.example.com"


async def test_connects_to_the_address_it_checked(site: tuple[str, _Server]) -> None:
    """With private addresses allowed (this test's configuration), a name is resolved once by the guard and the
    request goes to that address with the original Host header: no second lookup can swap the address."""
    base, server = site
    port = base.rsplit(":", 1)[1]
    resolver = MapResolver({"volcano.test": ["127.0.0.1"]})
    fetcher = Fetcher(SearchSettings(allow_private=True), resolver)
    page = await fetcher.fetch(f"http://volcano.test:{port}/volcanoes.html")
    assert "Volcanoes are openings" in page.text
    assert server.requests[-1] == ("/volcanoes.html", f"volcano.test:{port}")
    assert resolver.calls == ["volcano.test"]


async def test_allow_private_lets_loopback_through(site: tuple[str, _Server]) -> None:
    page = await Fetcher(SearchSettings(allow_private=True)).fetch(site[0] + "/glaciers.html")
    assert page.title == "Glaciers"


@pytest.mark.parametrize("url", ["not a url", "http://", "http:///path-only"])
async def test_malformed_urls(url: str) -> None:
    with pytest.raises((FetchError, BlockedAddress)):
        await guarded().fetch(url)
