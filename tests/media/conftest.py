"""Fixtures for the media tests: synthetic images and real HTTP(S) servers on 127.0.0.1."""

from __future__ import annotations

import io
import shutil
import ssl
import struct
import subprocess
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image


def png_bytes(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "PNG")
    return buf.getvalue()


def jpeg_bytes(width: int = 64, height: int = 48) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (30, 200, 30)).save(buf, "JPEG")
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that declares a ``width``×``height`` canvas: a decompression bomb's header."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


@pytest.fixture
def make_bomb_png() -> Callable[[int, int], bytes]:
    return png_header_only


@dataclass
class LocalServer:
    """A running test server: its port, base URL and what it has seen."""

    port: int
    base: str
    png: bytes  # what /img.png serves
    jpeg: bytes  # what /img.jpg serves
    hosts: list[str | None] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)

    def url(self, path: str, host: str = "127.0.0.1", scheme: str | None = None) -> str:
        scheme = scheme or urlsplit(self.base).scheme
        return f"{scheme}://{host}:{self.port}{path}"


PNG = png_bytes()
JPEG = jpeg_bytes()
MIB = 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    """Serves one behaviour per path; see ``do_GET``."""

    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/octet-stream", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self.server.state.hosts.append(self.headers.get("Host"))
        path = urlsplit(self.path).path
        port = self.server.server_address[1]
        try:
            self._route(path, port)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass  # the client gave up on purpose (size or time limit)

    def _route(self, path: str, port: int) -> None:
        if path == "/img.png":
            self._send(200, PNG, "image/png")
        elif path == "/img.jpg":
            self._send(200, JPEG, "image/jpeg")
        elif path == "/page.html":
            self._send(200, b"<html><body>not a picture</body></html>", "text/html")
        elif path == "/mislabelled.txt":  # a real PNG served as text: the bytes decide, not the header
            self._send(200, PNG, "text/plain")
        elif path == "/truncated.png":
            self._send(200, PNG[: len(PNG) // 2], "image/png")
        elif path == "/bomb.png":
            self._send(200, png_header_only(100_000, 100_000), "image/png")
        elif path == "/big-canvas.png":
            self._send(200, png_header_only(8000, 8000), "image/png")
        elif path == "/huge-declared":
            self.send_response(200)
            self.send_header("Content-Length", str(50 * MIB))
            self.end_headers()
            self.wfile.write(b"\0" * 1024)
        elif path == "/huge-undeclared":
            self.send_response(200)  # HTTP/1.0, no Content-Length: the body runs until close
            self.end_headers()
            for _ in range(8):
                self.wfile.write(b"\0" * (256 * 1024))
        elif path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(50):
                self.wfile.write(b"\0")
                self.wfile.flush()
                time.sleep(0.1)
        elif path == "/gzip":
            self._send(200, zlib.compress(PNG), "image/png", Content_Encoding="gzip")
        elif path == "/missing":
            self._send(404, b"not found", "text/plain")
        elif path == "/redirect":
            self._redirect("/img.png")
        elif path.startswith("/chain/"):  # /chain/N redirects N times, then serves the image
            n = int(path.rsplit("/", 1)[1])
            if n == 0:
                self._send(200, PNG, "image/png")
            else:
                self._redirect(f"/chain/{n - 1}")
        elif path == "/loop":
            self._redirect("/loop")
        elif path == "/redirect-named":
            self._redirect(f"http://images.test:{port}/img.png")
        elif path == "/redirect-metadata":
            self._redirect("http://169.254.169.254/latest/meta-data/")
        elif path == "/redirect-internal":
            self._redirect(f"http://internal.test:{port}/img.png")
        elif path == "/redirect-unspecified":
            self._redirect(f"http://0.0.0.0:{port}/img.png")
        elif path == "/redirect-ftp":
            self._redirect("ftp://example.com/img.png")
        elif path == "/redirect-credentials":
            self._redirect(f"http://user:secret@127.0.0.1:{port}/img.png")
        else:
            self._send(404, b"no such route", "text/plain")


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler still trickling /slow must not block teardown
    state: LocalServer


def _serve(server: _Server) -> Iterator[_Server]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def http_server() -> Iterator[LocalServer]:
    """A plain HTTP server on 127.0.0.1 with every behaviour the fetch tests need."""
    server = _Server(("127.0.0.1", 0), _Handler)
    port = server.server_address[1]
    server.state = LocalServer(port=port, base=f"http://127.0.0.1:{port}", png=PNG, jpeg=JPEG)
    for _ in _serve(server):
        yield server.state


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for ``images.test`` only (no IP address in it)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    out = tmp_path_factory.mktemp("tls")
    cert, key = out / "cert.pem", out / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", "/CN=images.test", "-addext", "subjectAltName=DNS:images.test",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="session")
def https_server(tls_cert: tuple[Path, Path]) -> Iterator[LocalServer]:
    """An HTTPS server on 127.0.0.1 whose certificate names only ``images.test``; records SNI."""
    cert, key = tls_cert
    server = _Server(("127.0.0.1", 0), _Handler)
    port = server.server_address[1]
    state = LocalServer(port=port, base=f"https://127.0.0.1:{port}", png=PNG, jpeg=JPEG)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda _sock, name, _ctx: state.sni.append(name)  # type: ignore[assignment,misc,return-value]
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.state = state
    for _ in _serve(server):
        yield state


@pytest.fixture(scope="session")
def trusting_test_cert(tls_cert: tuple[Path, Path]) -> ssl.SSLContext:
    """A client TLS context that trusts the test certificate (and only it)."""
    return ssl.create_default_context(cafile=str(tls_cert[0]))
