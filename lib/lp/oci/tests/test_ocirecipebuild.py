# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for OCI recipe builds and their files, on every backend."""

__all__ = []

import hashlib
import json
from datetime import datetime, timedelta, timezone

import transaction
from fixtures import EnvironmentVariable
from storm.exceptions import IntegrityError
from testtools.matchers import MatchesStructure
from zope.component import getUtility

from lp.app.errors import NotFoundError
from lp.buildmaster.enums import BuildFarmJobType, BuildStatus
from lp.buildmaster.interfaces.builder import BuildDaemonError
from lp.buildmaster.interfaces.buildfarmjob import (
    InvalidBuildStatusTransition,
)
from lp.oci.enums import OCIFileKind
from lp.oci.interfaces.ociarchive import IOCIArchiveSet, OCIArchiveFormat
from lp.oci.interfaces.ocirecipebuild import (
    CannotScheduleRegistryUpload,
    IOCIFileSet,
    IOCIRecipeBuild,
    IOCIRecipeBuildSet,
    OCIRecipeBuildRegistryUploadStatus,
)
from lp.oci.model.ocirecipebuild import (
    OCIArchiveChecksum,
    OCIFile,
    OCIRecipeBuild,
)
from lp.services.database.interfaces import IStore
from lp.services.database.migration import backend_name
from lp.services.librarian.storage import get_librarian_storage
from lp.testing import TestCaseWithFactory
from lp.testing.layers import (
    LaunchpadZopelessLayer,
    SQLiteLaunchpadZopelessLayer,
)
from ocitypes.digest import Digest


