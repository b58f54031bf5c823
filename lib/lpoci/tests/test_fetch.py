# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""``lp-oci fetch`` over real HTTP against ``lp-oci serve`` (gunicorn).

launchpadlib reads the build and lists its files; the files come over
HTTP; skopeo inspects and copies every archive written, and the
registry push of the build (`make_push_plan`, what
`OCIRegistryClient.upload` sends) is what the archive's manifests must
match.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile

import requests
import testtools
import transaction
from fixtures import TempDir

from lp.oci.model.ociregistryclient import make_push_plan
from lp.oci.tests.buildfarm import make_test_image
from lp.oci.tests.test_ociarchive import ArchiveTestMixin, tar_members
from lp.services.librarian.storage import get_librarian_storage
from lp.services.webservice.testing import (
    ACCOUNTS,
    CHILD_ENV,
    WebServiceLayer,
)
from lp.testing import TestCaseWithFactory
from lpbuildd.testing.faultproxy import FaultProxy
from lpoci.fetch import Downloader, FetchMismatch, split_api_url
from ocitypes.digest import Digest
from ocitypes.testing import tool_missing

SKOPEO = shutil.which("skopeo")


class FetchTestCase(ArchiveTestMixin, TestCaseWithFactory):
    layer = WebServiceLayer

    def setUp(self):
        super().setUp()
        self.out = self.useFixture(TempDir()).path
        self.scratch = self.useFixture(TempDir()).path

    def apiUrl(self, build):
        return "%sapi/devel/~%s/+oci-recipe/%s/+build/%d" % (
            WebServiceLayer.root_url,
            build.recipe.owner_name,
            build.recipe.name,
            build.id,
        )

    def fetch(self, build_or_url, *args, output="out.tar"):
        """Run ``lp-oci fetch``; (exit status, stdout, stderr)."""
        url = (
            build_or_url
            if isinstance(build_or_url, str)
            else self.apiUrl(build_or_url)
        )
        transaction.commit()
        process = subprocess.run(
            [
                sys.executable,
                "-m",
                "lpoci.cli",
                "fetch",
                url,
                "-o",
                os.path.join(self.out, output) if output != "-" else "-",
                *args,
            ],
            env=CHILD_ENV,
            capture_output=True,
            timeout=120,
        )
        return (
            process.returncode,
            process.stdout,
            process.stderr.decode("utf-8", "replace"),
        )

    def served(self, build, format_name):
        transaction.commit()
        url = "%s~%s/+oci-recipe/%s/+build/%d/+archive/%s" % (
            WebServiceLayer.root_url,
            build.recipe.owner_name,
            build.recipe.name,
            build.id,
            format_name,
        )
        return requests.get(url, timeout=60).content

    def skopeo(self, *args):
        if SKOPEO is None:
            tool_missing(
                self, "skopeo is not installed (apt-get install skopeo)"
            )
        process = subprocess.run(
            [SKOPEO, "--insecure-policy", *args],
            capture_output=True,
            timeout=120,
        )
        self.assertEqual(
            0, process.returncode, process.stderr.decode(errors="replace")
        )
        return process.stdout

    def assertFetched(self, build, pushed_digests):
        """Fetch both formats; check them against the service, skopeo
        and the registry push's manifests."""
        for format_name in ("oci", "docker"):
            name = f"{build.id}.{format_name}.tar"
            status, stdout, stderr = self.fetch(
                build, "--format", format_name, "--json", output=name
            )
            self.assertEqual(0, status, stderr)
            summary = json.loads(stdout)
            path = os.path.join(self.out, name)
            with open(path, "rb") as f:
                data = f.read()
            # The archive the service serves, byte for byte: the same
            # code (make_archive) over the same, verified bytes.
            self.assertEqual(self.served(build, format_name), data)
            self.assertEqual(
                hashlib.sha256(data).hexdigest(), summary["sha256"]
            )
            self.assertEqual(len(data), summary["size"])
            self.assertEqual(
                pushed_digests,
                [image["manifest_digest"] for image in summary["images"]],
            )
            # Nothing is left beside it.
            self.assertEqual(
                [], [n for n in os.listdir(self.out) if n.startswith(".")]
            )
            members = tar_members(data)
            for position, image in enumerate(summary["images"]):
                reference = self.skopeoReference(
                    format_name, path, position, len(summary["images"])
                )
                inspected = json.loads(self.skopeo("inspect", reference))
                if format_name == "oci":
                    # The image as built and pushed: its manifest digest
                    # and its layers' digests.
                    self.assertEqual(
                        image["manifest_digest"], inspected["Digest"]
                    )
                    self.assertEqual(
                        [layer["digest"] for layer in image["layers"]],
                        inspected["Layers"],
                    )
                else:
                    # A docker archive's layers are named by diff_id;
                    # the config is byte-exact.
                    raw = json.loads(
                        self.skopeo("inspect", "--raw", reference)
                    )
                    self.assertEqual(
                        image["config_digest"], raw["config"]["digest"]
                    )
                    self.assertEqual(
                        len(image["layers"]), len(inspected["Layers"])
                    )
                # Every blob is where its digest says.
                for layer in image["layers"]:
                    blob = members[
                        "blobs/sha256/" + Digest.parse(layer["digest"]).hex
                    ]
                    self.assertEqual(
                        layer["digest"], str(Digest.of_bytes(blob))
                    )
                # skopeo copies it, verifying every blob on the way.
                copied = os.path.join(self.scratch, f"copy-{format_name}")
                self.skopeo("copy", reference, f"oci:{copied}:x{position}")
        return summary

    def skopeoReference(self, format_name, path, position, count):
        """A skopeo reference to image ``position`` of an archive."""
        if format_name == "docker":
            return f"docker-archive:{path}:@{position}"
        if count == 1:
            return f"oci-archive:{path}"
        # skopeo 1.9 picks an image of an OCI layout by name, and only
        # among OCI manifests (a legacy build's are Docker ones, as its
        # push): a copy of the layout whose index lists that image only.
        layout = os.path.join(
            self.scratch, f"layout-{position}-{os.path.basename(path)}"
        )
        with tarfile.open(path) as tar:
            tar.extractall(layout)
        index_path = os.path.join(layout, "index.json")
        with open(index_path) as f:
            index = json.load(f)
        digests = list(dict.fromkeys(e["digest"] for e in index["manifests"]))
        index["manifests"] = [
            entry
            for entry in index["manifests"]
            if entry["digest"] == digests[position]
        ][:1]
        with open(index_path, "w") as f:
            json.dump(index, f)
        return f"oci:{layout}"

    def pushedDigests(self, build):
        return [
            str(manifest.digest)
            for manifest in make_push_plan(build).manifests
        ]


