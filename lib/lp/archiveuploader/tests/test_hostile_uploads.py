# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Upload directories that hold what no builder files.

Links, FIFOs, directories and devices where files are expected; media
types that are no media types; foreign layers that point at private
addresses; legacy layers that are not what digests.json says.  Each is
refused with one line, the build FAILEDTOUPLOAD, nothing stored, and
upload processing never blocks.
"""

__all__ = []

import gzip
import json
import os
import signal
import stat

from fixtures import TempDir

from lp.archiveuploader.tests.test_ocirecipeupload import UploadTestMixin
from lp.oci.tests.buildfarm import librarian_contents
from lp.services.librarian.storage import get_librarian_storage
from lp.testing import TestCaseWithFactory
from lp.testing.layers import (
    LaunchpadZopelessLayer,
    SQLiteLaunchpadZopelessLayer,
)
from ocitypes.digest import Digest


def _load(path):
    with open(path, "rb") as f:
        return json.loads(f.read())


def _write_blob(upload, data):
    digest = Digest.of_bytes(data)
    with open(os.path.join(upload, f"blobs-sha256-{digest.hex}"), "wb") as f:
        f.write(data)
    return digest


def _json(value):
    return json.dumps(value, separators=(",", ":")).encode()


def rewrite_manifest(upload, change):
    """Apply ``change`` to the upload's first manifest, re-pointing the
    index at the result, as a builder that wrote it would have."""
    index_path = os.path.join(upload, "index.json")
    index = _load(index_path)
    entry = index["manifests"][0]
    old = Digest.parse(entry["digest"])
    manifest = _load(os.path.join(upload, f"blobs-sha256-{old.hex}"))
    change(manifest, entry)
    data = _json(manifest)
    digest = _write_blob(upload, data)
    entry["digest"] = str(digest)
    entry["size"] = len(data)
    for other in index["manifests"][1:]:
        if other.get("digest") == str(old):
            other.update(digest=str(digest), size=len(data))
    with open(index_path, "wb") as f:
        f.write(_json(index))


class Timeout(Exception):
    pass


class HostileUploadMixin(UploadTestMixin):
    def process(self, build=None, dry_run=False):
        # A FIFO must not block upload processing: fail, do not hang.
        def alarm(signum, frame):
            raise Timeout("upload processing blocked")

        previous = signal.signal(signal.SIGALRM, alarm)
        signal.alarm(60)
        try:
            return super().process(build=build, dry_run=dry_run)
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)

    def outsideFile(self, content):
        path = os.path.join(self.useFixture(TempDir()).path, "outside")
        with open(path, "wb") as f:
            f.write(content)
        return path

    def layerPath(self, upload):
        return self.blobPaths(upload)[0]

    def assertNoLinkInLibrarian(self):
        root = get_librarian_storage().root
        for directory, _, names in os.walk(root):
            for name in names:
                mode = os.lstat(os.path.join(directory, name)).st_mode
                self.assertTrue(stat.S_ISREG(mode), name)

    def replaceWith(self, path, kind, target=None):
        """Put a ``kind`` where the file ``path`` was."""
        os.unlink(path)
        if kind == "symlink":
            os.symlink(target, path)
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "directory":
            os.mkdir(path)
        elif kind == "device":
            if os.geteuid() != 0:
                self.skipTest("making a device node needs root")
            os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 5))
        else:
            raise AssertionError(kind)

    # Links, FIFOs, directories, devices.

    def test_symlinked_blob_with_the_right_content_is_refused(self):
        # Before: the librarian took a hard link to the link's target,
        # a file outside the state, and served it.
        upload = self.ociUpload()
        path = self.layerPath(upload)
        with open(path, "rb") as f:
            outside = self.outsideFile(f.read())
        self.replaceWith(path, "symlink", outside)
        self.assertFailedCleanly(
            self.process(),
            f"{os.path.basename(path)} is a symbolic link, not a regular file",
        )
        self.assertNoLinkInLibrarian()

    def test_non_regular_files_are_refused(self):
        for name in ("layer", "index.json", "oci-layout", "config"):
            for kind in ("fifo", "directory", "device", "symlink"):
                with self.subTest(name=name, kind=kind):
                    self.build = self.makeBuild()
                    upload = self.ociUpload()
                    if name == "layer":
                        path = self.layerPath(upload)
                    elif name == "config":
                        manifest = _load(os.path.join(upload, "index.json"))
                        digest = Digest.parse(
                            manifest["manifests"][0]["digest"]
                        )
                        manifest = _load(
                            os.path.join(upload, f"blobs-sha256-{digest.hex}")
                        )
                        digest = Digest.parse(manifest["config"]["digest"])
                        path = os.path.join(
                            upload, f"blobs-sha256-{digest.hex}"
                        )
                    else:
                        path = os.path.join(upload, name)
                    self.replaceWith(path, kind, "/dev/zero")
                    before = librarian_contents()
                    result = self.process()
                    if name in ("index.json", "oci-layout") and (
                        kind == "directory"
                    ):
                        reason = "Build did not produce index.json"
                    else:
                        reason = f"{os.path.basename(path)} is a"
                    self.assertFailedCleanly(result, reason, keep=before)
                    self.assertNoLinkInLibrarian()

    def test_hard_link_shared_outside_the_upload_is_copied(self):
        # A file with another name besides the upload's may change after
        # it is stored: the librarian copies it rather than link it.
        upload = self.ociUpload()
        path = self.layerPath(upload)
        other = os.path.join(self.useFixture(TempDir()).path, "other")
        os.link(path, other)
        self.assertAccepted(self.process())
        storage = get_librarian_storage()
        for layer in self.build.layers:
            stored = os.stat(
                storage.getPath(layer.library_file.content.sha256)
            )
            self.assertNotEqual(os.stat(other).st_ino, stored.st_ino)

    def test_legacy_symlinked_layer_is_refused(self):
        # Before: a legacy layer that was a link was stored and served.
        directory, files = self.legacyUpload()
        layer = sorted(n for n in files if n.endswith(".tar.gz"))[0]
        path = os.path.join(directory, layer)
        outside = self.outsideFile(files[layer])
        self.replaceWith(path, "symlink", outside)
        self.assertFailedCleanly(
            self.process(),
            f"{layer} is a symbolic link, not a regular file",
        )
        self.assertNoLinkInLibrarian()

    def test_legacy_fifo_and_directory_are_refused(self):
        for name in ("digests.json", "manifest.json", "layer", "config"):
            for kind in ("fifo", "directory"):
                with self.subTest(name=name, kind=kind):
                    self.build = self.makeBuild()
                    directory, files = self.legacyUpload()
                    if name == "layer":
                        name = sorted(
                            n for n in files if n.endswith(".tar.gz")
                        )[0]
                    elif name == "config":
                        name = _load(os.path.join(directory, "manifest.json"))[
                            0
                        ]["Config"]
                    self.replaceWith(os.path.join(directory, name), kind)
                    before = librarian_contents()
                    result = self.process()
                    if name == "digests.json" and kind == "directory":
                        reason = "Build did not produce index.json"
                    else:
                        reason = f"{name} is a"
                    self.assertFailedCleanly(result, reason, keep=before)

    # Legacy layers are verified.

    def test_legacy_pulled_layer_is_checked_against_its_diff_id(self):
        # digests.json names a pulled layer by the registry's digest of
        # another compression: nothing vouched for the file before.
        directory, files = self.legacyUpload(pulled=(0,))
        digests = _load(os.path.join(directory, "digests.json"))
        [(diff_id, details)] = [
            (diff_id, details)
            for diff_id, details in digests[0].items()
            if details["digest"].startswith("sha256:")
        ]
        layer = details["layer_id"] + ".tar.gz"
        with open(os.path.join(directory, layer), "wb") as f:
            f.write(gzip.compress(b"not the layer", mtime=0))
        self.assertFailedCleanly(
            self.process(), f"{layer} does not have its diff_id {diff_id}"
        )

    def test_legacy_pulled_layer_that_is_right_is_accepted(self):
        self.legacyUpload(pulled=(0,))
        self.assertAccepted(self.process())

    def test_legacy_built_layer_must_have_its_digest(self):
        directory, files = self.legacyUpload()
        digests = _load(os.path.join(directory, "digests.json"))
        details = next(iter(digests[0].values()))
        layer = details["layer_id"] + ".tar.gz"
        with open(os.path.join(directory, layer), "wb") as f:
            f.write(gzip.compress(b"not the layer", mtime=0))
        self.assertFailedCleanly(
            self.process(), f"{layer} does not have its diff_id"
        )

    # Media types and foreign layers.

    def test_media_types_must_follow_rfc_6838(self):
        for what, media_type in (
            ("config", "application/vnd.oci.image.config.v1+json\r\nX: 1"),
            ("layer", "application/vnd.oci.image.layer.v1.tar+gzip\n"),
            ("layer", "text/html; charset=utf-8"),
            ("layer", "a/" + "b" * 300),
            ("layer", "application/\u00e9"),
            ("layer", ""),
            ("config", "application"),
        ):
            with self.subTest(what=what, media_type=media_type):
                self.build = self.makeBuild()
                upload = self.ociUpload()

                def change(manifest, entry):
                    if what == "config":
                        manifest["config"]["mediaType"] = media_type
                    else:
                        manifest["layers"][0]["mediaType"] = media_type

                rewrite_manifest(upload, change)
                before = librarian_contents()
                self.assertFailedCleanly(
                    self.process(), "is not a media type", keep=before
                )
                self.assertNotIn("\n", self.build.failure_reason)

    def test_foreign_layer_urls_must_be_public_https(self):
        for url in (
            "http://169.254.169.254/latest/meta-data/",
            "https://169.254.169.254/",
            "https://127.0.0.1/layer",
            "https://[::1]/layer",
            "https://10.1.2.3/layer",
            "https://metadata.google.internal/",
            "https://localhost/layer",
            "https://127.1/layer",
            "file:///etc/shadow",
            "https://user:pw@example.com/layer",
        ):
            with self.subTest(url=url):
                self.build = self.makeBuild()
                upload = self.ociUpload()

                def change(manifest, entry):
                    layer = manifest["layers"][0]
                    layer["mediaType"] = (
                        "application/vnd.oci.image.layer."
                        "nondistributable.v1.tar+gzip"
                    )
                    layer["urls"] = ["https://mcr.microsoft.com/ok", url]

                rewrite_manifest(upload, change)
                before = librarian_contents()
                self.assertFailedCleanly(
                    self.process(), "A layer of blobs-sha256-", keep=before
                )

    def test_foreign_layer_with_public_https_url_is_accepted(self):
        upload = self.ociUpload()

        def change(manifest, entry):
            manifest["layers"][0]["urls"] = [
                "https://mcr.microsoft.com/v2/blobs/x"
            ]

        rewrite_manifest(upload, change)
        self.assertAccepted(self.process())

    def test_deeply_nested_verified_files_record_is_ignored(self):
        # Written by the build farm, but read back: never a traceback.
        self.ociUpload()
        with open(
            os.path.join(self.leafPath(), "verified-files.json"), "w"
        ) as f:
            f.write("[" * 200000 + "]" * 200000)
        self.assertAccepted(self.process())

    def test_verified_files_record_that_is_a_fifo_is_ignored(self):
        self.ociUpload()
        os.mkfifo(os.path.join(self.leafPath(), "verified-files.json"))
        self.assertAccepted(self.process())


class TestHostileUploads(HostileUploadMixin, TestCaseWithFactory):
    layer = LaunchpadZopelessLayer


class TestHostileUploadsSQLite(HostileUploadMixin, TestCaseWithFactory):
    layer = SQLiteLaunchpadZopelessLayer
