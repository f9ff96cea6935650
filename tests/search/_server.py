"""A real HTTP server on loopback serving the HTML pages in ``pages/`` plus a few misbehaving endpoints."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

PAGES = Path(__file__).parent / "pages"
BIG = 200_000


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def _send(self, status: int, body: bytes, ctype: str = "text/html; charset=utf-8", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k.replace("_", "-"), v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        self.server.requests.append((url.path, self.headers.get("Host", "")))
        name = url.path.lstrip("/")
        if url.path == "/redirect":
            self._send(302, b"", Location=parse_qs(url.query)["to"][0])
        elif url.path == "/loop":
            self._send(302, b"", Location="/loop")
        elif url.path == "/image.png":
            self._send(200, b"\x89PNG\r\n\x1a\n" + bytes(100), "image/png")
        elif url.path == "/huge.html":
            self._send(200, b"<p>" + b"lava " * (BIG // 5) + b"</p>")
        elif url.path == "/huge-chunked.html":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"<p>" + b"ash " * 2000 + b"</p>"
            for _ in range(BIG // len(chunk) + 2):
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif url.path == "/slow.html":
            time.sleep(2)
            self._send(200, b"<p>too late</p>")
        elif url.path == "/latin1.html":
            self._send(200, (PAGES / "latin1.html").read_bytes(), "text/html; charset=iso-8859-1")
        elif url.path == "/odd-charset.html":
            self._send(200, "<p>Caf\u00e9 cr\u00e8me on the crater rim</p>".encode(), "text/html; charset=x-no-such-9")
        elif url.path == "/notes.txt":
            self._send(200, b"Plain notes about pumice, which floats on water.", "text/plain")
        elif name and (PAGES / name).is_file():
            self._send(200, (PAGES / name).read_bytes())
        else:
            self._send(404, b"<p>not found</p>")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    requests: list[tuple[str, str]]

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that give up early (timeouts, size limits) break the pipe on purpose


@contextmanager
def serve(host: str = "127.0.0.1") -> Iterator[tuple[str, _Server]]:
    server = _Server((host, 0), _Handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()
