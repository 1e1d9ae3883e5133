"""executor.address where something answers but is not a Dask scheduler: a listener that
accepts and says nothing waited for ever, an HTTP server's reply was read as a message length
(a 3 EiB allocation, a traceback). Both are one ConfigError within the bounded handshake."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("distributed")

from hermes_opt.run import dask_pool  # noqa: E402
from sim.errors import ConfigError  # noqa: E402


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setattr(dask_pool, "CONNECT_TIMEOUT_S", 1)
    monkeypatch.setattr(dask_pool, "HANDSHAKE_GRACE_S", 2)


def _silent_listener() -> tuple[socket.socket, int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    held = []
    threading.Thread(target=lambda: held.extend(server.accept() for _ in range(4)),
                     daemon=True).start()
    return server, server.getsockname()[1]


def test_a_silent_listener_is_one_line_within_the_bound(quick):
    server, port = _silent_listener()
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=rf"executor.address='tcp://127.0.0.1:{port}': "
                                          r"(something answers there but no Dask handshake "
                                          r"came within 3 s|not a Dask scheduler|cannot connect)"):
        dask_pool.DaskPool(1, f"tcp://127.0.0.1:{port}").__enter__()
    assert time.perf_counter() - start < 10
    server.close()


def test_an_http_server_is_one_line(quick):
    class NotFound(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 -- the http.server API
            self.send_error(404)

        def log_message(self, *args):  # quiet
            pass
    # threaded: a handler stuck reading Dask's binary hello must not block shutdown()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = httpd.server_address[1]
    with pytest.raises(ConfigError, match=rf"executor.address='tcp://127.0.0.1:{port}': "):
        dask_pool.DaskPool(1, f"tcp://127.0.0.1:{port}").__enter__()
    httpd.shutdown()
