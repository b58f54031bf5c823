# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""A real OCI registry for tests: Debian's ``docker-registry``.

`DockerRegistry` runs the CNCF distribution server (2.8) on a free
loopback port with a generated configuration and storage in a temporary
directory, anonymous or with htpasswd basic auth (the bcrypt line is
made with the ``bcrypt`` module, so ``apache2-utils`` is not needed).
`skopeo` reads images back as an independent client.
"""

__all__ = [
    "DockerRegistry",
    "docker_registry_path",
    "skopeo",
    "skopeo_path",
]

import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

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

    def __init__(self, users=None):
        self.users = users
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
