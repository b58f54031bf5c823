# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""A real OCI registry for tests: Debian's ``docker-registry``.

`DockerRegistry` runs the CNCF distribution server (2.8) on a free
loopback port with a generated configuration and storage in a temporary
directory: anonymous, with htpasswd basic auth (the bcrypt line is made
with the ``bcrypt`` module, so ``apache2-utils`` is not needed), or
with token auth (``auth: token``) against a `TokenServer`, which hands
out RS256 JSON web tokens signed with a key and self-signed certificate
made here.  `skopeo` reads images back as an independent client.
"""

__all__ = [
    "DockerRegistry",
    "TokenServer",
    "docker_registry_path",
    "skopeo",
    "skopeo_path",
]

import base64
import datetime
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DOCKER_REGISTRY = "docker-registry"


def docker_registry_path():
    """The ``docker-registry`` binary, or None where it is absent."""
    return shutil.which(DOCKER_REGISTRY) or (
        "/usr/bin/docker-registry"
        if os.access("/usr/bin/docker-registry", os.X_OK)
        else None
    )


def skopeo_path():
    return shutil.which("skopeo")


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DockerRegistry:
    """A ``docker-registry serve`` process on 127.0.0.1.

    :param users: ``{username: password}`` for htpasswd basic auth, or
        None for an anonymous registry.
    """

    def __init__(self, users=None, token_server=None):
        self.users = users
        self.token_server = token_server
        self.directory = None
        self.process = None
        self.port = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def _writeConfig(self):
        config = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {
                    "rootdirectory": os.path.join(self.directory, "data")
                },
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {
                "addr": self.host,
                "secret": secrets.token_hex(16),
            },
        }
        if self.users:
            import bcrypt

            path = os.path.join(self.directory, "htpasswd")
            with open(path, "w") as f:
                for user, password in self.users.items():
                    hashed = bcrypt.hashpw(
                        password.encode(), bcrypt.gensalt(rounds=4)
                    ).decode()
                    f.write(f"{user}:{hashed}\n")
            config["auth"] = {"htpasswd": {"realm": "test", "path": path}}
        if self.token_server is not None:
            config["auth"] = {"token": self.token_server.registryConfig()}
        # JSON is YAML.
        path = os.path.join(self.directory, "config.yml")
        with open(path, "w") as f:
            json.dump(config, f)
        return path

    def start(self, timeout=15):
        binary = docker_registry_path()
        if binary is None:
            raise RuntimeError("docker-registry is not installed")
        self.directory = tempfile.mkdtemp(prefix="lp-registry-")
        for _ in range(5):
            self.port = _free_port()
            config = self._writeConfig()
            log = open(os.path.join(self.directory, "registry.log"), "wb")
            self.process = subprocess.Popen(
                [binary, "serve", config],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            log.close()
            if self._waitUntilReady(timeout):
                return
            self._stopProcess()
        self.stop()
        raise RuntimeError("docker-registry did not start")

    def _waitUntilReady(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                urllib.request.urlopen(self.url + "/v2/", timeout=1).close()
                return True
            except urllib.error.HTTPError:
                # 401 from an authenticating registry: it is up.
                return True
            except OSError:
                time.sleep(0.05)
        return False

    def _stopProcess(self):
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def stop(self):
        self._stopProcess()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def log(self):
        try:
            with open(os.path.join(self.directory, "registry.log")) as f:
                return f.read()
        except OSError:
            return ""


def skopeo(*args, timeout=120):
    """Run skopeo; return its stdout, or raise with its stderr."""
    result = subprocess.run(
        [skopeo_path(), *args],
        capture_output=True,
        timeout=timeout,
        env=dict(os.environ, HOME=os.environ.get("HOME", "/tmp")),
    )
    if result.returncode != 0:
        raise AssertionError(
            "skopeo %s failed: %s"
            % (" ".join(args), result.stderr.decode(errors="replace"))
        )
    return result.stdout


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class TokenServer:
    """A loopback token server for distribution's ``auth: token``.

    Users authenticate with basic auth (``users``); every scope asked
    for is granted.  ``expires_in`` is the tokens' lifetime; ``issued``
    counts the tokens handed out.
    """

    service = "lp-test-registry"
    issuer = "lp-test-token-issuer"

    def __init__(self, users, expires_in=300):
        self.users = users
        self.expires_in = expires_in
        self.issued = 0
        self.directory = None
        self._server = None
        self._makeKey()

    def _makeKey(self):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.hazmat.primitives.serialization import Encoding
        from cryptography.x509.oid import NameOID

        self._key = rsa.generate_private_key(
            public_exponent=65537, key_size=2048
        )
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token")])
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(
                x509.BasicConstraints(ca=True, path_length=None),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )
        self._cert_der = certificate.public_bytes(Encoding.DER)
        self._cert_pem = certificate.public_bytes(Encoding.PEM)

    @property
    def realm(self):
        return "http://127.0.0.1:%d/token" % self._server.server_address[1]

    def registryConfig(self):
        path = os.path.join(self.directory, "token-root.pem")
        with open(path, "wb") as f:
            f.write(self._cert_pem)
        return {
            "realm": self.realm,
            "service": self.service,
            "issuer": self.issuer,
            "rootcertbundle": path,
        }

    def makeToken(self, subject, scopes):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        access = []
        for scope in scopes:
            parts = scope.split(":")
            if len(parts) >= 3:
                access.append(
                    {
                        "type": parts[0],
                        "name": ":".join(parts[1:-1]),
                        "actions": parts[-1].split(","),
                    }
                )
        now = int(time.time())
        header = {
            "typ": "JWT",
            "alg": "RS256",
            "x5c": [base64.b64encode(self._cert_der).decode("ascii")],
        }
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + self.expires_in,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = "%s.%s" % (
            _b64url(json.dumps(header).encode()),
            _b64url(json.dumps(claims).encode()),
        )
        signature = self._key.sign(
            signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
        )
        self.issued += 1
        return "%s.%s" % (signing_input, _b64url(signature))

    def start(self):
        self.directory = tempfile.mkdtemp(prefix="lp-token-")
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                parts = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(parts.query)
                auth = self.headers.get("Authorization", "")
                user = None
                if auth.startswith("Basic "):
                    try:
                        name, _, password = (
                            base64.b64decode(auth[6:]).decode().partition(":")
                        )
                    except ValueError:
                        name = password = None
                    if server.users.get(name) == password:
                        user = name
                if parts.path != "/token" or user is None:
                    body = b'{"errors":[{"code":"UNAUTHORIZED"}]}'
                    self.send_response(401)
                else:
                    token = server.makeToken(user, query.get("scope", []))
                    body = json.dumps(
                        {"token": token, "expires_in": server.expires_in}
                    ).encode()
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, daemon=True
        ).start()

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None