class TestOCIRecipeBuild(TestCaseWithFactory):
    layer = LaunchpadZopelessLayer

    def test_implements_interface(self):
        build = self.factory.makeOCIRecipeBuild()
        self.assertTrue(IOCIRecipeBuild.providedBy(build))

    def test_new(self):
        recipe = self.factory.makeOCIRecipe(name="r", owner_name="o")
        requester = self.factory.makePerson()
        das = self.factory.makeDistroArchSeries(architecturetag="arm64")
        build = getUtility(IOCIRecipeBuildSet).new(requester, recipe, das)
        transaction.commit()
        self.assertThat(
            build,
            MatchesStructure.byEquality(
                requester=requester,
                recipe=recipe,
                distro_arch_series=das,
                processor=das.processor,
                arch_tag="arm64",
                distribution=das.distroseries.distribution,
                archive=das.distroseries.distribution.main_archive,
                virtualized=True,
                status=BuildStatus.NEEDSBUILD,
                failure_count=0,
                date_started=None,
                date_finished=None,
                dependencies=None,
                builder=None,
            ),
        )
        self.assertThat(
            build.build_farm_job,
            MatchesStructure.byEquality(
                job_type=BuildFarmJobType.OCIRECIPEBUILD,
                status=BuildStatus.NEEDSBUILD,
                date_created=build.date_created,
                archive=build.archive,
            ),
        )
        self.assertEqual(
            build, getUtility(IOCIRecipeBuildSet).getByID(build.id)
        )
        self.assertEqual("arm64 build of ~o/r", build.title)
        self.assertEqual(f"OCIRECIPEBUILD-{build.id}", build.build_cookie)
        self.assertIsNone(build.buildqueue_record)

    def test_new_build_has_its_cookie_at_once(self):
        # It used to be "OCIRECIPEBUILD-None" until the store was flushed.
        build = self.factory.makeOCIRecipeBuild()
        self.assertEqual(f"OCIRECIPEBUILD-{build.id}", build.build_cookie)
        self.assertIsInstance(build.id, int)
        self.assertIsInstance(build.queueBuild().id, int)

    def test_updateStatus_keeps_dates(self):
        build = self.factory.makeOCIRecipeBuild()
        builder = self.factory.makeBuilder()
        build.updateStatus(BuildStatus.BUILDING, builder=builder)
        self.assertIsNotNone(build.date_started)
        self.assertEqual(build.date_started, build.date_first_dispatched)
        self.assertIsNone(build.date_finished)
        self.assertEqual(builder, build.builder)
        self.assertEqual(builder, build.build_farm_job.builder)
        build.updateStatus(BuildStatus.FAILEDTOUPLOAD)
        self.assertIsNotNone(build.date_finished)
        self.assertEqual(
            build.date_finished, build.build_farm_job.date_finished
        )
        self.assertEqual(
            BuildStatus.FAILEDTOUPLOAD, build.build_farm_job.status
        )
        self.assertTrue(build.was_built)

    def test_updateStatus_dates_given(self):
        build = self.factory.makeOCIRecipeBuild()
        started = datetime(2026, 1, 1, tzinfo=timezone.utc)
        finished = started + timedelta(minutes=5)
        build.updateStatus(BuildStatus.BUILDING, date_started=started)
        build.updateStatus(BuildStatus.FULLYBUILT, date_finished=finished)
        self.assertEqual(
            (started, finished), (build.date_started, build.date_finished)
        )

    def test_updateStatus_unstarted_build_has_no_finish_date(self):
        build = self.factory.makeOCIRecipeBuild()
        build.updateStatus(BuildStatus.FAILEDTOBUILD)
        self.assertIsNone(build.date_finished)

    def test_updateStatus_refuses_invalid_transitions(self):
        build = self.factory.makeOCIRecipeBuild(status=BuildStatus.FULLYBUILT)
        error = self.assertRaises(
            InvalidBuildStatusTransition,
            build.updateStatus,
            BuildStatus.BUILDING,
        )
        self.assertEqual(
            "Can't change build status from FULLYBUILT to BUILDING.",
            str(error),
        )
        self.assertEqual(BuildStatus.FULLYBUILT, build.status)
        build.updateStatus(BuildStatus.BUILDING, force_invalid_transition=True)
        self.assertEqual(BuildStatus.BUILDING, build.build_farm_job.status)

    def test_updateStatus_gathering(self):
        # Collecting the files leads to processing them or to failure.
        build = self.factory.makeOCIRecipeBuild(status=BuildStatus.BUILDING)
        build.updateStatus(BuildStatus.GATHERING)
        self.assertRaises(
            InvalidBuildStatusTransition,
            build.updateStatus,
            BuildStatus.FULLYBUILT,
        )
        build.updateStatus(BuildStatus.UPLOADING)
        build.updateStatus(BuildStatus.FULLYBUILT)

    def test_updateStatus_other_builder(self):
        build = self.factory.makeOCIRecipeBuild(
            builder=self.factory.makeBuilder()
        )
        self.assertRaises(
            BuildDaemonError,
            build.updateStatus,
            BuildStatus.BUILDING,
            builder=self.factory.makeBuilder(),
        )

    def test_updateStatus_dependencies(self):
        build = self.factory.makeOCIRecipeBuild(status=BuildStatus.BUILDING)
        build.updateStatus(
            BuildStatus.MANUALDEPWAIT,
            worker_status={"dependencies": "docker.io (>= 25)"},
        )
        self.assertEqual("docker.io (>= 25)", build.dependencies)
        build.updateStatus(BuildStatus.NEEDSBUILD)
        self.assertIsNone(build.dependencies)

    def test_gotFailure(self):
        build = self.factory.makeOCIRecipeBuild()
        build.gotFailure()
        build.gotFailure()
        self.assertEqual(2, build.failure_count)
        self.assertEqual(2, build.build_farm_job.failure_count)

    def test_setLog(self):
        build = self.factory.makeOCIRecipeBuild()
        lfa = self.factory.makeLibraryFileAlias(filename="buildlog.txt.gz")
        build.setLog(lfa)
        self.assertEqual(lfa, build.log)
        self.assertEqual(lfa, build.getFileByName("buildlog.txt.gz"))

    def test_is_private(self):
        self.assertFalse(self.factory.makeOCIRecipeBuild().is_private)
        self.assertTrue(
            self.factory.makeOCIRecipeBuild(private=True).is_private
        )

    def test_status_persists(self):
        build = self.factory.makeOCIRecipeBuild(status=BuildStatus.UPLOADING)
        transaction.commit()
        IStore(build).invalidate()
        self.assertEqual(BuildStatus.UPLOADING, build.status)

    def test_addFile_records_everything(self):
        build = self.factory.makeOCIRecipeBuild()
        lfa = self.factory.makeLibraryFileAlias(content=b"layer bytes")
        digest = Digest.of_bytes(b"layer bytes")
        diff_id = Digest.of_bytes(b"uncompressed")
        oci_file = build.addFile(
            lfa,
            layer_file_digest=str(digest),
            diff_id=diff_id,
            media_type="application/vnd.oci.image.layer.v1.tar",
            kind=OCIFileKind.LAYER,
        )
        transaction.commit()
        IStore(oci_file).invalidate()
        self.assertThat(
            oci_file,
            MatchesStructure.byEquality(
                build=build,
                library_file=lfa,
                layer_file_digest=digest,
                diff_id=diff_id,
                media_type="application/vnd.oci.image.layer.v1.tar",
                size=11,
                kind=OCIFileKind.LAYER,
            ),
        )
        self.assertIsNotNone(oci_file.date_last_used.tzinfo)

    def test_addFile_normalises_bare_hex(self):
        oci_file = self.factory.makeOCIFile(
            content=b"x", layer_file_digest=Digest.of_bytes(b"x").hex
        )
        self.assertEqual(Digest.of_bytes(b"x"), oci_file.layer_file_digest)
        (stored,) = IStore(OCIFile).execute(
            "SELECT layer_file_digest FROM OCIFile"
        )
        self.assertEqual(str(Digest.of_bytes(b"x")), stored[0].rstrip(" "))

    def test_layer_file_digest_is_launchpads_character_80(self):
        # PostgreSQL pads character(80) values with spaces; they read
        # back as the digest and match it in queries.
        oci_file = self.factory.makeOCIFile(content=b"padded")
        digest = Digest.of_bytes(b"padded")
        transaction.commit()
        store = IStore(OCIFile)
        (stored,) = store.execute("SELECT layer_file_digest FROM OCIFile")
        if backend_name(store) == "postgres":
            self.assertEqual(str(digest).ljust(80), stored[0])
        store.invalidate()
        self.assertEqual(digest, oci_file.layer_file_digest)
        self.assertEqual(
            oci_file, getUtility(IOCIFileSet).getByLayerDigest(digest)
        )
        self.assertEqual(
            oci_file,
            getUtility(IOCIFileSet).getReusableLayerFile(digest, 6),
        )

    def test_addFile_refuses_digests_too_long_for_the_column(self):
        build = self.factory.makeOCIRecipeBuild()
        lfa = self.factory.makeLibraryFileAlias()
        self.assertRaises(
            ValueError, build.addFile, lfa, Digest("sha512", "a" * 128)
        )

    def test_one_file_per_digest_and_build(self):
        oci_file = self.factory.makeOCIFile(content=b"once")
        oci_file.build.addFile(
            oci_file.library_file, oci_file.layer_file_digest
        )
        self.assertRaises(IntegrityError, IStore(OCIFile).flush)
        transaction.abort()

    def test_addFile_refuses_malformed_digest(self):
        build = self.factory.makeOCIRecipeBuild()
        lfa = self.factory.makeLibraryFileAlias()
        self.assertRaises(ValueError, build.addFile, lfa, "sha256:xyz")

    def test_addFile_guesses_kind(self):
        build = self.factory.makeOCIRecipeBuild()

        def add(filename, digest=None):
            lfa = self.factory.makeLibraryFileAlias(filename=filename)
            return build.addFile(lfa, digest).kind

        self.assertEqual(OCIFileKind.INDEX, add("index.json"))
        self.assertEqual(OCIFileKind.LEGACY_MANIFEST, add("manifest.json"))
        self.assertEqual(OCIFileKind.LEGACY_DIGESTS, add("digests.json"))
        self.assertEqual(OCIFileKind.OTHER, add("abc.json"))
        self.assertEqual(
            OCIFileKind.LAYER, add("l.tar.gz", Digest.of_bytes(b"l"))
        )

    def test_getFiles(self):
        build = self.factory.makeOCIRecipeBuild()
        other = self.factory.makeOCIFile(filename="other.json")
        b = self.factory.makeOCIFile(build=build, filename="b.json")
        a = self.factory.makeOCIFile(build=build, filename="a.json")
        self.assertNotEqual(build, other.build)
        self.assertEqual(
            [
                (a, a.library_file, a.library_file.content),
                (b, b.library_file, b.library_file.content),
            ],
            list(build.getFiles()),
        )
        self.assertEqual(
            [
                f"https://launchpad.test/~{build.recipe.owner_name}/"
                f"+oci-recipe/{build.recipe.name}/+build/{build.id}/"
                f"+files/{name}"
                for name in ("a.json", "b.json")
            ],
            build.getFileUrls(),
        )

    def test_getFileUrls_are_the_builds_not_the_librarians(self):
        # A private build's files are reached through the build, whose
        # access is checked, never by their bare librarian URL.
        self.useFixture(EnvironmentVariable("LP_ROOT_URL", None))
        build = self.factory.makeOCIRecipeBuild(
            private=True, name="r", owner_name="o"
        )
        oci_file = self.factory.makeOCIFile(
            build=build,
            library_file=self.factory.makeLibraryFileAlias(
                filename="a file.json", restricted=True
            ),
        )
        (url,) = build.getFileUrls()
        self.assertEqual(
            f"https://launchpad.test/~o/+oci-recipe/r/+build/{build.id}/"
            "+files/a%20file.json",
            url,
        )
        self.assertNotEqual(oci_file.library_file.getURL(), url)

    def test_archives_of_fullybuilt_build(self):
        # A FULLYBUILT build lists its two archives after its files, and
        # states their size at once (laid out from the documents) and
        # their sha256 once the archive checksum job has stored it.
        self.useFixture(EnvironmentVariable("LP_ROOT_URL", None))
        build = self.factory.makeOCIRecipeBuild(name="r", owner_name="o")
        self.factory.makeOCILayoutFiles(build=build)
        files = build.getFileUrls()
        for name in ("oci", "docker"):
            self.assertIsNone(getattr(build, f"{name}_archive_url"))
            self.assertIsNone(getattr(build, f"{name}_archive_sha256"))
            self.assertIsNone(build.getArchiveChecksum(name))
        build.updateStatus(BuildStatus.BUILDING)
        build.updateStatus(BuildStatus.FULLYBUILT)
        base = f"https://launchpad.test/~o/+oci-recipe/r/+build/{build.id}"
        self.assertEqual(
            files + [f"{base}/+archive/oci", f"{base}/+archive/docker"],
            build.getFileUrls(),
        )
        for name in ("oci", "docker"):
            self.assertEqual(
                f"{base}/+archive/{name}",
                getattr(build, f"{name}_archive_url"),
            )
            archive = getUtility(IOCIArchiveSet).getArchive(
                build, OCIArchiveFormat.items[name.upper()]
            )
            content = b"".join(archive.iterBytes())
            self.assertEqual(
                len(content), getattr(build, f"{name}_archive_size")
            )
            # Asking for it computes nothing.
            self.assertIsNone(getattr(build, f"{name}_archive_sha256"))
            self.assertIsNone(build.getArchiveChecksum(name, compute=False))
            self.assertEqual(
                hashlib.sha256(content).hexdigest(),
                build.getArchiveChecksum(name).sha256,
            )
            self.assertEqual(
                hashlib.sha256(content).hexdigest(),
                getattr(build, f"{name}_archive_sha256"),
            )
            self.assertEqual(
                len(content), getattr(build, f"{name}_archive_size")
            )
        self.assertEqual(
            2,
            IStore(OCIArchiveChecksum)
            .find(OCIArchiveChecksum, build_id=build.id)
            .count(),
        )

    def test_getFileByName(self):
        build = self.factory.makeOCIRecipeBuild()
        oci_file = self.factory.makeOCIFile(build=build, filename="x.json")
        self.factory.makeOCIFile(filename="y.json")
        log = self.factory.makeLibraryFileAlias(filename="buildlog.txt.gz")
        build.log = log
        self.assertEqual(oci_file.library_file, build.getFileByName("x.json"))
        self.assertEqual(log, build.getFileByName("buildlog.txt.gz"))
        self.assertRaises(NotFoundError, build.getFileByName, "y.json")
        self.assertRaises(NotFoundError, build.getFileByName, "nope")

    def test_getLayerFileByDigest_both_spellings(self):
        build = self.factory.makeOCIRecipeBuild()
        oci_file = self.factory.makeOCIFile(build=build, content=b"layer")
        digest = Digest.of_bytes(b"layer")
        for spelling in (digest, str(digest), digest.hex):
            found = build.getLayerFileByDigest(spelling)
            self.assertEqual(
                (
                    oci_file,
                    oci_file.library_file,
                    oci_file.library_file.content,
                ),
                found,
            )

    def test_getLayerFileByDigest_legacy_row(self):
        # Rows written by older code hold bare hex.
        build = self.factory.makeOCIRecipeBuild()
        oci_file = self.factory.makeOCIFile(build=build, content=b"old")
        digest = Digest.of_bytes(b"old")
        store = IStore(OCIFile)
        store.flush()
        store.execute(
            "UPDATE OCIFile SET layer_file_digest = ? WHERE id = ?",
            (digest.hex, oci_file.id),
        )
        store.invalidate()
        self.assertEqual(digest, oci_file.layer_file_digest)
        for spelling in (str(digest), digest.hex):
            self.assertEqual(oci_file, build.getLayerFileByDigest(spelling)[0])
            self.assertEqual(
                oci_file, getUtility(IOCIFileSet).getByLayerDigest(spelling)
            )

    def test_getLayerFileByDigest_missing(self):
        build = self.factory.makeOCIRecipeBuild()
        self.factory.makeOCIFile(content=b"elsewhere")
        for spelling in (
            str(Digest.of_bytes(b"elsewhere")),
            "garbage",
            "sha256:short",
        ):
            self.assertRaises(
                NotFoundError, build.getLayerFileByDigest, spelling
            )

    def test_manifest_digests_index(self):
        build = self.factory.makeOCIRecipeBuild()
        self.assertIsNone(build.manifest)
        self.assertIsNone(build.digests)
        self.assertIsNone(build.index)
        self.assertIsNone(build.manifest_data)
        legacy = self.factory.makeLegacyOCIFiles(build=build)
        self.assertEqual(legacy.manifest.library_file, build.manifest)
        self.assertEqual(legacy.digests.library_file, build.digests)
        self.assertEqual(
            legacy.config.library_file.filename,
            build.manifest_data[0]["Config"],
        )
        self.assertEqual(1, len(build.digests_data))

    def test_image_manifests(self):
        # The stored index and manifests, read with ocilayout.
        build = self.factory.makeOCIRecipeBuild()
        files = self.factory.makeOCILayoutFiles(build=build)
        ((digest, manifest),) = build.image_manifests
        self.assertEqual(files.manifest.layer_file_digest, digest)
        self.assertEqual(
            str(files.config.layer_file_digest), manifest["config"]["digest"]
        )
        self.assertEqual(
            [str(layer.layer_file_digest) for layer in files.layers],
            [layer["digest"] for layer in manifest["layers"]],
        )
        self.assertEqual(
            files.index.library_file.filename, build.index.filename
        )

    def test_layers(self):
        build = self.factory.makeOCIRecipeBuild()
        files = self.factory.makeOCILayoutFiles(
            build=build, layer_contents=[b"one", b"two"]
        )
        self.assertEqual(
            [
                (
                    Digest.of_bytes(content),
                    Digest.of_bytes(content),
                    len(content),
                    "application/vnd.oci.image.layer.v1.tar",
                    oci_file.library_file,
                    oci_file,
                )
                for content, oci_file in zip([b"one", b"two"], files.layers)
            ],
            [tuple(layer) for layer in build.layers],
        )

    def test_abort_leaves_no_rows(self):
        self.factory.makeOCILayoutFiles()
        IStore(OCIFile).flush()
        self.assertNotEqual(0, IStore(OCIFile).find(OCIFile).count())
        transaction.abort()
        self.assertEqual(0, IStore(OCIFile).find(OCIFile).count())
        self.assertEqual(
            0, IStore(OCIRecipeBuild).find(OCIRecipeBuild).count()
        )

    def test_hasMoreRecentBuild(self):
        now = datetime.now(timezone.utc)
        old = self.factory.makeOCIRecipeBuild(
            date_created=now - timedelta(hours=1)
        )
        self.assertFalse(old.hasMoreRecentBuild())
        self.factory.makeOCIRecipeBuild(
            recipe=old.recipe,
            distro_arch_series="arm64",
            status=BuildStatus.FULLYBUILT,
        )
        self.assertFalse(old.hasMoreRecentBuild())
        self.factory.makeOCIRecipeBuild(
            recipe=old.recipe,
            distro_arch_series=old.distro_arch_series,
            status=BuildStatus.FULLYBUILT,
        )
        self.assertTrue(old.hasMoreRecentBuild())


