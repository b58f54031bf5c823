# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""A loopback HTTP proxy that injects network faults in front of a builder.

Only for faults that a real builder cannot be made to produce: a
connection cut in the middle of a body whose Content-Length was already
promised, a response that is late (to trigger client timeouts), a body
that stalls part way, 5xx responses and malformed response headers.
Wrong content and 404s come from the real builder (corrupt a cache
file; ask for an unknown SHA-1).

Usage::

    proxy = FaultProxy(builder_url)
    proxy.start()
    proxy.dropAfter(1000, sha1=sha1)      # first GET of sha1 is cut
    worker = BuilderWorker(proxy.url)
    ...
    proxy.stop()

Rules apply to ``/filecache/`` requests (or to every request with
``path_prefix="/"``), optionally to one SHA-1 only, for the first
``times`` matching requests (``None``: all of them).  The first rule
that matches and still has uses left is applied; everything else is
forwarded unchanged.  `FaultProxy.requests` records every request path,
and `active_requests` / `peak_requests` count concurrent file requests.
"""

__all__ = [
    "FaultProxy",
    "FaultRule",
]

import http.client
import socket
import struct
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
}

_CHUNK = 64 * 1024


class FaultRule:
    """One kind of fault, applied to matching requests.

    :param kind: "drop" (send headers and `after_bytes` of the body, then
        close the connection; with `reset`, abort it with a TCP RST),
        "delay" (wait `seconds` before answering at all), "stall" (send
        headers and `after_bytes` of the body, wait `seconds`, then send
        the rest), "status" (answer `status` without asking the
        builder) or "header" (forward the response with the value of
        its `header` replaced by `value`).
    """

    KINDS = ("drop", "delay", "stall", "status", "header")

    def __init__(
        self,
        kind,
        sha1=None,
        times=1,
        after_bytes=0,
        seconds=0.0,
        status=503,
        reset=False,
        path_prefix="/filecache/",
        header=None,
        value=None,
    ):
        if kind not in self.KINDS:
            raise ValueError(f"Unknown fault kind {kind!r}")
        self.kind = kind
        self.sha1 = sha1
        self.remaining = times
        self.after_bytes = after_bytes
        self.seconds = seconds
        self.status = status
        self.reset = reset
        self.path_prefix = path_prefix
        self.header = header
        self.value = value
        self.applied = 0

    def matches(self, path):
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.sha1 is not None:
            return path == "/filecache/" + self.sha1
        return path.startswith(self.path_prefix)

    def consume(self):
        self.applied += 1
        if self.remaining is not None:
            self.remaining -= 1


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FaultProxy/1.0"

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self._proxy()

    def do_HEAD(self):
        self._proxy()

    def do_POST(self):
        self._proxy()

    def _proxy(self):
        proxy = self.server.fault_proxy
        path = urllib.parse.urlsplit(self.path).path
        rule = proxy._takeRule(path)
        counted = path.startswith("/filecache/")
        if counted:
            proxy._enter()
        try:
            self.close_connection = True
            if rule is not None and rule.kind == "delay":
                if proxy._stopping.wait(rule.seconds):
                    return self._abort()
            if rule is not None and rule.kind == "status":
                return self._sendStatus(rule.status)
            self._forward(proxy, rule)
        finally:
            if counted:
                proxy._leave()

    def _sendStatus(self, status):
        body = f"Injected fault: HTTP {status}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _abort(self, reset=False):
        if reset:
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
        else:
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.connection.close()

    def _copyBody(self, response, limit=None):
        sent = 0
        while limit is None or sent < limit:
            size = _CHUNK if limit is None else min(_CHUNK, limit - sent)
            chunk = response.read(size)
            if not chunk:
                break
            self.wfile.write(chunk)
            sent += len(chunk)
        return sent

    def _forward(self, proxy, rule):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {
            name: value
            for name, value in self.headers.items()
            if name.lower() not in _HOP_BY_HOP
        }
        upstream = http.client.HTTPConnection(
            proxy.upstream_host, proxy.upstream_port, timeout=60
        )
        try:
            upstream.request(self.command, self.path, body, headers)
            response = upstream.getresponse()
            self.send_response(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() not in _HOP_BY_HOP and name.lower() not in (
                    "server",
                    "date",
                ):
                    if (
                        rule is not None
                        and rule.kind == "header"
                        and name.lower() == rule.header.lower()
                    ):
                        value = rule.value
                    self.send_header(name, value)
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command == "HEAD":
                return
            if rule is not None and rule.kind in ("drop", "stall"):
                self._copyBody(response, rule.after_bytes)
                if rule.kind == "drop":
                    return self._abort(reset=rule.reset)
                if proxy._stopping.wait(rule.seconds):
                    return self._abort()
            self._copyBody(response)
        except (ConnectionError, BrokenPipeError, socket.timeout):
            # The client went away (e.g. it timed out); so do we.
            self._abort()
        finally:
            upstream.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


class FaultProxy:
    """A loopback HTTP proxy in front of `upstream_url` injecting faults."""

    def __init__(self, upstream_url, host="127.0.0.1", port=0):
        parts = urllib.parse.urlsplit(upstream_url)
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.host = host
        self.port = port
        self.url = None
        self.rules = []
        self.requests = []
        self.active_requests = 0
        self.peak_requests = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = None
        self._thread = None

    def start(self):
        """Start serving in a daemon thread; return the URL."""
        self._stopping.clear()
        self._server = _Server((self.host, self.port), _Handler)
        self._server.fault_proxy = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fault-proxy",
            daemon=True,
        )
        self._thread.start()
        self.url = "http://%s:%d" % (
            self.host,
            self._server.server_address[1],
        )
        return self.url

    def stop(self):
        """Stop serving; requests waiting in a fault are aborted."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        self._server = None
        self._thread = None
        self.url = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def reset(self):
        """Remove every rule and clear the counters."""
        with self._lock:
            self.rules = []
            self.requests = []
            self.peak_requests = self.active_requests

    def addRule(self, rule):
        """Add a `FaultRule`; return it (see `FaultRule.applied`)."""
        with self._lock:
            self.rules.append(rule)
        return rule

    def dropAfter(self, after_bytes, sha1=None, times=1, reset=False):
        """Cut the body after `after_bytes` bytes."""
        return self.addRule(
            FaultRule(
                "drop",
                sha1=sha1,
                times=times,
                after_bytes=after_bytes,
                reset=reset,
            )
        )

    def delay(self, seconds, sha1=None, times=1, path_prefix="/filecache/"):
        """Wait `seconds` before answering."""
        return self.addRule(
            FaultRule(
                "delay",
                sha1=sha1,
                times=times,
                seconds=seconds,
                path_prefix=path_prefix,
            )
        )

    def stallAfter(self, after_bytes, seconds, sha1=None, times=1):
        """Pause for `seconds` after `after_bytes` bytes of the body."""
        return self.addRule(
            FaultRule(
                "stall",
                sha1=sha1,
                times=times,
                after_bytes=after_bytes,
                seconds=seconds,
            )
        )

    def failWith(self, status=503, sha1=None, times=1):
        """Answer with HTTP `status` instead of forwarding."""
        return self.addRule(
            FaultRule("status", sha1=sha1, times=times, status=status)
        )

    def replaceHeader(self, header, value, sha1=None, times=1):
        """Forward the response with `header` set to `value`."""
        return self.addRule(
            FaultRule(
                "header", sha1=sha1, times=times, header=header, value=value
            )
        )

    def _takeRule(self, path):
        with self._lock:
            self.requests.append(path)
            for rule in self.rules:
                if rule.matches(path):
                    rule.consume()
                    return rule
        return None

    def _enter(self):
        with self._lock:
            self.active_requests += 1
            self.peak_requests = max(self.peak_requests, self.active_requests)

    def _leave(self):
        with self._lock:
            self.active_requests -= 1