class TestFetch(FetchTestCase):
    def test_oci_build(self):
        build = self.makeBuild(
            [make_test_image(base_size=8192)], owner_name="alice"
        )
        summary = self.assertFetched(build, self.pushedDigests(build))
        self.assertEqual("oci", summary["upload_format"])

    def test_multi_image_oci_build(self):
        images = [
            make_test_image(top_seed=seed, base_size=8192) for seed in (3, 4)
        ]
        build = self.makeBuild(images, owner_name="alice")
        summary = self.assertFetched(build, self.pushedDigests(build))
        self.assertEqual(2, len(summary["images"]))

    def test_legacy_build(self):
        # The second layer was pulled: digests.json gives Docker's
        # registry digest, which is not that of the stored file.  The
        # archive has the manifest the push sends, which lists the file
        # under its own sha256.
        image = make_test_image(base_size=8192)
        build = self.makeLegacyBuild(image, pulled=(1,), owner_name="alice")
        summary = self.assertFetched(build, self.pushedDigests(build))
        self.assertEqual("legacy", summary["upload_format"])
        (pushed,) = make_push_plan(build).manifests
        self.assertEqual(
            [
                layer["digest"]
                for layer in json.loads(pushed.content)["layers"]
            ],
            [layer["digest"] for layer in summary["images"][0]["layers"]],
        )

    def test_multi_image_legacy_build(self):
        images = [
            make_test_image(top_seed=seed, base_size=8192) for seed in (3, 5)
        ]
        build = self.makeLegacyBuild(
            images[0], pulled=(0,), more_images=images[1:], owner_name="alice"
        )
        summary = self.assertFetched(build, self.pushedDigests(build))
        self.assertEqual(2, len(summary["images"]))

    def test_to_stdout(self):
        build = self.makeBuild(
            [make_test_image(base_size=8192)], owner_name="alice"
        )
        transaction.commit()
        process = subprocess.run(
            [
                sys.executable,
                "-m",
                "lpoci.cli",
                "fetch",
                self.apiUrl(build),
                "-o",
                "-",
            ],
            env=CHILD_ENV,
            capture_output=True,
            timeout=120,
        )
        self.assertEqual(0, process.returncode, process.stderr)
        self.assertEqual(self.served(build, "oci"), process.stdout)
        # Progress on stderr: the fetch line says how much of what.
        self.assertIn("fetch: ", process.stderr.decode())

    def test_private_build_needs_credentials(self):
        build = self.makeBuild(
            [make_test_image(base_size=8192)], owner_name="alice", private=True
        )
        status, stdout, stderr = self.fetch(build)
        self.assertEqual(1, status)
        self.assertEqual(
            f"lp-oci: error: cannot read {self.apiUrl(build)}: "
            "404 Not Found\n",
            stderr,
        )
        self.assertEqual([], os.listdir(self.out))
        credentials = os.path.join(self.useFixture(TempDir()).path, "c.json")
        with open(credentials, "w") as f:
            json.dump(
                {"username": "alice", "password": ACCOUNTS["alice"][0]}, f
            )
        status, stdout, stderr = self.fetch(
            build, "--credentials", credentials
        )
        self.assertEqual(0, status, stderr)
        with open(os.path.join(self.out, "out.tar"), "rb") as f:
            self.assertEqual(
                hashlib.sha256(f.read()).hexdigest(),
                stdout.decode().splitlines()[2].split()[-1],
            )

    def test_file_whose_bytes_do_not_match(self):
        # A stored layer damaged in place (same size, one byte changed):
        # the service still states the recorded sha256, the bytes do not
        # have it.  One line naming the file; nothing written.
        for legacy in (False, True):
            if legacy:
                build = self.makeLegacyBuild(owner_name="alice")
            else:
                build = self.makeBuild(
                    [make_test_image(base_size=8192)], owner_name="alice"
                )
            layer = build.layers[-1]
            path = get_librarian_storage().getPath(
                layer.library_file.content.sha256
            )
            with open(path, "r+b") as f:
                f.seek(20)
                byte = f.read(1)
                f.seek(20)
                f.write(bytes([byte[0] ^ 1]))
            status, stdout, stderr = self.fetch(build)
            self.assertEqual(1, status, stderr)
            self.assertEqual(1, len(stderr.splitlines()), stderr)
            self.assertIn(layer.library_file.filename, stderr)
            self.assertIn("does not match", stderr)
            self.assertNotIn("Traceback", stderr)
            self.assertEqual(b"", stdout)
            self.assertEqual([], os.listdir(self.out))

    def test_rerun_resumes_a_cut_download(self):
        # An earlier fetch was cut in the middle of the biggest layer:
        # its partial file is in the download directory beside the
        # output; the same command resumes it.
        build = self.makeBuild(
            [make_test_image(base_size=64 * 1024)], owner_name="alice"
        )
        layer = max(build.layers, key=lambda layer: layer.size)
        content = layer.library_file.read()
        layer.library_file.close()
        work = os.path.join(self.out, ".out.tar.lp-oci-fetch")
        os.mkdir(work)
        half = len(content) // 2
        with open(
            os.path.join(work, layer.library_file.filename + ".part"), "wb"
        ) as f:
            f.write(content[:half])
        status, stdout, stderr = self.fetch(build, "--json")
        self.assertEqual(0, status, stderr)
        summary = json.loads(stdout)
        self.assertEqual(half, summary["bytes_resumed"])
        with open(os.path.join(self.out, "out.tar"), "rb") as f:
            self.assertEqual(self.served(build, "oci"), f.read())
        self.assertEqual(["out.tar"], os.listdir(self.out))

    def test_bad_urls(self):
        for url, message in (
            ("ftp://x/api/devel/", "is not an http or https URL"),
            (
                WebServiceLayer.root_url + "~alice/+oci-recipe/x/+build/1",
                "is not a web service URL of a build",
            ),
            (
                WebServiceLayer.root_url
                + "api/devel/~alice/+oci-recipe/nope/+build/1",
                "404 Not Found",
            ),
        ):
            status, stdout, stderr = self.fetch(url)
            self.assertEqual(1, status, stderr)
            self.assertEqual(1, len(stderr.splitlines()), stderr)
            self.assertIn(message, stderr)
            self.assertEqual([], os.listdir(self.out))

    def test_unbuilt_build(self):
        build = self.factory.makeOCIRecipeBuild(owner_name="alice")
        status, _, stderr = self.fetch(build)
        self.assertEqual(1, status)
        self.assertIn("is Needs building, not Successfully built", stderr)