class TestOCIRecipeBuildSQLite(TestOCIRecipeBuild):
    layer = SQLiteLaunchpadZopelessLayer


class TestVerifySuccessfulUpload(TestCaseWithFactory):
    layer = LaunchpadZopelessLayer

    def test_no_files(self):
        build = self.factory.makeOCIRecipeBuild()
        self.assertFalse(build.verifySuccessfulUpload())
        self.assertEqual(["The build has no files"], build.getUploadProblems())

    def test_oci_layout_complete(self):
        files = self.factory.makeOCILayoutFiles()
        build = files.index.build
        self.assertEqual([], build.getUploadProblems())
        self.assertTrue(build.verifySuccessfulUpload())

    def test_oci_layout_image_without_layers(self):
        files = self.factory.makeOCILayoutFiles(layer_contents=[])
        self.assertTrue(files.index.build.verifySuccessfulUpload())

    def test_oci_layout_missing_layer(self):
        build = self.factory.makeOCIRecipeBuild()
        files = self.factory.makeOCILayoutFiles(build=build)
        missing = files.layers[1]
        IStore(OCIFile).remove(missing)
        # verifySuccessfulUpload, as Launchpad's, does not read the index;
        # getUploadProblems does.
        self.assertTrue(build.verifySuccessfulUpload())
        self.assertEqual(
            [f"Layer {missing.layer_file_digest} is missing"],
            build.getUploadProblems(),
        )

    def test_oci_layout_layer_of_another_build_does_not_count(self):
        build = self.factory.makeOCIRecipeBuild()
        files = self.factory.makeOCILayoutFiles(
            build=build, layer_contents=[b"shared"]
        )
        self.factory.makeOCILayoutFiles(layer_contents=[b"shared"])
        IStore(OCIFile).remove(files.layers[0])
        self.assertEqual(
            [f"Layer {files.layers[0].layer_file_digest} is missing"],
            build.getUploadProblems(),
        )

    def test_oci_layout_missing_config(self):
        files = self.factory.makeOCILayoutFiles()
        IStore(OCIFile).remove(files.config)
        self.assertEqual(
            [f"Config {files.config.layer_file_digest} is missing"],
            files.index.build.getUploadProblems(),
        )

    def test_oci_layout_missing_manifest(self):
        files = self.factory.makeOCILayoutFiles()
        IStore(OCIFile).remove(files.manifest)
        self.assertEqual(
            [f"Manifest {files.manifest.layer_file_digest} is missing"],
            files.index.build.getUploadProblems(),
        )

    def test_oci_layout_content_not_matching_digest(self):
        build = self.factory.makeOCIRecipeBuild()
        files = self.factory.makeOCILayoutFiles(build=build)
        layer = files.layers[0]
        IStore(OCIFile).remove(layer)
        # A file recorded under the layer's digest with other content.
        self.factory.makeOCIFile(
            build=build,
            content=b"impostor",
            layer_file_digest=layer.layer_file_digest,
            kind=OCIFileKind.LAYER,
        )
        self.assertFalse(build.verifySuccessfulUpload())
        (problem,) = build.getUploadProblems()
        self.assertIn("has content with sha256", problem)

    def test_oci_layout_any_file_not_matching_its_digest(self):
        # For a build with an index, every file recorded under a digest
        # must have the content that digest names, even one the index
        # does not lead to.
        build = self.factory.makeOCIRecipeBuild()
        self.factory.makeOCILayoutFiles(build=build)
        self.assertTrue(build.verifySuccessfulUpload())
        self.factory.makeOCIFile(
            build=build,
            content=b"impostor",
            layer_file_digest=Digest.of_bytes(b"something else"),
        )
        self.assertFalse(build.verifySuccessfulUpload())
        self.assertEqual(
            [
                "A file does not have the content its digest names, or "
                "no file has a digest"
            ],
            build.getUploadProblems(),
        )

    def test_verifySuccessfulUpload_requires_layer_files(self):
        # Launchpad's filter "OCIFile.layer_file_digest is not None" was
        # a Python expression, always true: any file counted as a layer
        # file.  The column is compared with None in SQL.
        build = self.factory.makeOCIRecipeBuild()
        for filename in ("manifest.json", "digests.json", "config.json"):
            build.addFile(self.factory.makeLibraryFileAlias(filename=filename))
        self.assertFalse(build.verifySuccessfulUpload())
        self.factory.makeOCIFile(build=build, content=b"layer")
        self.assertTrue(build.verifySuccessfulUpload())

    def test_oci_layout_corrupt_index(self):
        build = self.factory.makeOCIRecipeBuild()
        build.addFile(
            self.factory.makeLibraryFileAlias(
                filename="index.json", content=b"{not json"
            )
        )
        (problem,) = build.getUploadProblems()
        self.assertIn("index.json is not valid JSON", problem)

    def test_oci_layout_deeply_nested_index(self):
        # json's RecursionError is refused as a bad document.
        build = self.factory.makeOCIRecipeBuild()
        build.addFile(
            self.factory.makeLibraryFileAlias(
                filename="index.json",
                content=b"[" * 100000 + b"]" * 100000,
            )
        )
        (problem,) = build.getUploadProblems()
        self.assertEqual("index.json is nested too deeply", problem)

    def test_oci_layout_index_lists_only_image_manifests(self):
        # As ocilayout reads what builders file: an index listing an
        # attestation (or anything but an image manifest) is refused.
        build = self.factory.makeOCIRecipeBuild()
        files = self.factory.makeOCILayoutFiles(build=build)
        index = files.index.library_file
        data = json.loads(index.read())
        index.close()
        data["manifests"].append(
            {
                "mediaType": "application/vnd.in-toto+json",
                "digest": str(Digest.of_bytes(b"absent")),
                "size": 6,
            }
        )
        IStore(OCIFile).remove(files.index)
        build.addFile(
            self.factory.makeLibraryFileAlias(
                filename="index.json", content=json.dumps(data).encode()
            )
        )
        self.assertEqual(
            [
                "index.json lists application/vnd.in-toto+json, not an "
                "image manifest"
            ],
            build.getUploadProblems(),
        )

    def test_legacy_complete(self):
        files = self.factory.makeLegacyOCIFiles()
        self.assertEqual([], files.manifest.build.getUploadProblems())
        self.assertTrue(files.manifest.build.verifySuccessfulUpload())

    def test_legacy_missing_layer(self):
        files = self.factory.makeLegacyOCIFiles()
        IStore(OCIFile).remove(files.layers[0])
        build = files.manifest.build
        (problem,) = build.getUploadProblems()
        self.assertIn(str(files.layers[0].layer_file_digest), problem)

    def test_legacy_layers_recorded_without_digest(self):
        # Launchpad's verifySuccessfulUpload tested "layer_file_digest is
        # not None" as a Python expression, which always holds; each
        # layer digests.json lists must really be there.
        files = self.factory.makeLegacyOCIFiles()
        build = files.manifest.build
        for layer in files.layers:
            layer.layer_file_digest = None
        self.assertFalse(build.verifySuccessfulUpload())
        self.assertEqual(2, len(build.getUploadProblems()))

    def test_oci_layout_layer_recorded_without_digest(self):
        files = self.factory.makeOCILayoutFiles()
        layer = files.layers[0]
        digest = layer.layer_file_digest
        layer.layer_file_digest = None
        self.assertEqual(
            [f"Layer {digest} is missing"],
            files.index.build.getUploadProblems(),
        )

    def test_legacy_missing_digests(self):
        files = self.factory.makeLegacyOCIFiles()
        IStore(OCIFile).remove(files.digests)
        self.assertEqual(
            ["digests.json is missing"],
            files.manifest.build.getUploadProblems(),
        )

    def test_legacy_missing_config(self):
        files = self.factory.makeLegacyOCIFiles()
        IStore(OCIFile).remove(files.config)
        (problem,) = files.manifest.build.getUploadProblems()
        self.assertIn("Config", problem)


