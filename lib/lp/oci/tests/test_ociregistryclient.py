# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for the registry client, against a real registry.

Each push is read back by skopeo, an independent client, and the
registry's manifest digest is compared with the one the build recorded.
"""

__all__ = []

import gzip
import hashlib
import json
import os
import tracemalloc

import requests
import transaction
from fixtures import TempDir
from zope.component import getUtility

from lp.archiveuploader.uploadprocessor import (
    UploadProcessor,
    UploadStatusEnum,
)
from lp.buildmaster.enums import BuildStatus
from lp.oci.interfaces.ocipushedblob import IOCIPushedBlobSet
from lp.oci.interfaces.ocirecipebuild import (
    OCIRecipeBuildRegistryUploadStatus,
)
from lp.oci.interfaces.ociregistryclient import BlobUploadFailed
from lp.oci.model.ocipushedblob import OCIPushedBlob, OCIPushedBlobSet
from lp.oci.model.ocirecipebuildjob import run_registry_upload_jobs
from lp.oci.model.ociregistryclient import OCIRegistryClient
from lp.oci.model.ociregistryhttp import RetryPolicy
from lp.oci.tests.buildfarm import (
    legacy_upload_files,
    make_oci_upload_dir,
    make_test_image,
    upload_files_dir,
)
from lp.oci.tests.registryproxy import RegistryFaultProxy
from lp.services.database.interfaces import IStore
from lp.services.librarian.storage import get_librarian_storage
from lp.testing import TestCaseWithFactory
from lp.testing.layers import LaunchpadZopelessRegistryLayer, RegistryLayer
from lp.testing.registry import skopeo, skopeo_path
from ocitypes.descriptor import MediaType
from ocitypes.digest import Digest
from ocitypes.testing import tool_missing


class RecordingSleep:
    def __init__(self):
        self.calls = []

    def __call__(self, seconds):
        self.calls.append(seconds)


class RegistryTestMixin:
    """Builds pushed to the layer's registries, read back by skopeo."""

    layer = LaunchpadZopelessRegistryLayer

    def setUp(self):
        super().setUp()
        if RegistryLayer.anonymous is None:
            tool_missing(self, "docker-registry is not installed")
        self.sleep = RecordingSleep()
        self.retry_policy = RetryPolicy(
            attempts=4, base_delay=0.01, max_delay=0.05, sleep=self.sleep
        )

    @property
    def registry(self):
        return RegistryLayer.anonymous

    def makeClient(self, **kwargs):
        kwargs.setdefault("retry_policy", self.retry_policy)
        return OCIRegistryClient(**kwargs)

    def makeProxy(self, registry=None):
        proxy = RegistryFaultProxy((registry or self.registry).host)
        proxy.start()
        self.addCleanup(proxy.stop)
        return proxy

    def makeBuild(
        self,
        url=None,
        image_name=None,
        recipe=None,
        arch="amd64",
        credentials=None,
        layer_contents=None,
        legacy=False,
        **kwargs,
    ):
        build = self.factory.makeOCIRecipeBuild(
            recipe=recipe, distro_arch_series=arch
        )
        build.updateStatus(BuildStatus.FULLYBUILT)
        if recipe is None:
            self.factory.makeOCIPushRule(
                recipe=build.recipe,
                registry_credentials=self.factory.makeOCIRegistryCredentials(
                    url=url or self.registry.url,
                    credentials=credentials or {},
                ),
                image_name=image_name or self.factory.getUniqueString("img"),
            )
        if legacy:
            files = self.factory.makeLegacyOCIFiles(
                build=build, layer_contents=layer_contents, **kwargs
            )
        else:
            files = self.factory.makeOCILayoutFiles(
                build=build, layer_contents=layer_contents, **kwargs
            )
        transaction.commit()
        return build, files

    def reference(self, build, suffix="", registry=None):
        (rule,) = build.recipe.push_rules
        return "docker://%s/%s%s" % (
            (registry or self.registry).host,
            rule.image_name,
            suffix,
        )

    def skopeoInspect(self, reference, raw=True, creds=None):
        if skopeo_path() is None:
            tool_missing(self, "skopeo is not installed")
        args = ["inspect", "--tls-verify=false"]
        if creds:
            args.append("--creds=%s:%s" % creds)
        if raw:
            args.append("--raw")
        return skopeo(*args, reference)

    def assertReadBack(self, build, manifest_digest, creds=None):
        """skopeo reads the image back, by digest and by tag; it copies
        it to an OCI layout, verifying every blob's digest."""
        raw = self.skopeoInspect(
            self.reference(build, "@%s" % manifest_digest), creds=creds
        )
        self.assertEqual(manifest_digest.hex, hashlib.sha256(raw).hexdigest())
        index = json.loads(
            self.skopeoInspect(self.reference(build, ":edge"), creds=creds)
        )
        self.assertIn(
            str(manifest_digest), [m["digest"] for m in index["manifests"]]
        )
        target = os.path.join(self.useFixture(TempDir()).path, "copy")
        args = ["copy", "--src-tls-verify=false", "--quiet"]
        if creds:
            args.append("--src-creds=%s:%s" % creds)
        source = self.reference(build, "@%s" % manifest_digest)
        if json.loads(raw).get("mediaType") == MediaType.OCI_MANIFEST:
            # An OCI layout, byte for byte.
            skopeo(
                *args, "--preserve-digests", source, "oci:%s:pulled" % target
            )
            with open(os.path.join(target, "index.json")) as f:
                copied = json.load(f)["manifests"][0]["digest"]
            blobs = os.path.join(target, "blobs", "sha256")
        else:
            # An OCI layout cannot hold a Docker manifest as it is.
            skopeo(*args, source, "dir:%s" % target)
            with open(os.path.join(target, "manifest.json"), "rb") as f:
                copied = "sha256:" + hashlib.sha256(f.read()).hexdigest()
            blobs = target
        self.assertEqual(str(manifest_digest), copied)
        names = [n for n in os.listdir(blobs) if len(n) == 64]
        self.assertNotEqual([], names)
        for name in names:
            with open(os.path.join(blobs, name), "rb") as f:
                self.assertEqual(name, hashlib.sha256(f.read()).hexdigest())
        return index

    def registryManifestDigest(self, build, reference, registry=None):
        (rule,) = build.recipe.push_rules
        response = requests.head(
            "%s/v2/%s/manifests/%s"
            % ((registry or self.registry).url, rule.image_name, reference),
            headers={
                "Accept": ", ".join(
                    [
                        MediaType.OCI_INDEX,
                        MediaType.OCI_MANIFEST,
                        MediaType.DOCKER_MANIFEST,
                        MediaType.DOCKER_MANIFEST_LIST,
                    ]
                )
            },
        )
        self.assertEqual(200, response.status_code)
        return Digest.parse(response.headers["Docker-Content-Digest"])

    def addSecondPushRule(self, build):
        """Push ``build`` to another repository of the same registry too."""
        credentials = build.recipe.push_rules[0].registry_credentials
        self.factory.makeOCIPushRule(
            recipe=build.recipe,
            registry_credentials=credentials,
            image_name=self.factory.getUniqueString("second"),
        )
        transaction.commit()

    def pushBuild(self, build, client=None, tags=None):
        """As the job does: blobs and manifests, then the tag."""
        client = client or self.makeClient()
        job = build.scheduleRegistryUpload()
        if tags:
            job.context.json_data = dict(job.json_data, tags=tags)
        transaction.commit()
        job.runAndRecord(client=client)
        return job


