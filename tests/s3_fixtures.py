"""A real S3 API server for the tests: moto's standalone server on 127.0.0.1, in its own process.

``s3_server`` starts ``python -m moto.server`` once per session (the server s3fs and zarr test
against), with its request log in a file; ``s3`` gives each test a fresh bucket and the standard
environment a user sets (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``),
which child processes (the CLI, Dask workers) inherit.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

#: the secret key of the tests: no output, log or graph may contain it
SECRET = "geohsi-SECRET-do-not-leak-7f3a9c"
KEY_ID = "geohsitestkeyid"


@dataclass
class S3Server:
    endpoint: str
    log: Path
    process: subprocess.Popen


@dataclass
class Bucket:
    url: str  # s3://NAME
    env: dict[str, str]
    fs: object

    def key(self, *parts: str) -> str:
        return "/".join([self.url, *parts])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> S3Server:
    """moto's standalone S3 server on a free loopback port, for the whole session."""
    pytest.importorskip("moto.server", reason="needs moto[server] (the test extra)")
    pytest.importorskip("s3fs", reason="needs s3fs (the s3 extra)")
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "requests.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=f, stderr=subprocess.STDOUT
        )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"moto server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
    yield S3Server(endpoint, log, proc)
    proc.terminate()
    proc.wait(timeout=10)


def s3_env(endpoint: str, secret: str = SECRET) -> dict[str, str]:
    """The environment a user of an S3-compatible store sets."""
    return {
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
    }


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Bucket:
    """A fresh bucket on the server, the environment pointing at it, and a private geohsi cache."""
    import s3fs

    env = {
        **s3_env(s3_server.endpoint),
        "GEOHSI_CACHE_DIR": str(tmp_path / "geohsi-cache"),
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance-role probing on a test machine
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_S3_ENDPOINT"):
        monkeypatch.delenv(k, raising=False)
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem()
    name = f"geohsi-{uuid.uuid4().hex[:10]}"
    fs.mkdir(name)
    yield Bucket(f"s3://{name}", env, fs)
    s3fs.S3FileSystem.clear_instance_cache()


def all_objects(bucket: Bucket) -> dict[str, bytes]:
    """Every object of the bucket with its bytes."""
    fs = bucket.fs
    fs.invalidate_cache()
    root = bucket.url.removeprefix("s3://")
    return {p: fs.cat_file(p) for p in fs.find(root)}


class FaultProxy:
    """A loopback HTTP proxy in front of the S3 server that injects the faults a real store has.

    * ``every``: every ``every``-th request is answered 503 ``SlowDown`` (what S3 sends when it
      throttles; clients must retry it);
    * ``deny_key``: requests signed with this access key id are answered 403 ``InvalidAccessKeyId``
      (moto itself accepts any key);
    * ``stall``: requests whose path starts with it are held ``stall_s`` seconds before they are
      forwarded (a server that hangs; any HTTP upstream, e.g. a STAC API).

    Everything else is forwarded unchanged (method, path, headers, body); ``failed`` counts the 503s.
    """

    def __init__(
        self,
        upstream: str,
        every: int = 0,
        deny_key: str | None = None,
        port: int = 0,
        stall: str | None = None,
        stall_s: float = 0.0,
    ) -> None:
        import http.client
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlsplit

        self.every, self.count, self.failed = every, 0, 0
        self.connections: set = set()
        self.closed = threading.Event()
        lock = threading.Lock()
        up = urlsplit(upstream)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with lock:
                    proxy.connections.add(self.connection)

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    parts = []
                    while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                    self.rfile.readline()
                    return b"".join(parts)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _forward(self) -> None:
                body = self._body()
                if deny_key and f"Credential={deny_key}/" in self.headers.get("Authorization", ""):
                    return self._error(403, b"InvalidAccessKeyId", b"The AWS Access Key Id you provided does not exist.")
                with lock:
                    proxy.count += 1
                    fail = bool(proxy.every) and proxy.count % proxy.every == 0
                    proxy.failed += fail
                if fail:
                    return self._error(503, b"SlowDown", b"Please reduce your request rate.")
                if stall and self.path.startswith(stall) and proxy.closed.wait(stall_s):
                    return  # closed while this request was held: it is never answered
                self._relay(body)

            def _error(self, status: int, code: bytes, message: bytes) -> None:
                msg = (
                    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>'
                    + code
                    + b"</Code><Message>"
                    + message
                    + b"</Message></Error>"
                )
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(msg)))
                self.end_headers()
                self.wfile.write(msg if self.command != "HEAD" else b"")

            def _relay(self, body: bytes) -> None:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("transfer-encoding", "connection")}
                headers["Content-Length"] = str(len(body))
                conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward  # noqa: N815

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address) -> None:  # noqa: ANN001 - socketserver's signature
                if not proxy.closed.is_set():  # a request cut by close() is the fault injected, not news
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", port), Handler)  # a given port: a store restarted where it was
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop at once, as a store that dies: the listener and every open (keep-alive) connection."""
        import socket as _socket

        self.closed.set()
        self.server.shutdown()
        self.server.server_close()
        for c in list(self.connections):
            with contextlib.suppress(OSError):
                c.shutdown(_socket.SHUT_RDWR)


__all__ = ["KEY_ID", "SECRET", "Bucket", "FaultProxy", "S3Server", "all_objects", "s3_env"]
