# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""A builder that dies mid-transfer or serves wrong bytes, then recovers.

The real builder on loopback, behind `FaultProxy` for what it cannot do
itself (cut every connection part way through a file); wrong bytes come
from the builder's own cache (a flipped byte).  Each fault fails the
build cleanly (FAILEDTOUPLOAD, nothing stored but its log, nothing
collected), and the same image built again once the builder behaves is
FULLYBUILT with every blob intact: the fault left nothing false behind.
"""

__all__ = []

from twisted.internet import defer

from lp.buildmaster.enums import BuildStatus
from lp.oci.tests.buildfarm import SQLiteOCIBuildFarmLayer, make_test_image
from lp.services.librarian.storage import get_librarian_storage
from lp.testing import TestCaseWithFactory
from ocitypes.digest import Digest
from tests.e2e.test_run import EndToEndMixin
from tests.faults.invariants import append_report


class BuilderFaultsMixin(EndToEndMixin):
    """The end-to-end helpers, without the end-to-end tests."""


for _name in [n for n in vars(EndToEndMixin) if n.startswith("test_")]:
    setattr(BuilderFaultsMixin, _name, None)


class TestBuilderFaults(BuilderFaultsMixin, TestCaseWithFactory):
    layer = SQLiteOCIBuildFarmLayer

    def assertBlobsIntact(self, build):
        storage = get_librarian_storage()
        for ocifile, lfa, _ in build.getFiles():
            with storage.open(lfa.content.sha256) as f:
                data = f.read()
            self.assertEqual(lfa.content.filesize, len(data))
            self.assertEqual(lfa.content.sha256, Digest.of_bytes(data).hex)

    @defer.inlineCallbacks
    def rebuildCleanly(self, image):
        behaviour = yield self.buildImage(image)
        build = behaviour.build
        self.assertEqual(BuildStatus.FULLYBUILT, build.status)
        self.assertTrue(build.verifySuccessfulUpload())
        self.assertBlobsIntact(build)

    @defer.inlineCallbacks
    def test_builder_dies_mid_transfer(self):
        image = make_test_image()
        proxy = self.useFixture_proxy()
        build = self.newBuild()
        behaviour, result = self.gather(build, image, url=proxy.url)
        layer = result.images[0].layers[-1].descriptor
        sha1 = self.builder.waitingfiles[f"blobs-sha256-{layer.digest.hex}"]
        # Every request for the layer is cut after 100 bytes, with a
        # reset: the builder is gone as far as the transfer can tell.
        proxy.dropAfter(100, sha1=sha1, times=None, reset=True)
        self.assertIsNone((yield self.collectBuild(behaviour)))
        self.assertFailedCleanly(
            build, BuildStatus.FAILEDTOUPLOAD, "Cannot collect"
        )
        yield self.rebuildCleanly(image)
        append_report({"suite": "builder-dies", "faults": 1})

    @defer.inlineCallbacks
    def test_builder_serves_wrong_bytes(self):
        image = make_test_image()
        build = self.newBuild()
        behaviour, result = self.gather(build, image)
        path = self.cacheFileOfTopLayer(result)
        with open(path, "r+b") as f:
            data = f.read()
            f.seek(len(data) // 2)
            f.write(bytes([data[len(data) // 2] ^ 0x01]))
        self.assertIsNone((yield self.collectBuild(behaviour)))
        self.assertFailedCleanly(
            build, BuildStatus.FAILEDTOUPLOAD, "received content has SHA-1"
        )
        yield self.rebuildCleanly(image)
        append_report({"suite": "builder-wrong-bytes", "faults": 1})