class TestOCIRegistryClientUpload(RegistryTestMixin, TestCaseWithFactory):
    def test_upload(self):
        build, files = self.makeBuild()
        client = self.makeClient()
        results = client.upload(build)
        (result,) = results.values()
        self.assertEqual(3, result.blobs_uploaded)
        self.assertEqual(0, result.blobs_mounted + result.blobs_existing)
        self.assertEqual(
            sum(layer.size for layer in files.layers) + files.config.size,
            result.bytes_uploaded,
        )
        manifest_digest = files.manifest.layer_file_digest
        self.assertEqual(
            [str(manifest_digest)], [m["digest"] for m in result.manifests]
        )
        self.assertEqual(
            {"architecture": "amd64", "os": "linux"},
            result.manifests[0]["platform"],
        )
        # The registry has the manifest under the digest the build
        # recorded: it was pushed as stored.
        self.assertEqual(
            manifest_digest,
            self.registryManifestDigest(build, manifest_digest),
        )

    def test_job_pushes_and_tags(self):
        build, files = self.makeBuild()
        job = self.pushBuild(build)
        self.assertEqual("Completed", job.job.status.title)
        self.assertIsNone(job.error_summary)
        self.assertEqual("UPLOADED", build.registry_upload_status.name)
        index = self.assertReadBack(build, files.manifest.layer_file_digest)
        # OCI manifests go into an OCI image index.
        self.assertEqual(MediaType.OCI_INDEX, index["mediaType"])
        self.assertEqual(
            [{"architecture": "amd64", "os": "linux"}],
            [m["platform"] for m in index["manifests"]],
        )
        (rule,) = build.recipe.push_rules
        (digests,) = job.manifest_list_digests.values()
        self.assertEqual(
            digests["edge"], str(self.registryManifestDigest(build, "edge"))
        )
        (result,) = job.registry_results.values()
        self.assertEqual("edge", result["tag"])

    def test_repush_sends_nothing(self):
        build, files = self.makeBuild()
        client = self.makeClient()
        client.upload(build)
        (result,) = client.upload(build).values()
        self.assertEqual(
            (0, 0, 3, 0),
            (
                result.blobs_uploaded,
                result.blobs_mounted,
                result.blobs_existing,
                result.bytes_uploaded,
            ),
        )

    def assertSecondRepositoryMountsLayers(self, build, files):
        results = self.makeClient().upload(build)
        first, second = (results[rule.id] for rule in build.recipe.push_rules)
        self.assertEqual(3, first.blobs_uploaded)
        self.assertEqual(2, second.blobs_mounted)
        # Configs are small and never mounted.
        self.assertEqual(1, second.blobs_uploaded)
        self.assertEqual(files.config.size, second.bytes_uploaded)

    def test_mount_from_push_record(self):
        # A second repository of the same registry mounts every layer a
        # first push left there.
        build, files = self.makeBuild()
        self.addSecondPushRule(build)
        # Only the push records can say (not this upload, which would
        # name the first repository just the same).
        self.patch(
            OCIRegistryClient,
            "_findMountSource",
            classmethod(lambda *a, **k: None),
        )
        self.assertSecondRepositoryMountsLayers(build, files)

    def test_mount_from_this_upload(self):
        # A layer this upload pushed to one repository is mounted into
        # the next repository of the same registry, even with nothing
        # in the push records.
        build, files = self.makeBuild()
        self.addSecondPushRule(build)
        self.patch(OCIPushedBlobSet, "findRepositories", lambda *a, **k: [])
        self.assertSecondRepositoryMountsLayers(build, files)

    def assertMountedFromSource(self, base_layer, legacy=False):
        """A layer recorded as pulled from library/base, where another
        build pushed ``base_layer``, is mounted from there."""
        base, _ = self.makeBuild(
            image_name="library/base", layer_contents=[base_layer]
        )
        self.makeClient().upload(base)
        build, files = self.makeBuild(
            legacy=legacy,
            layer_contents=[b"base layer", b"app layer"],
            layer_sources={0: "%s/library/base" % self.registry.host},
        )
        # Forget the push record, so only the recorded source can say.
        IStore(OCIPushedBlob).find(OCIPushedBlob).remove()
        transaction.commit()
        (result,) = self.makeClient().upload(build).values()
        self.assertEqual(1, result.blobs_mounted)
        self.assertEqual(2, result.blobs_uploaded)

    def test_mount_from_layer_source(self):
        # The builder recorded (in the index entry's layer-sources
        # annotation) that a layer was pulled from another repository of
        # this registry: it is mounted from there.
        self.assertMountedFromSource(b"base layer")

    def test_legacy_layer_mounted_from_its_source(self):
        # A legacy build's digests.json "source" says the same; its
        # layer file is the gzipped layer.
        self.assertMountedFromSource(
            gzip.compress(b"base layer", mtime=0), legacy=True
        )

    def test_manifests_recorded_without_media_type_are_docker(self):
        # Jobs from before recorded no media type: they pushed Docker
        # manifests, and are listed so in the tag's index.
        build, files = self.makeBuild(legacy=True)
        client = self.makeClient()
        job = self.pushBuild(build, client=client)
        (rule,) = build.recipe.push_rules
        manifests = job.uploaded_manifests[str(rule.id)]
        self.assertEqual(
            [MediaType.DOCKER_MANIFEST], [m["mediaType"] for m in manifests]
        )
        job.uploaded_manifests = {
            str(rule.id): [
                {k: v for k, v in m.items() if k != "mediaType"}
                for m in manifests
            ]
        }
        transaction.commit()
        listed = []
        self.patch(
            client,
            "_uploadManifestListToTag",
            lambda http_client, tag, children: listed.extend(children),
        )
        client.uploadManifestList(None, [build])
        self.assertEqual(
            [MediaType.DOCKER_MANIFEST], [m["mediaType"] for m in listed]
        )

    def test_declined_mount_uploads(self):
        proxy = self.makeProxy()
        build, files = self.makeBuild(url=proxy.url)
        self.addSecondPushRule(build)
        proxy.addRule("strip_mount", method="POST", path="mount=", times=None)
        results = self.makeClient().upload(build)
        second = results[build.recipe.push_rules[1].id]
        self.assertEqual(0, second.blobs_mounted)
        self.assertEqual(3, second.blobs_uploaded)
        # The session the declined mount opened was used: one POST per
        # layer (the mount), one for the config.
        posts = [
            path
            for method, path, _ in proxy.requests
            if method == "POST" and "second" in path
        ]
        self.assertEqual(3, len(posts))

    def test_stale_push_record_is_forgotten(self):
        # A push record says a layer is in a repository that does not
        # have it (deleted or garbage-collected since): the mount is
        # declined, the layer is uploaded, and the record is dropped so
        # that later pushes do not try it again.  Records that held
        # stay.
        build, files = self.makeBuild()
        (rule,) = build.recipe.push_rules
        pushed = getUtility(IOCIPushedBlobSet)
        stale = files.layers[0].layer_file_digest
        pushed.record(rule.registry_url, "gone/away", stale)
        transaction.commit()
        (result,) = self.makeClient().upload(build).values()
        self.assertEqual(0, result.blobs_mounted)
        self.assertEqual(3, result.blobs_uploaded)
        self.assertEqual([("gone/away", stale)], result.declined_mounts)
        self.assertEqual(
            [rule.image_name],
            pushed.findRepositories(rule.registry_url, stale),
        )
        # A second repository now mounts from the good record only.
        second = self.factory.makeOCIPushRule(
            recipe=build.recipe,
            registry_credentials=rule.registry_credentials,
            image_name=self.factory.getUniqueString("second"),
        )
        transaction.commit()
        results = self.makeClient().upload(build)
        self.assertEqual(2, results[second.id].blobs_mounted)
        self.assertEqual([], results[second.id].declined_mounts)

    def test_parallel_blob_pushes(self):
        proxy = self.makeProxy()
        build, files = self.makeBuild(
            url=proxy.url,
            layer_contents=[os.urandom(200_000) for _ in range(6)],
        )
        (result,) = self.makeClient(parallelism=3).upload(build).values()
        self.assertEqual(7, result.blobs_uploaded)
        self.assertThat(proxy.peak, _Between(2, 3))

    def test_memory_flat(self):
        # Blobs stream from the librarian: pushing a 24 MiB layer (one
        # streamed PUT, then again in 4 MiB chunks after a cut) holds
        # far less than the layer in memory.
        big = os.urandom(24 * 1024 * 1024)
        build, files = self.makeBuild(layer_contents=[big])
        digest = Digest.of_bytes(big)
        del big
        client = self.makeClient(chunk_size=4 * 1024 * 1024)
        tracemalloc.start()
        self.addCleanup(tracemalloc.stop)
        (result,) = client.upload(build).values()
        _, peak = tracemalloc.get_traced_memory()
        self.assertEqual(2, result.blobs_uploaded)
        # The streamed layer adds ~nothing.
        self.assertTrue(peak < 2 * 1024 * 1024, peak)
        # Again in chunks, to another repository through a proxy (whose
        # own 1 MiB buffers are counted too).
        proxy = self.makeProxy()
        proxy.addRule("drop", method="PUT", path=digest.hex, after_bytes=1)
        self.factory.makeOCIPushRule(
            recipe=build.recipe,
            registry_credentials=self.factory.makeOCIRegistryCredentials(
                url=proxy.url, credentials={}
            ),
            image_name=self.factory.getUniqueString("chunks"),
        )
        transaction.commit()
        tracemalloc.reset_peak()
        results = client.upload(build)
        _, peak = tracemalloc.get_traced_memory()
        second = results[build.recipe.push_rules[1].id]
        self.assertEqual(2, second.blobs_uploaded)
        self.assertTrue(peak < 10 * 1024 * 1024, peak)
        self.assertEqual(
            6, [method for method, _, _ in proxy.requests].count("PATCH")
        )

    def test_basic_auth(self):
        registry = RegistryLayer.basic
        user, password = next(iter(RegistryLayer.basic_users.items()))
        build, files = self.makeBuild(
            url=registry.url,
            credentials={"username": user, "password": password},
        )
        job = self.pushBuild(build)
        self.assertIsNone(job.error_summary)
        # skopeo reads it back with the same credentials.
        raw = self.skopeoInspect(
            self.reference(
                build, "@%s" % files.manifest.layer_file_digest, registry
            ),
            creds=(user, password),
        )
        self.assertEqual(
            files.manifest.layer_file_digest.hex,
            hashlib.sha256(raw).hexdigest(),
        )

    def test_token_auth(self):
        registry = RegistryLayer.token
        user, password = next(iter(RegistryLayer.basic_users.items()))
        build, files = self.makeBuild(
            url=registry.url,
            credentials={"username": user, "password": password},
        )
        self.addSecondPushRule(build)
        issued = RegistryLayer.token_server.issued
        job = self.pushBuild(build)
        self.assertIsNone(job.error_summary)
        # Threads share tokens: one per push rule, one for the mounts'
        # scope, one per push rule's manifest list.
        self.assertEqual(5, RegistryLayer.token_server.issued - issued)
        first, second = (
            job.registry_results[str(rule.id)]
            for rule in build.recipe.push_rules
        )
        self.assertEqual(3, first["blobs_uploaded"])
        # The mount's token had pull on the first repository too.
        self.assertEqual(2, second["blobs_mounted"])
        raw = self.skopeoInspect(
            "docker://%s/%s@%s"
            % (
                registry.host,
                build.recipe.push_rules[0].image_name,
                files.manifest.layer_file_digest,
            ),
            creds=(user, password),
        )
        self.assertEqual(
            files.manifest.layer_file_digest.hex,
            hashlib.sha256(raw).hexdigest(),
        )

    def test_token_expiry_renews_once(self):
        registry = RegistryLayer.token
        proxy = self.makeProxy(registry)
        user, password = next(iter(RegistryLayer.basic_users.items()))
        build, files = self.makeBuild(
            url=proxy.url,
            credentials={"username": user, "password": password},
        )
        challenge = 'Bearer realm="%s",service="%s",error="invalid_token"' % (
            RegistryLayer.token_server.realm,
            RegistryLayer.token_server.service,
        )
        # The registry says the token expired in the middle of the push.
        proxy.addRule(
            "status",
            method="PUT",
            path="/manifests/",
            status=401,
            headers={"WWW-Authenticate": challenge},
        )
        issued = RegistryLayer.token_server.issued
        job = self.pushBuild(build, client=self.makeClient(parallelism=1))
        self.assertIsNone(job.error_summary)
        # One token for the push, one renewal, one for the tag's client.
        self.assertEqual(3, RegistryLayer.token_server.issued - issued)
        manifest_puts = [
            path
            for method, path, _ in proxy.requests
            if method == "PUT"
            and path.endswith(
                "/manifests/%s" % files.manifest.layer_file_digest
            )
        ]
        # Refused once with the old token, then accepted.
        self.assertEqual(2, len(manifest_puts))

    def test_token_refused(self):
        registry = RegistryLayer.token
        build, files = self.makeBuild(
            url=registry.url,
            credentials={"username": "pusher", "password": "wrong-token-pw"},
        )
        job = self.pushBuild(build)
        self.assertEqual("Failed", job.job.status.title)
        self.assertNotIn("wrong-token-pw", job.error_summary)
        self.assertIn("token server answered 401", job.error_summary)

    def test_basic_auth_refused(self):
        registry = RegistryLayer.basic
        build, files = self.makeBuild(
            url=registry.url,
            credentials={"username": "pusher", "password": "wrong-password"},
        )
        job = self.pushBuild(build)
        self.assertEqual("Failed", job.job.status.title)
        self.assertNotIn("wrong-password", job.error_summary)
        self.assertEqual("UNAUTHORIZED", job.errors[0]["code"])
        # A refusal is final: no retry.
        self.assertEqual(1, job.job.attempt_count)

    def test_legacy_build(self):
        build, files = self.makeBuild(legacy=True)
        job = self.pushBuild(build)
        self.assertIsNone(job.error_summary)
        ((manifest,),) = job.uploaded_manifests.values()
        self.assertEqual(MediaType.DOCKER_MANIFEST, manifest["mediaType"])
        digest = Digest.parse(manifest["digest"])
        index = self.assertReadBack(build, digest)
        # Docker manifests go into a Docker manifest list.
        self.assertEqual(MediaType.DOCKER_MANIFEST_LIST, index["mediaType"])
        pushed = json.loads(
            self.skopeoInspect(self.reference(build, "@%s" % digest))
        )
        # The config as stored, each layer file under its own digest,
        # no "sha256:sha256:".
        self.assertEqual(
            "sha256:%s" % files.config.library_file.content.sha256,
            pushed["config"]["digest"],
        )
        self.assertEqual(
            [
                "sha256:%s" % layer.library_file.content.sha256
                for layer in files.layers
            ],
            [layer["digest"] for layer in pushed["layers"]],
        )

    def test_damaged_config_is_not_pushed(self):
        # A config whose stored bytes no longer have the sha256 recorded
        # at upload (same size, one byte changed) fails the push with a
        # line naming it.  A legacy build's push used to take the damaged
        # bytes' own digest as the config's, and crash looking for a
        # librarian file by it.
        for legacy in (True, False):
            build, files = self.makeBuild(legacy=legacy)
            path = get_librarian_storage().getPath(
                files.config.library_file.content.sha256
            )
            with open(path, "r+b") as f:
                # Still valid JSON: "amd64" becomes "amd65".
                offset = f.read().index(b"amd64") + 4
                f.seek(offset)
                f.write(b"5")
            job = self.pushBuild(build)
            self.assertEqual("Failed", job.job.status.title)
            self.assertIn(
                "does not have its recorded sha256", job.error_summary
            )
            self.assertNotIn("\n", job.error_summary)
            self.assertEqual({}, job.uploaded_manifests)


