# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""A loopback proxy in front of a registry that injects faults.

`lpbuildd.testing.faultproxy` cuts responses to GETs from a builder;
pushing needs faults in requests with bodies, so this one forwards any
method and can:

- ``drop``: read ``after_bytes`` of the request body, forward them to
  the registry (which then sees the body end early) and close both
  connections without answering;
- ``status``: answer ``status`` with ``headers`` and ``body`` without
  asking the registry;
- ``strip_mount``: remove ``mount`` and ``from`` from the query, so
  that the registry opens an upload instead of mounting (a registry
  that declines mounts);
- ``header``: replace a response header's value;
- ``endless``: answer ``status`` with ``headers`` and a chunked body
  that never ends (until the client goes, or ``limit`` bytes), without
  asking the registry;
- ``location``: send a ``Location`` the registry answers to the host
  ``to`` (host:port) instead (an upload session on another host).

Rules match a method and a regular expression on the path, for the
first ``times`` matching requests (None: all) after the first ``skip``.
`requests` records ``(method, path, headers)`` of every request.
"""

__all__ = [
    "RegistryFaultProxy",
]

import http.client
import re
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


class _Rule:
    def __init__(self, kind, method, path, times, skip=0, **options):
        self.kind = kind
        self.skip = skip
        self.method = method
        self.path = re.compile(path)
        self.times = times
        self.options = options
        self.used = 0

    def matches(self, method, path):
        if self.times is not None and self.used >= self.times:
            return False
        if self.method is not None and self.method != method:
            return False
        if self.path.search(path) is None:
            return False
        if self.skip > 0:
            self.skip -= 1
            return False
        return True


class RegistryFaultProxy:
    """A proxy on 127.0.0.1 in front of ``upstream`` (host:port)."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.rules = []
        self.requests = []
        self.active = 0
        self.peak = 0
        self._lock = threading.Lock()
        self._server = None
        self._thread = None

    @property
    def host(self):
        return "127.0.0.1:%d" % self._server.server_address[1]

    @property
    def url(self):
        return "http://" + self.host

    def addRule(self, kind, method=None, path="", times=1, skip=0, **options):
        """Apply a fault to matching requests after ``skip`` of them."""
        with self._lock:
            self.rules.append(
                _Rule(kind, method, path, times, skip=skip, **options)
            )

    def _takeRule(self, method, path):
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.used += 1
                    return rule
        return None

    def start(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Idle keep-alive connections end, so that stop() can join.
            timeout = 1

            def log_message(self, *args):
                pass

            def _handle(self):
                proxy._handle(self)

            do_GET = do_HEAD = do_PUT = do_POST = _handle
            do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # Handler threads are joined when the server closes.
        self._server.daemon_threads = False
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True
        )
        self._thread.start()

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _handle(self, handler):
        method = handler.command
        path = handler.path
        with self._lock:
            self.requests.append((method, path, dict(handler.headers)))
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            self._forward(handler, method, path)
        finally:
            with self._lock:
                self.active -= 1

    def _forward(self, handler, method, path):
        rule = self._takeRule(method, path)
        length = int(handler.headers.get("Content-Length") or 0)
        if rule is not None and rule.kind == "status":
            if length:
                handler.rfile.read(length)
            body = rule.options.get("body", b"")
            handler.send_response(rule.options.get("status", 500))
            for name, value in rule.options.get("headers", {}).items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            if method != "HEAD":
                handler.wfile.write(body)
            return
        if rule is not None and rule.kind == "endless":
            if length:
                handler.rfile.read(length)
            handler.send_response(rule.options.get("status", 200))
            for name, value in rule.options.get("headers", {}).items():
                handler.send_header(name, value)
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            handler.close_connection = True
            if method == "HEAD":
                return
            chunk = rule.options.get("chunk", b"[" * 65536)
            sent = 0
            try:
                while sent < rule.options.get("limit", 2 << 30):
                    handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    sent += len(chunk)
            except OSError:
                pass
            return
        if rule is not None and rule.kind == "strip_mount":
            parts = urllib.parse.urlsplit(path)
            query = [
                (k, v)
                for k, v in urllib.parse.parse_qsl(parts.query)
                if k not in ("mount", "from")
            ]
            path = urllib.parse.urlunsplit(
                parts._replace(query=urllib.parse.urlencode(query))
            )
        connection = http.client.HTTPConnection(self.upstream, timeout=60)
        try:
            connection.putrequest(
                method, path, skip_host=True, skip_accept_encoding=True
            )
            for name, value in handler.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    connection.putheader(name, value)
            connection.endheaders()
            if rule is not None and rule.kind == "drop":
                after = min(rule.options.get("after_bytes", 0), length)
                if after:
                    connection.send(handler.rfile.read(after))
                handler.close_connection = True
                connection.close()
                return
            remaining = length
            while remaining > 0:
                chunk = handler.rfile.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                connection.send(chunk)
                remaining -= len(chunk)
            response = connection.getresponse()
            body = response.read()
            handler.send_response(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() in _HOP_BY_HOP:
                    continue
                if name.lower() == "content-length" and method != "HEAD":
                    continue
                if (
                    rule is not None
                    and rule.kind == "header"
                    and name.lower() == rule.options["header"].lower()
                ):
                    value = rule.options["value"]
                if (
                    rule is not None
                    and rule.kind == "location"
                    and name.lower() == "location"
                ):
                    parts = urllib.parse.urlsplit(value)
                    value = urllib.parse.urlunsplit(
                        parts._replace(
                            scheme="http", netloc=rule.options["to"]
                        )
                    )
                handler.send_header(name, value)
            if method != "HEAD":
                handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            if method != "HEAD":
                handler.wfile.write(body)
        finally:
            connection.close()