class TestVerifySuccessfulUploadSQLite(TestVerifySuccessfulUpload):
    layer = SQLiteLaunchpadZopelessLayer


class TestOCIFile(TestCaseWithFactory):
    layer = LaunchpadZopelessLayer

    def test_getByLayerDigest_returns_oldest(self):
        first = self.factory.makeOCIFile(content=b"base layer")
        self.factory.makeOCIFile(
            library_file=first.library_file,
            layer_file_digest=first.layer_file_digest,
        )
        file_set = getUtility(IOCIFileSet)
        digest = Digest.of_bytes(b"base layer")
        self.assertEqual(first, file_set.getByLayerDigest(digest))
        self.assertEqual(first, file_set.getByLayerDigest(str(digest)))
        self.assertEqual(first, file_set.getByLayerDigest(digest.hex))

    def test_getByLayerDigest_unknown_or_malformed(self):
        file_set = getUtility(IOCIFileSet)
        self.assertIsNone(file_set.getByLayerDigest(Digest.of_bytes(b"x")))
        self.assertIsNone(file_set.getByLayerDigest("not a digest"))

    def test_getByLayerDigest_skips_restricted_files(self):
        # A private build's layer is not offered to other builds.
        digest = Digest.of_bytes(b"private layer")
        self.factory.makeOCIFile(
            library_file=self.factory.makeLibraryFileAlias(
                content=b"private layer", restricted=True
            )
        )
        file_set = getUtility(IOCIFileSet)
        self.assertIsNone(file_set.getByLayerDigest(digest))
        oci_file = self.factory.makeOCIFile(content=b"private layer")
        self.assertEqual(oci_file, file_set.getByLayerDigest(digest))

    def test_getReusableLayerFile(self):
        # A file is reusable by its content's sha256 and size, whatever
        # digest it was recorded under; the caller marks it used.
        then = datetime(2020, 1, 1, tzinfo=timezone.utc)
        digest = Digest.of_bytes(b"base layer")
        oci_file = self.factory.makeOCIFile(
            content=b"base layer",
            layer_file_digest=Digest.of_bytes(b"digests.json digest"),
        )
        oci_file.markUsed(then)
        file_set = getUtility(IOCIFileSet)
        for spelling in (digest, str(digest)):
            self.assertEqual(
                oci_file, file_set.getReusableLayerFile(spelling, 10)
            )
        self.assertIsNone(file_set.getReusableLayerFile(digest, 9))
        self.assertIsNone(file_set.getReusableLayerFile(digest.hex, 10))
        self.assertIsNone(
            file_set.getReusableLayerFile(Digest.of_bytes(b"other"), 10)
        )
        self.assertEqual(then, oci_file.date_last_used)
        # Harness only: without a size (a legacy layer), any size.
        self.assertEqual(oci_file, file_set.getReusableLayerFile(digest))

    def test_getReusableLayerFile_most_recently_used(self):
        then = datetime(2020, 1, 1, tzinfo=timezone.utc)
        older = self.factory.makeOCIFile(content=b"layer")
        older.markUsed(then)
        newer = self.factory.makeOCIFile(
            library_file=older.library_file,
            layer_file_digest=older.layer_file_digest,
        )
        newer.markUsed(then + timedelta(days=1))
        self.assertEqual(
            newer,
            getUtility(IOCIFileSet).getReusableLayerFile(
                Digest.of_bytes(b"layer"), 5
            ),
        )

    def test_getReusableLayerFile_skips_restricted_and_expiring_files(self):
        now = datetime.now(timezone.utc)
        digest = Digest.of_bytes(b"layer")
        file_set = getUtility(IOCIFileSet)
        self.assertIsNone(file_set.getReusableLayerFile(digest, 5))
        self.assertIsNone(file_set.getReusableLayerFile("garbage", 5))
        self.assertIsNone(
            file_set.getReusableLayerFile(Digest("sha512", "a" * 128), 5)
        )
        for restricted, expires in (
            (True, None),
            (False, now + timedelta(hours=1)),
            (False, now - timedelta(days=1)),
        ):
            self.factory.makeOCIFile(
                library_file=self.factory.makeLibraryFileAlias(
                    content=b"layer", restricted=restricted, expires=expires
                )
            )
        self.assertIsNone(file_set.getReusableLayerFile(digest, 5))
        self.assertIsNone(file_set.getReusableLayerFile(digest))
        expiring_later = self.factory.makeOCIFile(
            library_file=self.factory.makeLibraryFileAlias(
                content=b"layer", expires=now + timedelta(days=30)
            )
        )
        self.assertEqual(
            expiring_later, file_set.getReusableLayerFile(digest, 5)
        )

    def test_getReusableLayerFile_content_gone(self):
        oci_file = self.factory.makeOCIFile(content=b"removed")
        get_librarian_storage().remove(oci_file.library_file.content.sha256)
        self.assertIsNone(
            getUtility(IOCIFileSet).getReusableLayerFile(
                oci_file.layer_file_digest, 7
            )
        )

    def test_markUsed(self):
        oci_file = self.factory.makeOCIFile()
        then = datetime(2020, 1, 1, tzinfo=timezone.utc)
        oci_file.markUsed(then)
        transaction.commit()
        IStore(oci_file).invalidate()
        self.assertEqual(then, oci_file.date_last_used)
        before = datetime.now(timezone.utc)
        oci_file.markUsed()
        self.assertGreaterEqual(oci_file.date_last_used, before)

    def test_build_and_library_file_must_exist(self):
        # The database refuses dangling references on both backends.
        store = IStore(OCIFile)
        build = self.factory.makeOCIRecipeBuild()
        oci_file = OCIFile(build, self.factory.makeLibraryFileAlias())
        store.add(oci_file)
        store.flush()
        oci_file.library_file_id = 999999
        self.assertRaises(IntegrityError, store.flush)
        transaction.abort()

    def test_backend(self):
        # Make sure the layers really exercise both backends.
        self.assertEqual(self.expected_backend, backend_name(IStore(OCIFile)))

    expected_backend = "postgres"