class _Between:
    def __init__(self, low, high):
        self.low, self.high = low, high

    def match(self, value):
        if not self.low <= value <= self.high:
            from testtools.matchers import Mismatch

            return Mismatch(f"{value} not in [{self.low}, {self.high}]")
        return None

    def __str__(self):
        return f"between {self.low} and {self.high}"


class TestOCIRegistryClientFaults(RegistryTestMixin, TestCaseWithFactory):
    def test_connection_dropped_mid_blob(self):
        # The monolithic PUT is cut: a new session in chunks succeeds.
        proxy = self.makeProxy()
        big = os.urandom(50_000)
        build, files = self.makeBuild(
            url=proxy.url, layer_contents=[big, b"small"]
        )
        digest = Digest.of_bytes(big)
        proxy.addRule(
            "drop", method="PUT", path=digest.hex, after_bytes=10_000
        )
        client = self.makeClient(chunk_size=16_384)
        job = self.pushBuild(build, client=client)
        self.assertIsNone(job.error_summary)
        patches = [
            headers["Content-Range"]
            for method, path, headers in proxy.requests
            if method == "PATCH"
        ]
        self.assertEqual(
            ["0-16383", "16384-32767", "32768-49151", "49152-49999"], patches
        )
        self.assertReadBack(build, files.manifest.layer_file_digest)

    def test_chunk_cut_resumes_from_range(self):
        proxy = self.makeProxy()
        big = os.urandom(40_000)
        build, files = self.makeBuild(url=proxy.url, layer_contents=[big])
        digest = Digest.of_bytes(big)
        # The first PUT is cut, so the push goes on in chunks; then the
        # second chunk is cut before the registry sees any of it.
        proxy.addRule("drop", method="PUT", path=digest.hex, after_bytes=1)
        proxy.addRule("drop", method="PATCH", skip=1, after_bytes=0)
        client = self.makeClient(chunk_size=16_384)
        (result,) = client.upload(build).values()
        self.assertEqual(2, result.blobs_uploaded)
        requests_seen = [
            (method, headers.get("Content-Range"))
            for method, path, headers in proxy.requests
            if method in ("PATCH", "GET") and "uploads" in path
        ]
        self.assertEqual(
            [
                ("PATCH", "0-16383"),
                ("PATCH", "16384-32767"),
                ("GET", None),
                ("PATCH", "16384-32767"),
                ("PATCH", "32768-39999"),
            ],
            requests_seen,
        )

    def test_500_then_success(self):
        proxy = self.makeProxy()
        build, files = self.makeBuild(url=proxy.url)
        proxy.addRule("status", method="PUT", path="/manifests/", status=500)
        proxy.addRule("status", method="HEAD", path="/blobs/", status=503)
        job = self.pushBuild(build)
        self.assertIsNone(job.error_summary)
        self.assertEqual(2, len(self.sleep.calls))
        self.assertReadBack(build, files.manifest.layer_file_digest)

    def test_429_honours_retry_after(self):
        proxy = self.makeProxy()
        build, files = self.makeBuild(url=proxy.url)
        proxy.addRule(
            "status",
            method="POST",
            path="/blobs/uploads/",
            status=429,
            headers={"Retry-After": "7"},
        )
        (result,) = self.makeClient().upload(build).values()
        self.assertEqual(3, result.blobs_uploaded)
        self.assertEqual([7.0], self.sleep.calls)

    def test_other_4xx_not_retried(self):
        proxy = self.makeProxy()
        build, files = self.makeBuild(url=proxy.url, layer_contents=[b"one"])
        body = json.dumps(
            {"errors": [{"code": "DENIED", "message": "no pushing here"}]}
        ).encode()
        proxy.addRule(
            "status",
            method="POST",
            path="/blobs/uploads/",
            status=403,
            body=body,
            headers={"Content-Type": "application/json"},
            times=None,
        )
        e = self.assertRaises(
            BlobUploadFailed, self.makeClient(parallelism=1).upload, build
        )
        self.assertEqual(
            [{"code": "DENIED", "message": "no pushing here"}], e.errors
        )
        self.assertEqual([], self.sleep.calls)
        posts = [r for r in proxy.requests if r[0] == "POST"]
        self.assertEqual(1, len(posts))

    def test_digest_mismatch_refused(self):
        proxy = self.makeProxy()
        build, files = self.makeBuild(url=proxy.url)
        proxy.addRule(
            "header",
            method="PUT",
            path="/blobs/uploads/",
            header="Docker-Content-Digest",
            value="sha256:" + "0" * 64,
        )
        e = self.assertRaises(
            BlobUploadFailed, self.makeClient(parallelism=1).upload, build
        )
        self.assertIn("0000000000", str(e))

    def test_manifest_refused_errors_on_job(self):
        proxy = self.makeProxy()
        build, files = self.makeBuild(url=proxy.url)
        body = json.dumps(
            {
                "errors": [
                    {
                        "code": "MANIFEST_INVALID",
                        "message": "manifest invalid",
                        "detail": {"reason": "test"},
                    }
                ]
            }
        ).encode()
        proxy.addRule(
            "status",
            method="PUT",
            path="/manifests/sha256:",
            status=400,
            body=body,
            headers={"Content-Type": "application/json"},
        )
        job = self.pushBuild(build)
        self.assertEqual("Failed", job.job.status.title)
        self.assertEqual("FAILEDTOUPLOAD", build.registry_upload_status.name)
        self.assertEqual(
            [
                {
                    "code": "MANIFEST_INVALID",
                    "message": "manifest invalid",
                    "detail": {"reason": "test"},
                }
            ],
            build.registry_upload_errors,
        )
        self.assertIn("MANIFEST_INVALID", build.registry_upload_error_summary)

    def test_unreachable_registry_retried_later(self):
        proxy = self.makeProxy()
        build, files = self.makeBuild(url=proxy.url)
        proxy.stop()
        job = self.pushBuild(build)
        self.assertEqual("Waiting", job.job.status.title)
        self.assertIsNotNone(job.job.scheduled_start)
        self.assertIn("Cannot reach", job.error_summary)
        self.assertEqual([], job.errors)


