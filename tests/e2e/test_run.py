# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""End to end: a real builder, the build farm behaviour, upload processing.

Archives are made in code; the builder gathers them (or files a legacy
upload the old way) and serves them over loopback; the behaviour polls
and collects; `UploadProcessor` runs `OCIRecipeUpload`, which records.
Faults come from the real builder (a corrupt or missing cache file) or
from `FaultProxy` (a connection dropped mid-file).
"""

__all__ = []

import io
import json
import logging
import os
import pty
import re
import shlex
import sqlite3
import subprocess
import sys
import tarfile

from fixtures import TempDir
from testtools.matchers import MatchesStructure
from twisted.internet import defer
from twisted.internet.threads import deferToThread

from lp.archiveuploader.uploadprocessor import UploadStatusEnum
from lp.buildmaster.enums import BuildStatus, WorkerBuilderStatus
from lp.buildmaster.model.buildfarmjobbehaviour import BUILDD_MANAGER_LOG_NAME
from lp.oci.enums import OCIFileKind
from lp.oci.model.ocirecipebuild import OCIFile
from lp.oci.tests.buildfarm import (
    BuildFarmTestMixin,
    OCIBuildFarmLayer,
    SQLiteOCIBuildFarmLayer,
    file_legacy_upload,
    file_oci_upload,
    librarian_contents,
    make_image,
    make_test_image,
    process_build_upload,
    upload_files_dir,
    write_archive,
)
from lp.services.database.interfaces import IStore
from lp.services.librarian.storage import get_librarian_storage
from lp.testing import TestCase, TestCaseWithFactory
from lpbuildd.testing.faultproxy import FaultProxy
from lpoci.progress import RunProgress
from lpoci.run import _run_logger, build_on_builder, collect_build
from ocitypes.digest import Digest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))

# A phase's final progress line: bytes, rate, elapsed time.
PHASE_LINE = re.compile(
    r"\A(gather|fetch|processing|push): "
    r"\d+\.\d MB, \d+ MB/s, \d+\.\d s( \(.*\))?\Z"
)


class EndToEndMixin(BuildFarmTestMixin):
    def setUp(self):
        super().setUp()
        self.setUpBuildFarm()
        self.recipe = self.factory.makeOCIRecipe()
        self.builds = []

    def newBuild(self):
        build = self.factory.makeOCIRecipeBuild(recipe=self.recipe)
        self.builds.append(build)
        return build

    def collectBuild(self, behaviour):
        """Poll the builder until the build is handled, as `lp-oci run`."""
        return collect_build(
            behaviour, behaviour.build.buildqueue_record, timeout=30
        )

    def gather(self, build, image, behaviour=None, url=None):
        """File ``image`` on the builder; return (behaviour, result)."""
        behaviour = behaviour or self.makeBehaviour(build, url=url)
        archive = write_archive(self.work_dir, [image])
        result = file_oci_upload(
            self.builder, behaviour.build_cookie, archive, self.work_dir
        )
        return behaviour, result

    @defer.inlineCallbacks
    def buildImage(self, image, url=None):
        """Take ``image`` through the whole cycle; return the behaviour."""
        build = self.newBuild()
        behaviour, _ = self.gather(build, image, url=url)
        upload_path = yield self.collectBuild(behaviour)
        self.assertIsNotNone(upload_path, build.failure_reason)
        process_build_upload(upload_path)
        return behaviour

    def layerSizes(self, image_result):
        return {
            layer.descriptor.digest: layer.descriptor.size
            for image in image_result.images
            for layer in image.layers
        }

    def assertLibrarianHoldsOnlyTheLog(self, build):
        """The librarian holds build logs, and nothing else."""
        self.assertIsNotNone(build.log)
        logs = {b.log.content.sha256 for b in self.builds if b.log is not None}
        self.assertEqual(logs, librarian_contents())

    def assertFailedCleanly(self, build, status, reason):
        self.assertEqual(status, build.status)
        self.assertIn(reason, build.failure_reason)
        self.assertTrue(IStore(OCIFile).find(OCIFile).is_empty())
        self.assertLibrarianHoldsOnlyTheLog(build)
        self.assertNothingCollected()

    @defer.inlineCallbacks
    def test_oci_upload(self):
        build = self.newBuild()
        behaviour, result = self.gather(build, make_test_image())
        upload_path = yield self.collectBuild(behaviour)
        self.assertEqual(BuildStatus.UPLOADING, build.status)
        process_build_upload(upload_path)
        self.assertEqual(BuildStatus.FULLYBUILT, build.status)
        self.assertTrue(build.verifySuccessfulUpload())
        sizes = self.layerSizes(result)
        self.assertEqual(sum(sizes.values()), behaviour.bytes_fetched)
        self.assertEqual(0, behaviour.bytes_reused)
        (gathered,) = result.images
        self.assertEqual(
            [
                (layer.descriptor.digest, layer.diff_id)
                for layer in gathered.layers
            ],
            [(layer.digest, layer.diff_id) for layer in build.layers],
        )
        manifests = build.image_manifests
        self.assertEqual(1, len(manifests))
        kinds = sorted(f.kind.name for f, _, _ in build.getFiles())
        self.assertEqual(
            [
                "CONFIG",
                "INDEX",
                "LAYER",
                "LAYER",
                "LAYER",
                "MANIFEST",
                "OTHER",
            ],
            kinds,
        )
        # The builder was cleaned.
        self.assertEqual({}, self.builder.waitingfiles)

    @defer.inlineCallbacks
    def test_legacy_upload(self):
        build = self.newBuild()
        behaviour = self.makeBehaviour(build)
        image = make_test_image()
        files = file_legacy_upload(
            self.builder,
            behaviour.build_cookie,
            image,
            self.work_dir,
            pulled=(0,),
        )
        upload_path = yield self.collectBuild(behaviour)
        self.assertEqual("legacy", behaviour.upload_format)
        process_build_upload(upload_path)
        self.assertEqual(BuildStatus.FULLYBUILT, build.status)
        digests = json.loads(files["digests.json"])[0]
        for diff_id, details in digests.items():
            layer = build.getLayerFileByDigest(details["digest"])
            oci_file = layer[0]
            self.assertEqual(
                Digest.from_legacy(details["digest"]),
                oci_file.layer_file_digest,
            )
            self.assertEqual(Digest.parse(diff_id), oci_file.diff_id)
            self.assertEqual(OCIFileKind.LAYER, oci_file.kind)
        self.assertEqual(
            sum(
                len(data)
                for name, data in files.items()
                if name.endswith(".tar.gz")
            ),
            behaviour.bytes_fetched,
        )

    @defer.inlineCallbacks
    def test_legacy_upload_reuses_known_digests(self):
        image = make_test_image()
        first = self.newBuild()
        behaviour = self.makeBehaviour(first)
        file_legacy_upload(
            self.builder,
            behaviour.build_cookie,
            image,
            self.work_dir,
            pulled=(0,),
        )
        upload_path = yield self.collectBuild(behaviour)
        process_build_upload(upload_path)
        second = self.newBuild()
        behaviour = self.makeBehaviour(second)
        files = file_legacy_upload(
            self.builder,
            behaviour.build_cookie,
            image,
            self.work_dir,
            pulled=(0,),
        )
        upload_path = yield self.collectBuild(behaviour)
        # The pulled layer's registry digest is not the digest of the
        # file the builder made, so the librarian cannot vouch for it:
        # only that layer is fetched again.
        pulled = json.loads(files["digests.json"])[0][image.diff_ids[0]]
        pulled_name = pulled["layer_id"] + ".tar.gz"
        self.assertEqual(
            [pulled_name],
            [
                n
                for n in os.listdir(upload_files_dir(second, upload_path))
                if n.endswith(".tar.gz")
            ],
        )
        process_build_upload(upload_path)
        self.assertEqual(BuildStatus.FULLYBUILT, second.status)
        self.assertEqual(len(files[pulled_name]), behaviour.bytes_fetched)
        self.assertEqual(
            [layer.library_file for layer in first.layers][1:],
            [layer.library_file for layer in second.layers][1:],
        )
        self.assertEqual(
            [layer.library_file.content for layer in first.layers],
            [layer.library_file.content for layer in second.layers],
        )

    @defer.inlineCallbacks
    def test_second_build_fetches_no_layer(self):
        image = make_test_image()
        first = yield self.buildImage(image)
        second = yield self.buildImage(image)
        self.assertEqual(BuildStatus.FULLYBUILT, second.build.status)
        self.assertEqual(0, second.bytes_fetched)
        self.assertEqual(first.bytes_fetched, second.bytes_reused)
        self.assertEqual(
            {"reused"}, {how for how, _ in second.transfers.values()}
        )
        self.assertEqual(
            [layer.library_file for layer in first.build.layers],
            [layer.library_file for layer in second.build.layers],
        )
        for layer in second.build.layers:
            self.assertTrue(second.build.verifySuccessfulUpload())
            self.assertIsNotNone(layer.diff_id)

    @defer.inlineCallbacks
    def test_rebuild_fetches_only_the_changed_layer(self):
        yield self.buildImage(make_test_image(top_seed=3))
        build = self.newBuild()
        behaviour, result = self.gather(build, make_test_image(top_seed=4))
        upload_path = yield self.collectBuild(behaviour)
        process_build_upload(upload_path)
        self.assertEqual(BuildStatus.FULLYBUILT, build.status)
        top = result.images[0].layers[-1].descriptor
        self.assertEqual(top.size, behaviour.bytes_fetched)
        self.assertEqual(
            ("fetched", top.size), behaviour.transfers[top.digest]
        )

    @defer.inlineCallbacks
    def assertDamagedLayerIsFetchedAgain(self, damage):
        """Damage the stored bottom layer; the rebuild fetches it again."""
        image = make_test_image()
        first = yield self.buildImage(image)
        layer = first.build.layers[0]
        sha256 = layer.library_file.content.sha256
        size = layer.library_file.content.filesize
        storage = get_librarian_storage()
        with storage.open(sha256) as f:
            good = f.read()
        damage(storage.getPath(sha256))
        with self.assertLogs("lp.services.librarian", "WARNING") as logs:
            second = yield self.buildImage(image)
        self.assertIn(sha256, "\n".join(logs.output))
        self.assertEqual(BuildStatus.FULLYBUILT, second.build.status)
        digest = Digest("sha256", sha256)
        self.assertEqual(("fetched", size), second.transfers[digest])
        self.assertEqual(size, second.bytes_fetched)
        with storage.open(sha256) as f:
            self.assertEqual(good, f.read())
        self.assertTrue(second.build.verifySuccessfulUpload())
        # The same content row, healed, for both builds.
        self.assertEqual(
            layer.library_file.content,
            second.build.layers[0].library_file.content,
        )
        return storage

    @defer.inlineCallbacks
    def test_layer_with_a_flipped_byte_is_fetched_again(self):
        def flip(path):
            with open(path, "r+b") as f:
                f.seek(10)
                byte = f.read(1)
                f.seek(10)
                f.write(bytes([byte[0] ^ 0x01]))

        storage = yield self.assertDamagedLayerIsFetchedAgain(flip)
        # The damaged bytes are kept aside as evidence.
        self.assertEqual(
            1, len(os.listdir(os.path.join(storage.root, "quarantine")))
        )

    @defer.inlineCallbacks
    def test_truncated_layer_is_fetched_again(self):
        def truncate(path):
            os.truncate(path, os.path.getsize(path) - 1)

        yield self.assertDamagedLayerIsFetchedAgain(truncate)

    @defer.inlineCallbacks
    def test_missing_layer_file_is_fetched_again(self):
        yield self.assertDamagedLayerIsFetchedAgain(os.unlink)

    @defer.inlineCallbacks
    def test_connection_dropped_mid_file_is_retried(self):
        proxy = self.useFixture_proxy()
        build = self.newBuild()
        behaviour, result = self.gather(
            build, make_test_image(), url=proxy.url
        )
        layer = result.images[0].layers[0].descriptor
        name = f"blobs-{layer.digest.algorithm}-{layer.digest.hex}"
        sha1 = self.builder.waitingfiles[name]
        proxy.dropAfter(1000, sha1=sha1)
        upload_path = yield self.collectBuild(behaviour)
        process_build_upload(upload_path)
        self.assertEqual(BuildStatus.FULLYBUILT, build.status)
        self.assertEqual(
            2,
            len([p for p in proxy.requests if p.endswith("/" + sha1)]),
        )

    @defer.inlineCallbacks
    def test_collect_wakes_when_gathering_ends(self):
        # Polling once an hour, collect_build still collects as soon as
        # the gathering it was told about ends (as `lp-oci run` does).
        build = self.newBuild()
        behaviour = self.makeBehaviour(build)
        archive = write_archive(self.work_dir, [make_test_image()])
        build_dir = os.path.join(self.work_dir, "wake-build")
        os.makedirs(build_dir)
        self.builder.startBuild(behaviour.build_cookie)
        gathered = defer.Deferred()
        statuses = []
        handle_status = behaviour.handleStatus

        def handleStatus(bq, status):
            statuses.append(status["builder_status"])
            if len(statuses) == 1:
                # Gather only once the first poll has seen BUILDING.
                deferToThread(
                    build_on_builder,
                    self.builder,
                    behaviour.build_cookie,
                    archive,
                    build_dir,
                    "example.com/app:latest",
                ).chainDeferred(gathered)
            return handle_status(bq, status)

        behaviour.handleStatus = handleStatus
        upload_path = yield collect_build(
            behaviour,
            build.buildqueue_record,
            poll_interval=3600,
            timeout=7200,
            wake=gathered,
        )
        self.assertIsNotNone(upload_path, build.failure_reason)
        self.assertEqual(
            [WorkerBuilderStatus.BUILDING, WorkerBuilderStatus.WAITING],
            statuses,
        )
        self.assertIsNotNone((yield gathered))

    @defer.inlineCallbacks
    def test_verbose_shows_retries(self):
        # `lp-oci run --verbose` sends the build farm's log, retries
        # included, to stderr; without it, nothing of it shows.
        for name in (BUILDD_MANAGER_LOG_NAME, "lpoci.run"):
            logger = logging.getLogger(name)
            self.addCleanup(setattr, logger, "propagate", logger.propagate)
            self.addCleanup(setattr, logger, "handlers", list(logger.handlers))
            self.addCleanup(logger.setLevel, logger.level)
        for verbose in (True, False):
            stream = io.StringIO()
            _run_logger(RunProgress(stream, mode="lines"), verbose)
            proxy = self.useFixture_proxy()
            build = self.newBuild()
            behaviour, result = self.gather(
                build, make_test_image(), url=proxy.url
            )
            layer = result.images[0].layers[0].descriptor
            name = f"blobs-{layer.digest.algorithm}-{layer.digest.hex}"
            proxy.dropAfter(1000, sha1=self.builder.waitingfiles[name])
            upload_path = yield self.collectBuild(behaviour)
            self.assertIsNotNone(upload_path, build.failure_reason)
            if verbose:
                self.assertRegex(
                    stream.getvalue(),
                    r"(?m)^lp-oci: WARNING: Attempt 1 to fetch \S+ failed",
                )
                self.assertIn(
                    "lp-oci: INFO: Grabbing file:", stream.getvalue()
                )
            else:
                self.assertEqual("", stream.getvalue())

    def useFixture_proxy(self):
        proxy = FaultProxy(self.builder_server.url)
        proxy.start()
        # Stopping joins the proxy's thread, which may be talking to the
        # builder on this reactor: do it in a thread.
        self.addCleanup(deferToThread, proxy.stop)
        return proxy

    def cacheFileOfTopLayer(self, result):
        layer = result.images[0].layers[-1].descriptor
        sha1 = self.builder.waitingfiles[
            f"blobs-{layer.digest.algorithm}-{layer.digest.hex}"
        ]
        return self.builder.cachePath(sha1)

    @defer.inlineCallbacks
    def test_corrupt_cache_file_fails_cleanly(self):
        build = self.newBuild()
        behaviour, result = self.gather(build, make_test_image())
        path = self.cacheFileOfTopLayer(result)
        with open(path, "r+b") as f:
            data = f.read()
            f.seek(0)
            f.write(bytes([data[0] ^ 0xFF]) + data[1:])
        self.assertIsNone((yield self.collectBuild(behaviour)))
        self.assertFailedCleanly(
            build, BuildStatus.FAILEDTOUPLOAD, "received content has SHA-1"
        )

    @defer.inlineCallbacks
    def test_missing_cache_file_fails_cleanly(self):
        build = self.newBuild()
        behaviour, result = self.gather(build, make_test_image())
        os.unlink(self.cacheFileOfTopLayer(result))
        self.assertIsNone((yield self.collectBuild(behaviour)))
        self.assertFailedCleanly(
            build, BuildStatus.FAILEDTOUPLOAD, "builder has no file"
        )

    @defer.inlineCallbacks
    def test_blob_with_wrong_digest_fails_cleanly(self):
        # The builder's file has the SHA-1 it claims, but not the digest
        # its name and its descriptor give.
        build = self.newBuild()
        behaviour, result = self.gather(build, make_test_image())
        layers = result.images[0].layers
        names = [
            f"blobs-sha256-{layer.descriptor.digest.hex}" for layer in layers
        ]
        files = self.builder.waitingfiles
        files[names[0]], files[names[1]] = files[names[1]], files[names[0]]
        self.assertIsNone((yield self.collectBuild(behaviour)))
        self.assertFailedCleanly(
            build,
            BuildStatus.FAILEDTOUPLOAD,
            "Build returned a bad image: blobs-sha256-",
        )
        self.assertIn(
            sorted(names[:2])[0] + " does not match its descriptor",
            build.failure_reason,
        )

    @defer.inlineCallbacks
    def test_hostile_filemap_names_refused(self):
        # (NUL cannot cross XML-RPC; test_buildfarmjobbehaviour has it.)
        for name in ("../escape", "a/b", ".hidden", ".."):
            build = self.newBuild()
            behaviour, _ = self.gather(build, make_test_image())
            self.builder.waitingfiles[name] = next(
                iter(self.builder.waitingfiles.values())
            )
            self.assertIsNone((yield self.collectBuild(behaviour)))
            self.assertFailedCleanly(
                build,
                BuildStatus.FAILEDTOUPLOAD,
                "Build returned a file named",
            )
            self.assertFalse(
                os.path.exists(os.path.join(self.upload_root, "escape"))
            )

    @defer.inlineCallbacks
    def test_neither_upload_kind_fails(self):
        build = self.newBuild()
        behaviour = self.makeBehaviour(build)
        self.builder.startBuild(behaviour.build_cookie)
        path = os.path.join(self.work_dir, "something.txt")
        with open(path, "wb") as f:
            f.write(b"not an image\n")
        self.builder.addWaitingFile(path)
        self.builder.buildComplete("OK")
        self.assertIsNone((yield self.collectBuild(behaviour)))
        # Without index.json and oci-layout, the legacy files.
        self.assertFailedCleanly(
            build,
            BuildStatus.FAILEDTOUPLOAD,
            "Build did not return manifest.json.",
        )

    @defer.inlineCallbacks
    def test_upload_failure_leaves_nothing(self):
        # A layer vanishes between collection and upload processing.
        build = self.newBuild()
        behaviour, result = self.gather(build, make_test_image())
        upload_path = yield self.collectBuild(behaviour)
        layer = result.images[0].layers[1].descriptor
        os.unlink(
            os.path.join(
                upload_files_dir(build, upload_path),
                f"blobs-sha256-{layer.digest.hex}",
            )
        )
        self.assertEqual(
            UploadStatusEnum.REJECTED, process_build_upload(upload_path)
        )
        self.assertThat(
            build,
            MatchesStructure.byEquality(status=BuildStatus.FAILEDTOUPLOAD),
        )
        self.assertEqual(
            f"Missing layer file: blobs-sha256-{layer.digest.hex}.",
            build.failure_reason,
        )
        self.assertTrue(IStore(OCIFile).find(OCIFile).is_empty())
        # Only the build log and the upload log are left.
        self.assertEqual(
            {build.log.content.sha256, build.upload_log.content.sha256},
            librarian_contents(),
        )


class TestEndToEndPostgreSQL(EndToEndMixin, TestCaseWithFactory):
    layer = OCIBuildFarmLayer


class TestEndToEndSQLite(EndToEndMixin, TestCaseWithFactory):
    layer = SQLiteOCIBuildFarmLayer


class TestRunCommand(TestCase):
    """``lp-oci run`` in a subprocess, on its own state directory."""

    def command_env(self):
        env = dict(os.environ)
        env.pop("LP_DATABASE_URI", None)
        env.pop("LP_LIBRARIAN_ROOT", None)
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [os.path.join(ROOT, "lib"), env.get("PYTHONPATH")])
        )
        return env

    def run_command(self, *args):
        env = self.command_env()
        return subprocess.run(
            [sys.executable, "-m", "lpoci.cli", "run", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    def setUp(self):
        super().setUp()
        self.state = os.path.join(self.useFixture(TempDir()).path, "var")

    def test_sample_twice(self):
        first = self.run_command("--sample", "--state", self.state, "--json")
        self.assertEqual(0, first.returncode, first.stderr)
        first_report = json.loads(first.stdout)
        second = self.run_command("--sample", "--state", self.state, "--json")
        self.assertEqual(0, second.returncode, second.stderr)
        report = json.loads(second.stdout)
        self.assertEqual(
            {
                "format",
                "build_id",
                "recipe",
                "arch_tag",
                "title",
                "images",
                "bytes_fetched",
                "bytes_reused",
                "phases",
                "next_steps",
            },
            set(report),
        )
        self.assertEqual(
            ["gather", "fetch", "processing"], list(report["phases"])
        )
        self.assertEqual("sample", report["recipe"])
        self.assertEqual("amd64", report["arch_tag"])
        self.assertEqual("amd64 build of ~lp-oci/sample", report["title"])
        # The reused layers were not fetched again.
        self.assertLess(
            report["phases"]["fetch"]["bytes"],
            first_report["phases"]["fetch"]["bytes"],
        )
        self.assertEqual("docker25-classic", report["format"])
        self.assertEqual(first_report["build_id"] + 1, report["build_id"])
        (image,) = report["images"]
        self.assertEqual("linux/amd64", image["platform"])
        self.assertEqual(["docker.io/lp-oci/sample:latest"], image["names"])
        self.assertEqual(3, len(image["layers"]))
        self.assertEqual(
            {"fetched"},
            {
                layer["transfer"]
                for layer in first_report["images"][0]["layers"]
            },
        )
        self.assertEqual(
            {"reused"}, {layer["transfer"] for layer in image["layers"]}
        )
        self.assertEqual(0, report["bytes_fetched"])
        self.assertEqual(first_report["bytes_fetched"], report["bytes_reused"])
        self.assertEqual(
            sum(layer["size"] for layer in image["layers"]),
            report["bytes_reused"],
        )

    def test_readable_summary(self):
        result = self.run_command("--sample", "--state", self.state)
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertIn("FULLYBUILT", result.stdout)
        self.assertIn("bytes fetched:", result.stdout)
        # Progress goes to stderr, the summary alone to stdout.  Not on
        # a terminal: one line per phase, once it has ended.
        self.assertTrue(result.stdout.startswith("build "), result.stdout)
        self.assertNotIn("MB/s", result.stdout)
        lines = result.stderr.splitlines()
        self.assertEqual(
            ["gather", "fetch", "processing"],
            [line.split(":")[0] for line in lines],
            result.stderr,
        )
        for line in lines:
            self.assertRegex(line, PHASE_LINE)
        self.assertNotIn("\r", result.stderr)
        # The image's names, and the next steps.
        self.assertIn(
            "\n    names docker.io/lp-oci/sample:latest\n", result.stdout
        )
        state = os.path.abspath(self.state)
        build_url = (
            "http://127.0.0.1:8085/api/devel/~lp-oci/+oci-recipe/sample"
            "/+build/1"
        )
        self.assertTrue(
            result.stdout.endswith(
                "next steps:\n"
                f"  lp-oci serve --state {state}\n"
                f"  lp-oci export 1 --state {state} --format oci "
                "-o sample-1.oci.tar\n"
                f"  lp-oci fetch '{build_url}' -o sample-1-fetched.oci.tar\n"
            ),
            result.stdout,
        )

    def test_next_steps_run(self):
        # The export step runs as printed (from the directory where the
        # user is); the archive holds the build's manifest.
        result = self.run_command("--sample", "--state", self.state, "--json")
        self.assertEqual(0, result.returncode, result.stderr)
        report = json.loads(result.stdout)
        serve, export, fetch = report["next_steps"]
        self.assertEqual(
            ["lp-oci", "serve", "--state", os.path.abspath(self.state)],
            shlex.split(serve),
        )
        self.assertEqual(
            ["lp-oci", "fetch"], shlex.split(fetch)[:2], report["next_steps"]
        )
        command = shlex.split(export)
        self.assertEqual(["lp-oci", "export"], command[:2])
        cwd = self.useFixture(TempDir()).path
        exported = subprocess.run(
            [sys.executable, "-m", "lpoci.cli", *command[1:]],
            capture_output=True,
            text=True,
            env=self.command_env(),
            cwd=cwd,
            timeout=120,
        )
        self.assertEqual(0, exported.returncode, exported.stderr)
        with tarfile.open(os.path.join(cwd, "sample-1.oci.tar")) as tar:
            index = json.load(tar.extractfile("index.json"))
        self.assertEqual(
            [report["images"][0]["manifest_digest"]],
            [entry["digest"] for entry in index["manifests"]],
        )

    def test_push_options_checked_before_anything(self):
        # A bad --image, --tag or --registry is one line, exit status 2,
        # and nothing built: the state is not even created.
        for options, start in (
            (
                ["--image", "Bad Name"],
                "lp-oci: error: --image 'Bad Name' is not a valid repository",
            ),
            (
                ["--image", "app", "--tag", "x y"],
                "lp-oci: error: --tag 'x y' is not a valid tag",
            ),
            (
                ["--image", "app", "--tag", "edge", "--tag=-x"],
                "lp-oci: error: --tag '-x' is not a valid tag",
            ),
        ):
            result = self.run_command(
                "--sample",
                "--state",
                self.state,
                "--registry",
                "http://127.0.0.1:1",
                *options,
            )
            self.assertEqual(2, result.returncode, result.stderr)
            self.assertEqual("", result.stdout)
            lines = result.stderr.splitlines()
            self.assertEqual(1, len(lines), result.stderr)
            self.assertTrue(lines[0].startswith(start), lines[0])
            self.assertFalse(os.path.exists(self.state))
        result = self.run_command(
            "--sample",
            "--state",
            self.state,
            "--registry",
            "http://reg istry",
            "--image",
            "app",
        )
        self.assertEqual(2, result.returncode, result.stderr)
        self.assertEqual(
            "lp-oci: error: --registry 'http://reg istry' does not name a "
            "registry host (host or host:port)\n",
            result.stderr,
        )
        self.assertFalse(os.path.exists(self.state))

    def test_push_failures_are_one_line(self):
        # The registry is unreachable: one line from run (no log record
        # of the job's first) ...
        run = self.run_command(
            "--sample",
            "--state",
            self.state,
            "--registry",
            "http://127.0.0.1:1",
            "--image",
            "cli/nowhere",
            "-q",
        )
        self.assertEqual(1, run.returncode)
        (line,) = run.stderr.splitlines()
        self.assertTrue(
            line.startswith("lp-oci: error: registry push failed: "), line
        )
        self.assertIn("\n  not pushed: WAITING, lp-oci run-jobs", run.stdout)
        # ... and from run-jobs, once the job is due for its last try:
        # the job fails for good, said on stdout alone.
        with sqlite3.connect(os.path.join(self.state, "launchpad.db")) as db:
            db.execute(
                "UPDATE Job SET scheduled_start = NULL, "
                "attempt_count = max_retries"
            )
        jobs = subprocess.run(
            [sys.executable, "-m", "lpoci.cli", "run-jobs"]
            + ["--state", self.state],
            capture_output=True,
            text=True,
            env=self.command_env(),
            timeout=120,
        )
        self.assertEqual(1, jobs.returncode, jobs.stderr)
        self.assertEqual("", jobs.stderr)
        self.assertRegex(
            jobs.stdout.splitlines()[0],
            r"\Abuild 1: FAILED: Cannot reach the registry",
        )

    def test_recipe_and_arch_tag_from_the_image(self):
        # An arm/v7 image in Arm_App.tar: the recipe is arm-app, the
        # build armhf; --recipe names another recipe.
        directory = os.path.dirname(self.state)
        archive = write_archive(
            directory,
            [
                make_image(
                    architecture="arm",
                    variant="v7",
                    tags=("example.com/arm-app:1.0",),
                )
            ],
            name="Arm_App.tar",
        )
        result = self.run_command(archive, "--state", self.state, "--json")
        self.assertEqual(0, result.returncode, result.stderr)
        report = json.loads(result.stdout)
        self.assertEqual("arm-app", report["recipe"])
        self.assertEqual("armhf", report["arch_tag"])
        self.assertEqual("armhf build of ~lp-oci/arm-app", report["title"])
        (image,) = report["images"]
        self.assertEqual("linux/arm/v7", image["platform"])
        self.assertEqual(["example.com/arm-app:1.0"], image["names"])
        result = self.run_command(
            archive, "--state", self.state, "--recipe", "other", "--json"
        )
        self.assertEqual(0, result.returncode, result.stderr)
        report = json.loads(result.stdout)
        self.assertEqual("other", report["recipe"])
        self.assertEqual("armhf build of ~lp-oci/other", report["title"])
        # The web service says the same.
        shown = subprocess.run(
            [sys.executable, "-m", "lpoci.cli", "list", "--state"]
            + [self.state, "--json"],
            capture_output=True,
            text=True,
            env=self.command_env(),
            timeout=120,
        )
        self.assertEqual(0, shown.returncode, shown.stderr)
        self.assertEqual(
            [("other", "armhf"), ("arm-app", "armhf")],
            [
                (build["recipe"], build["arch_tag"])
                for build in json.loads(shown.stdout)["builds"]
            ],
        )

    def test_quiet(self):
        result = self.run_command("--sample", "--state", self.state, "-q")
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertEqual("", result.stderr)
        self.assertTrue(result.stdout.startswith("build "), result.stdout)

    def test_verbose(self):
        result = self.run_command("--sample", "--state", self.state, "-v")
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertIn("lp-oci: INFO: Grabbing file: index.json", result.stderr)
        self.assertIn("lp-oci: INFO: builder: listening", result.stderr)
        self.assertRegex(result.stderr, r"(?m)^processing: ")
        self.assertTrue(result.stdout.startswith("build "), result.stdout)
        self.assertNotIn("lp-oci:", result.stdout)

    def test_progress_on_a_terminal(self):
        # With stderr on a terminal, each phase's line is redrawn in
        # place (\r) and left, final, when it ends; stdout (a pipe)
        # has the summary alone.
        primary, secondary = pty.openpty()
        self.addCleanup(os.close, primary)
        env = self.command_env()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "lpoci.cli", "run", "--sample"]
                + ["--state", self.state],
                stdout=subprocess.PIPE,
                stderr=secondary,
                env=env,
                text=True,
            )
        finally:
            os.close(secondary)
        output = b""
        while True:
            try:
                data = os.read(primary, 65536)
            except OSError:  # EIO: the other side is closed.
                break
            if not data:
                break
            output += data
        stdout = proc.stdout.read()
        proc.stdout.close()
        self.assertEqual(0, proc.wait(timeout=120))
        self.assertTrue(stdout.startswith("build "), stdout)
        self.assertNotIn("MB/s", stdout)
        text = output.decode()
        # Each phase: drawn while running, then its final line ends
        # with a newline; the terminal shows three lines in the end.
        finals = [
            line.rsplit("\r", 1)[-1].replace("\x1b[K", "")
            for line in text.replace("\r\n", "\n").split("\n")
            if line
        ]
        self.assertEqual(
            ["gather", "fetch", "processing"],
            [line.split(":")[0] for line in finals],
            repr(text),
        )
        for line in finals:
            self.assertRegex(line, PHASE_LINE)
        self.assertIn("\rgather: ", text)
        self.assertIn("\x1b[K", text)

    def test_bad_archive(self):
        archive = os.path.join(os.path.dirname(self.state), "bad.tar")
        with open(archive, "wb") as f:
            f.write(b"this is not a tar archive" * 40)
        result = self.run_command(archive, "--state", self.state, "--json")
        self.assertEqual(1, result.returncode)
        self.assertEqual("", result.stdout)
        lines = result.stderr.splitlines()
        self.assertEqual(1, len(lines), result.stderr)
        self.assertTrue(lines[0].startswith("lp-oci: error: "), lines[0])
        self.assertIn("FAILEDTOBUILD", lines[0])
