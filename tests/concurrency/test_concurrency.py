# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Several real processes ingesting overlapping images into one state.

- ``lp-oci run`` processes started together on one ``--state`` (SQLite,
  and PostgreSQL through ``LP_DATABASE_URI`` with the librarian in the
  state directory), each with an image sharing its two lower layers
  with the others: every run exits 0, every build is FULLYBUILT, each
  content has one row and one file, and ``lp-oci verify`` is clean.
- Upload processors in separate processes, released at once, each
  processing a build whose upload holds the same new layers (no state
  lock between them: they race on the librarian and the content rows):
  every build is FULLYBUILT, the layers are stored once, nothing is
  left over.
"""

__all__ = []

import json
import os
import subprocess
import sys
import time

import transaction
from fixtures import TempDir

from lp.archiveuploader.uploadprocessor import UploadStatusEnum
from lp.buildmaster.enums import BuildStatus
from lp.oci.tests.buildfarm import (
    make_oci_upload_dir,
    make_test_image,
    upload_files_dir,
    write_archive,
)
from lp.services.database.interfaces import IStore
from lp.services.librarian.model import LibraryFileContent
from lp.services.librarian.storage import get_librarian_storage
from lp.testing import TestCaseWithFactory
from lp.testing.layers import (
    LaunchpadZopelessLayer,
    SQLiteLaunchpadZopelessLayer,
)
from lpbuildd.ociimage.tests.helpers import CHILD_ENV
from lpoci.verify import verify_state

PROCESSES = 4

# Processes one upload once the start file exists; prints the result.
UPLOAD_WORKER = """
import os, sys, time
from lp.services.scripts import setup_services
state, uri, librarian, root, leaf, start = sys.argv[1:]
setup_services(state, database_uri=uri, librarian_root=librarian)
from lp.archiveuploader.uploadprocessor import UploadProcessor
# Every model the build's references name, as a script would import.
import lp.registry.model.distribution, lp.registry.model.distroseries
import lp.registry.model.person, lp.soyuz.model.archive
import lp.soyuz.model.distroarchseries, lp.buildmaster.model.builder
import lp.buildmaster.model.processor
while not os.path.exists(start):
    time.sleep(0.005)
result = UploadProcessor(root).processBuildUpload(
    os.path.join(root, "incoming"), leaf)