class TestOCIRegistryClientManifestList(
    RegistryTestMixin, TestCaseWithFactory
):
    def test_multi_arch_merge(self):
        amd64, amd64_files = self.makeBuild()
        recipe = amd64.recipe
        arm64, arm64_files = self.makeBuild(recipe=recipe, arch="arm64")
        self.pushBuild(amd64)
        self.pushBuild(arm64)
        index = self.assertReadBack(
            arm64, arm64_files.manifest.layer_file_digest
        )
        self.assertEqual(
            {
                ("amd64", str(amd64_files.manifest.layer_file_digest)),
                ("arm64", str(arm64_files.manifest.layer_file_digest)),
            },
            {
                (m["platform"]["architecture"], m["digest"])
                for m in index["manifests"]
            },
        )
        # A rebuild for amd64 replaces amd64 and keeps arm64.
        rebuild, rebuild_files = self.makeBuild(recipe=recipe)
        self.pushBuild(rebuild)
        index = self.assertReadBack(
            rebuild, rebuild_files.manifest.layer_file_digest
        )
        self.assertEqual(
            {
                ("amd64", str(rebuild_files.manifest.layer_file_digest)),
                ("arm64", str(arm64_files.manifest.layer_file_digest)),
            },
            {
                (m["platform"]["architecture"], m["digest"])
                for m in index["manifests"]
            },
        )

    def test_existing_single_manifest_kept(self):
        # The tag holds a plain image of another platform: it becomes
        # that platform's entry.
        arm64, arm64_files = self.makeBuild(arch="arm64")
        client = self.makeClient()
        client.upload(arm64)
        (rule,) = arm64.recipe.push_rules
        manifest = arm64_files.manifest.library_file.read()
        arm64_files.manifest.library_file.close()
        requests.put(
            "%s/v2/%s/manifests/edge" % (self.registry.url, rule.image_name),
            data=manifest,
            headers={"Content-Type": MediaType.OCI_MANIFEST},
        ).raise_for_status()
        amd64, amd64_files = self.makeBuild(recipe=arm64.recipe)
        self.pushBuild(amd64)
        index = json.loads(self.skopeoInspect(self.reference(amd64, ":edge")))
        self.assertEqual(
            {"amd64", "arm64"},
            {m["platform"]["architecture"] for m in index["manifests"]},
        )

    def test_lost_race_reads_again(self):
        amd64, amd64_files = self.makeBuild()
        arm64, arm64_files = self.makeBuild(recipe=amd64.recipe, arch="arm64")
        self.pushBuild(amd64)
        client = self.makeClient()
        client.upload(arm64)
        # While this job merges, another writer tags a new amd64 index.
        (rule,) = amd64.recipe.push_rules
        raced = []

        def race(http_client, tag):
            if raced:
                return
            raced.append(tag)
            other = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": MediaType.OCI_INDEX,
                    "manifests": [
                        {
                            "mediaType": MediaType.OCI_MANIFEST,
                            "digest": str(
                                amd64_files.manifest.layer_file_digest
                            ),
                            "size": amd64_files.manifest.size,
                            "platform": {
                                "architecture": "amd64",
                                "os": "linux",
                            },
                            "annotations": {"raced": "yes"},
                        }
                    ],
                }
            ).encode()
            requests.put(
                "%s/v2/%s/manifests/edge"
                % (self.registry.url, rule.image_name),
                data=other,
                headers={"Content-Type": MediaType.OCI_INDEX},
            ).raise_for_status()

        client._beforeTagUpdate = race
        job = self.pushBuild(arm64, client=client)
        self.assertIsNone(job.error_summary)
        self.assertEqual(["edge"], raced)
        index = json.loads(self.skopeoInspect(self.reference(arm64, ":edge")))
        amd64_entry, arm64_entry = sorted(
            index["manifests"], key=lambda m: m["platform"]["architecture"]
        )
        # The racing writer's entry survived the merge.
        self.assertEqual({"raced": "yes"}, amd64_entry["annotations"])
        self.assertEqual(
            str(arm64_files.manifest.layer_file_digest), arm64_entry["digest"]
        )

    def test_other_tag(self):
        build, files = self.makeBuild()
        self.pushBuild(build, tags=["stable"])
        index = json.loads(
            self.skopeoInspect(self.reference(build, ":stable"))
        )
        self.assertEqual(
            [str(files.manifest.layer_file_digest)],
            [m["digest"] for m in index["manifests"]],
        )


