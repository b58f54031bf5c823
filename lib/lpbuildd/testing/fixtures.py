# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Fixtures running a builder in-process or in a subprocess."""

__all__ = [
    "BuilderProcess",
    "BuilderServerFixture",
]

import os
import shutil
import subprocess
import sys
import tempfile

import fixtures

import lpbuildd
from lpbuildd.server import BuilderServer

# The directory that holds the lpbuildd package.
_LIB_DIR = os.path.dirname(os.path.dirname(os.path.abspath(lpbuildd.__file__)))


class BuilderServerFixture(fixtures.Fixture):
    """An in-process `BuilderServer` on 127.0.0.1 with a temporary cache.

    Attributes once set up: `server`, `builder`, `url`, `cache_dir`.
    """

    def __init__(self, cache_dir=None):
        super().__init__()
        self.cache_dir = cache_dir

    def _setUp(self):
        if self.cache_dir is None:
            self.cache_dir = self.useFixture(fixtures.TempDir()).path
        self.server = BuilderServer(self.cache_dir)
        self.url = self.server.start()
        self.addCleanup(self.server.stop)
        self.builder = self.server.builder


class BuilderProcess(fixtures.Fixture):
    """A builder in a subprocess: ``python -m lpbuildd.server``.

    :param cache_dir: the file cache (default: a temporary directory).
    :param waiting_files: paths to report as results; the builder then
        starts WAITING with build id `build_id` and status `build_status`.
    Attributes once set up: `url`, `cache_dir`, `process`.
    """

    def __init__(
        self,
        cache_dir=None,
        waiting_files=(),
        build_id="1-1",
        build_status="OK",
        port=0,
    ):
        super().__init__()
        self.cache_dir = cache_dir
        self.waiting_files = list(waiting_files)
        self.build_id = build_id
        self.build_status = build_status
        self.port = port
        self.url = None
        self.process = None

    def _setUp(self):
        if self.cache_dir is None:
            self.cache_dir = tempfile.mkdtemp(prefix="lpbuildd-cache-")
            self.addCleanup(shutil.rmtree, self.cache_dir, True)
        command = [
            sys.executable,
            "-m",
            "lpbuildd.server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--cache",
            self.cache_dir,
        ]
        if self.waiting_files:
            command += ["--build-id", self.build_id]
            command += ["--build-status", self.build_status]
            for path in self.waiting_files:
                command += ["--waiting-file", path]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [_LIB_DIR, env.get("PYTHONPATH")])
        )
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, env=env, text=True
        )
        self.addCleanup(self._stop)
        line = self.process.stdout.readline()
        if not line.startswith("LISTENING "):
            raise RuntimeError(f"Builder failed to start: {line!r}")
        self.url = line.split(None, 1)[1].strip()

    def _stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