class TestOCIFileSQLite(TestOCIFile):
    layer = SQLiteLaunchpadZopelessLayer
    expected_backend = "sqlite"


class TestRegistryUpload(TestCaseWithFactory):
    layer = LaunchpadZopelessLayer

    def makeBuild(self, **kwargs):
        build = self.factory.makeOCIRecipeBuild(
            status=BuildStatus.FULLYBUILT, **kwargs
        )
        self.factory.makeOCIPushRule(recipe=build.recipe)
        self.factory.makeOCILayoutFiles(build=build)
        return build

    def test_status_follows_job(self):
        build = self.makeBuild()
        self.assertEqual(
            OCIRecipeBuildRegistryUploadStatus.UNSCHEDULED,
            build.registry_upload_status,
        )
        job = build.scheduleRegistryUpload()
        self.assertEqual(
            OCIRecipeBuildRegistryUploadStatus.PENDING,
            build.registry_upload_status,
        )
        self.assertRaises(
            CannotScheduleRegistryUpload, build.scheduleRegistryUpload
        )
        job.job.start()
        job.errors = [{"code": "DENIED", "message": "no"}]
        job.error_summary = "Denied"
        job.job.fail()
        transaction.commit()
        self.assertEqual(
            OCIRecipeBuildRegistryUploadStatus.FAILEDTOUPLOAD,
            build.registry_upload_status,
        )
        self.assertEqual("Denied", build.registry_upload_error_summary)
        self.assertEqual(
            [{"code": "DENIED", "message": "no"}],
            build.registry_upload_errors,
        )
        retry = build.scheduleRegistryUpload()
        self.assertEqual(retry.context, build.last_registry_upload_job.context)
        self.assertEqual(2, len(build.registry_upload_jobs))
        retry.job.start()
        retry.job.complete()
        self.assertEqual(
            OCIRecipeBuildRegistryUploadStatus.UPLOADED,
            build.registry_upload_status,
        )
        self.assertRaises(
            CannotScheduleRegistryUpload, build.scheduleRegistryUpload
        )

    def test_superseded(self):
        build = self.factory.makeOCIRecipeBuild(status=BuildStatus.UPLOADING)
        build.updateStatus(BuildStatus.SUPERSEDED)
        self.assertEqual(
            OCIRecipeBuildRegistryUploadStatus.SUPERSEDED,
            build.registry_upload_status,
        )

    def test_cannot_schedule_superseded(self):
        # A build with a more recent one of the same recipe and
        # architecture is superseded: scheduling its upload is refused
        # (the job would complete having pushed nothing), and so it is
        # once it is marked SUPERSEDED.
        build = self.makeBuild()
        build.date_created = build.date_created - timedelta(hours=1)
        newer = self.factory.makeOCIRecipeBuild(
            recipe=build.recipe,
            distro_arch_series=build.distro_arch_series,
            status=BuildStatus.FULLYBUILT,
        )
        self.factory.makeOCILayoutFiles(build=newer)
        error = self.assertRaises(
            CannotScheduleRegistryUpload, build.scheduleRegistryUpload
        )
        self.assertIn("superseded", str(error))
        self.assertEqual([], build.registry_upload_jobs)
        newer.scheduleRegistryUpload()
        build.updateStatus(
            BuildStatus.SUPERSEDED, force_invalid_transition=True
        )
        self.assertRaises(
            CannotScheduleRegistryUpload, build.scheduleRegistryUpload
        )

    def test_cannot_schedule_without_registry(self):
        build = self.factory.makeOCIRecipeBuild(status=BuildStatus.FULLYBUILT)
        self.factory.makeOCILayoutFiles(build=build)
        self.assertRaises(
            CannotScheduleRegistryUpload, build.scheduleRegistryUpload
        )

    def test_cannot_schedule_unbuilt(self):
        build = self.factory.makeOCIRecipeBuild()
        self.factory.makeOCIPushRule(recipe=build.recipe)
        self.assertRaises(
            CannotScheduleRegistryUpload, build.scheduleRegistryUpload
        )


class TestRegistryUploadSQLite(TestRegistryUpload):
    layer = SQLiteLaunchpadZopelessLayer