class TestRegistryUploadEndToEnd(RegistryTestMixin, TestCaseWithFactory):
    """From an upload as the build farm collects it to the registry."""

    def processUpload(self, recipe=None, legacy=False, top_seed=3):
        build = self.factory.makeOCIRecipeBuild(recipe=recipe)
        if recipe is None:
            self.factory.makeOCIPushRule(
                recipe=build.recipe,
                registry_credentials=self.factory.makeOCIRegistryCredentials(
                    url=self.registry.url, credentials={}
                ),
                image_name=self.factory.getUniqueString("e2e"),
            )
        build.updateStatus(BuildStatus.UPLOADING)
        transaction.commit()
        root = self.useFixture(TempDir()).path
        fsroot = os.path.join(root, "incoming")
        leaf = build.getUploadDirLeaf(build.build_cookie)
        target = upload_files_dir(build, os.path.join(fsroot, leaf))
        os.makedirs(os.path.dirname(target))
        image = make_test_image(top_seed=top_seed)
        if legacy:
            os.makedirs(target)
            for name, data in legacy_upload_files(image).items():
                with open(os.path.join(target, name), "wb") as f:
                    f.write(data)
        else:
            work = self.useFixture(TempDir()).path
            os.rename(make_oci_upload_dir([image], work), target)
        self.assertEqual(
            UploadStatusEnum.ACCEPTED,
            UploadProcessor(root).processBuildUpload(fsroot, leaf),
        )
        return build

    def test_oci_upload(self):
        build = self.processUpload()
        (job,) = run_registry_upload_jobs(client=self.makeClient())
        self.assertIsNone(job.error_summary)
        self.assertEqual(
            OCIRecipeBuildRegistryUploadStatus.UPLOADED,
            build.registry_upload_status,
        )
        ((manifest,),) = job.uploaded_manifests.values()
        digest = Digest.parse(manifest["digest"])
        # The digest the build recorded is the registry's.
        self.assertEqual(build.image_manifests[0][0], digest)
        self.assertEqual(digest, self.registryManifestDigest(build, digest))
        self.assertReadBack(build, digest)
        self.assertEqual([], run_registry_upload_jobs())

    def test_rebuild_sends_only_the_changed_layer(self):
        build = self.processUpload(top_seed=3)
        run_registry_upload_jobs(client=self.makeClient())
        rebuild = self.processUpload(recipe=build.recipe, top_seed=4)
        (job,) = run_registry_upload_jobs(client=self.makeClient())
        (result,) = job.registry_results.values()
        # The two base layers are there; the top layer and config are new.
        self.assertEqual(2, result["blobs_existing"])
        self.assertEqual(2, result["blobs_uploaded"])
        self.assertEqual(1, len(rebuild.image_manifests))
        ((manifest,),) = job.uploaded_manifests.values()
        index = self.assertReadBack(rebuild, Digest.parse(manifest["digest"]))
        self.assertEqual(1, len(index["manifests"]))

    def test_legacy_upload(self):
        build = self.processUpload(legacy=True)
        (job,) = run_registry_upload_jobs(client=self.makeClient())
        self.assertIsNone(job.error_summary)
        ((manifest,),) = job.uploaded_manifests.values()
        self.assertReadBack(build, Digest.parse(manifest["digest"]))
        # skopeo checks that the layers match the config's diff_ids.
        target = os.path.join(self.useFixture(TempDir()).path, "oci")
        skopeo(
            "copy",
            "--src-tls-verify=false",
            "--quiet",
            self.reference(build, ":edge"),
            "oci:%s:edge" % target,
        )