print(result.value if result else "none")
"""


def child_env(database_uri=None):
    env = dict(CHILD_ENV)
    env.pop("LP_LIBRARIAN_ROOT", None)
    env.pop("LP_DATABASE_URI", None)
    if database_uri:
        env["LP_DATABASE_URI"] = database_uri
    return env


class ConcurrencyMixin:
    def setUp(self):
        super().setUp()
        self.work = self.useFixture(TempDir()).path

    def assertStoredOnce(self, librarian):
        transaction.abort()
        rows = list(IStore(LibraryFileContent).find(LibraryFileContent.sha256))
        self.assertEqual(len(rows), len(set(rows)))
        files = [
            name
            for top in os.listdir(librarian)
            if len(top) == 2 and os.path.isdir(os.path.join(librarian, top))
            for name in os.listdir(os.path.join(librarian, top))
        ]
        self.assertEqual(sorted(rows), sorted(files))

    def test_concurrent_runs_on_one_state(self):
        state = os.path.join(self.work, "state")
        archives = []
        for seed in range(PROCESSES):
            directory = os.path.join(self.work, f"image{seed}")
            os.mkdir(directory)
            archives.append(
                write_archive(directory, [make_test_image(top_seed=10 + seed)])
            )
        env = child_env(self.database_uri())
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "lpoci.cli",
                    "run",
                    archive,
                    "--state",
                    state,
                    "--json",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                text=True,
            )
            for archive in archives
        ]
        for proc in procs:
            self.addCleanup(proc.wait)
            self.addCleanup(proc.kill)
        reports = []
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=300)
            self.assertNotIn("Traceback", stderr)
            self.assertEqual(0, proc.returncode, stderr)
            reports.append(json.loads(stdout))
        self.assertEqual(
            PROCESSES, len({report["build_id"] for report in reports})
        )
        # The shared lower layers were fetched once in all.
        fetched = {}
        for report in reports:
            for layer in report["images"][0]["layers"]:
                if layer["transfer"] == "fetched":
                    fetched[layer["digest"]] = fetched.get(layer["digest"], 0)
                    fetched[layer["digest"]] += 1
        self.assertEqual({1}, set(fetched.values()))
        self.assertEqual(2 + PROCESSES, len(fetched))
        # Each build FULLYBUILT, each content once, verify clean.
        env = child_env(self.database_uri())
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "lpoci.cli",
                "verify",
                "--state",
                state,
                "--json",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        self.assertEqual(0, result.returncode, result.stdout + result.stderr)
        self.assertTrue(json.loads(result.stdout)["clean"])
        if self.database_uri():
            transaction.abort()
            from lp.oci.model.ocirecipebuild import OCIRecipeBuild

            statuses = set(IStore(OCIRecipeBuild).find(OCIRecipeBuild.status))
            self.assertEqual({BuildStatus.FULLYBUILT}, statuses)
            self.assertStoredOnce(os.path.join(state, "librarian"))
        else:
            import sqlite3

            with sqlite3.connect(os.path.join(state, "launchpad.db")) as db:
                statuses = {
                    row[0]
                    for row in db.execute("SELECT status FROM OCIRecipeBuild")
                }
                rows = [
                    row[0]
                    for row in db.execute(
                        "SELECT sha256 FROM LibraryFileContent"
                    )
                ]
            self.assertEqual({BuildStatus.FULLYBUILT.value}, statuses)
            self.assertEqual(len(rows), len(set(rows)))

    def test_concurrent_uploads_store_a_new_layer_once(self):
        root = os.path.join(self.work, "uploads")
        fsroot = os.path.join(root, "incoming")
        image = make_test_image(top_seed=77)
        leaves = []
        for n in range(PROCESSES):
            build = self.factory.makeOCIRecipeBuild()
            build.updateStatus(BuildStatus.UPLOADING)
            leaf = build.getUploadDirLeaf(build.build_cookie)
            target = upload_files_dir(build, os.path.join(fsroot, leaf))
            os.makedirs(os.path.dirname(target))
            work = os.path.join(self.work, f"w{n}")
            os.mkdir(work)
            os.rename(make_oci_upload_dir([image], work), target)
            leaves.append((build, leaf))
        transaction.commit()
        librarian = get_librarian_storage().root
        start = os.path.join(self.work, "start")
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    UPLOAD_WORKER,
                    os.path.join(self.work, "state"),
                    self.layer.uri,
                    librarian,
                    root,
                    leaf,
                    start,
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=child_env(),
                text=True,
            )
            for _, leaf in leaves
        ]
        for proc in procs:
            self.addCleanup(proc.wait)
            self.addCleanup(proc.kill)
        # Let every worker get ready, then release them together.
        time.sleep(3)
        open(start, "w").close()
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=300)
            self.assertEqual(0, proc.returncode, stderr)
            self.assertEqual(UploadStatusEnum.ACCEPTED.value, stdout.strip())
        transaction.abort()
        for build, _ in leaves:
            self.assertEqual(BuildStatus.FULLYBUILT, build.status)
            self.assertTrue(build.verifySuccessfulUpload())
        self.assertStoredOnce(librarian)
        report = verify_state(os.path.join(self.work, "state"))
        self.assertTrue(report["clean"], report)


class TestConcurrencyPostgreSQL(ConcurrencyMixin, TestCaseWithFactory):
    layer = LaunchpadZopelessLayer

    def database_uri(self):
        return self.layer.uri


class TestConcurrencySQLite(ConcurrencyMixin, TestCaseWithFactory):
    layer = SQLiteLaunchpadZopelessLayer

    def database_uri(self):
        return None