class TestDownloader(FetchTestCase):
    """A download cut in the middle resumes with a Range request."""

    def test_cut_download_resumes(self):
        build = self.makeBuild(
            [make_test_image(base_size=256 * 1024)], owner_name="alice"
        )
        layer = max(build.layers, key=lambda layer: layer.size)
        content = layer.library_file.read()
        layer.library_file.close()
        transaction.commit()
        path = "/~alice/+oci-recipe/%s/+build/%d/+files/%s" % (
            build.recipe.name,
            build.id,
            layer.library_file.filename,
        )
        proxy = FaultProxy(WebServiceLayer.root_url.rstrip("/"))
        proxy.start()
        self.addCleanup(proxy.stop)
        half = len(content) // 2
        rule = proxy.dropAfter(half)
        rule.path_prefix = path
        downloader = Downloader(
            requests.Session(), None, self.out, sleep=lambda s: None
        )
        local = downloader.fetch(
            "layer",
            proxy.url.rstrip("/") + path,
            sha256=layer.library_file.content.sha256,
            size=len(content),
        )
        self.assertEqual(1, rule.applied)
        with open(local.path, "rb") as f:
            self.assertEqual(content, f.read())
        # The second request asked only for the rest.
        self.assertEqual(half, downloader.resumed)
        self.assertEqual(len(content), downloader.bytes)
        self.assertEqual([path, path], proxy.requests)

    def test_mismatch_leaves_nothing(self):
        build = self.makeBuild(
            [make_test_image(base_size=8192)], owner_name="alice"
        )
        layer = build.layers[0]
        transaction.commit()
        url = "%s~alice/+oci-recipe/%s/+build/%d/+files/%s" % (
            WebServiceLayer.root_url,
            build.recipe.name,
            build.id,
            layer.library_file.filename,
        )
        downloader = Downloader(requests.Session(), None, self.out)
        error = self.assertRaises(
            FetchMismatch, downloader.fetch, "layer", url, sha256="0" * 64
        )
        self.assertIn("downloaded layer does not match: sha256", str(error))
        self.assertEqual([], os.listdir(self.out))

    def test_uncompressed_layer_diff_id(self):
        # An uncompressed layer's diff_id is the digest of its bytes.
        build = self.makeBuild(
            [make_test_image(base_size=8192)], owner_name="alice"
        )
        layer = build.layers[0]
        content = layer.library_file.read()
        layer.library_file.close()
        transaction.commit()
        url = "%s~alice/+oci-recipe/%s/+build/%d/+files/%s" % (
            WebServiceLayer.root_url,
            build.recipe.name,
            build.id,
            layer.library_file.filename,
        )
        downloader = Downloader(requests.Session(), None, self.out)
        local = downloader.fetch(
            "layer", url, diff_id=Digest.of_bytes(content), kind="tar"
        )
        with open(local.path, "rb") as f:
            self.assertEqual(content, f.read())
        wrong = Digest("sha256", "0" * 64)
        error = self.assertRaises(
            FetchMismatch,
            downloader.fetch,
            "other",
            url,
            diff_id=wrong,
            kind="tar",
        )
        self.assertIn(f"expected {wrong}", str(error))
        self.assertEqual(["layer"], os.listdir(self.out))


class TestSplitURL(testtools.TestCase):
    def test_versions(self):
        self.assertEqual(
            (
                "https://api.launchpad.net/",
                "1.0",
                "https://api.launchpad.net/devel/"
                "~a/+oci/ubuntu/+recipe/r/+build/1",
            ),
            split_api_url(
                "https://api.launchpad.net/1.0/"
                "~a/+oci/ubuntu/+recipe/r/+build/1"
            ),
        )
        self.assertEqual(
            ("http://h:1/api/", "devel", "http://h:1/api/devel/~a/x"),
            split_api_url("http://h:1/api/devel/~a/x"),
        )
