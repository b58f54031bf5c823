# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The web service, website and files, over HTTP from a running gunicorn."""

import hashlib
import os
import socket
import subprocess
import sys

import requests
import transaction
from fixtures import TempDir
from lazr.restfulclient.authorize import BasicHttpAuthorizer
from lazr.restfulclient.resource import ServiceRoot
from testtools.matchers import ContainsDict, Equals, MatchesListwise
from zope.component import getUtility

from lp.buildmaster.enums import BuildStatus
from lp.oci.interfaces.ociarchive import IOCIArchiveSet, OCIArchiveFormat
from lp.oci.model.ocirecipebuild import OCIArchiveChecksum
from lp.oci.model.ocirecipebuildjob import run_archive_checksum_jobs
from lp.services.database.interfaces import IStore
from lp.services.webapp.wsgi import PASSWORD_SCHEME
from lp.services.webservice.testing import (
    ACCOUNTS,
    CHILD_ENV,
    HASHED_ACCOUNTS,
    WebServiceLayer,
)
from lp.testing import TestCaseWithFactory
from lp.testing.layers import SQLiteLaunchpadZopelessLayer


class WebServiceTestCase(TestCaseWithFactory):
    layer = WebServiceLayer

    def url(self, path):
        return WebServiceLayer.root_url + path

    def api(self, path, version="devel"):
        return self.url(f"api/{version}/{path}")

    def auth(self, name):
        return (name, ACCOUNTS[name][0])

    def get(self, url, user=None, **kwargs):
        # End this process's read transaction: on SQLite it would hold
        # a lock that the server's writes wait for.
        transaction.commit()
        return requests.get(
            url, auth=self.auth(user) if user else None, timeout=30, **kwargs
        )

    def makeBuild(self, private=False, owner_name="alice", files=True):
        build = self.factory.makeOCIRecipeBuild(
            owner_name=owner_name, private=private
        )
        if files:
            self.factory.makeOCILayoutFiles(build=build)
        build.updateStatus(BuildStatus.BUILDING)
        build.updateStatus(BuildStatus.FULLYBUILT)
        transaction.commit()
        return build

    def buildPath(self, build):
        return "~%s/+oci-recipe/%s/+build/%d" % (
            build.recipe.owner_name,
            build.recipe.name,
            build.id,
        )

    def recipePath(self, recipe):
        return "~%s/+oci-recipe/%s" % (recipe.owner_name, recipe.name)


class TestEntries(WebServiceTestCase):
    def test_service_root(self):
        for version in ("devel", "1.0", "beta"):
            response = self.get(self.api("", version))
            self.assertEqual(200, response.status_code)
            self.assertEqual(
                self.api("oci_recipe_builds", version),
                response.json()["oci_recipe_builds_collection_link"],
            )

    def test_description_wadl_and_json(self):
        wadl = self.get(
            self.api(""), headers={"Accept": "application/vnd.sun.wadl+xml"}
        )
        self.assertEqual(200, wadl.status_code)
        self.assertIn('id="oci_recipe_build"', wadl.text)
        self.assertIn('id="oci_recipe_build-getFileUrls"', wadl.text)
        self.assertIn('id="oci_recipe"', wadl.text)

    def test_build_entry(self):
        build = self.makeBuild()
        recipe = build.recipe
        response = self.get(self.api(self.buildPath(build)))
        self.assertEqual(200, response.status_code)
        data = response.json()
        layers = [
            {
                "digest": str(layer.digest),
                "diff_id": str(layer.diff_id),
                "size": layer.size,
                "media_type": layer.media_type,
                "transfer": "fetched",
            }
            for layer in build.layers
        ]
        self.assertThat(
            data,
            ContainsDict(
                {
                    "self_link": Equals(self.api(self.buildPath(build))),
                    "web_link": Equals(self.url(self.buildPath(build))),
                    "recipe_link": Equals(self.api(self.recipePath(recipe))),
                    "arch_tag": Equals("amd64"),
                    "title": Equals(build.title),
                    "buildstate": Equals("Successfully built"),
                    "datecreated": Equals(build.date_created.isoformat()),
                    "date_started": Equals(build.date_started.isoformat()),
                    "datebuilt": Equals(build.date_finished.isoformat()),
                    "duration": Equals(
                        str(build.date_finished - build.date_started)
                    ),
                    "build_log_url": Equals(None),
                    "upload_log_url": Equals(None),
                    "private": Equals(False),
                    "upload_format": Equals("oci"),
                    "layers": Equals(layers),
                    "registry_upload_status": Equals("Unscheduled"),
                    "registry_upload_error_summary": Equals(None),
                    "registry_upload_errors": Equals([]),
                }
            ),
        )
        [(manifest_digest, manifest)] = build.image_manifests
        self.assertThat(
            data["images"],
            MatchesListwise(
                [
                    Equals(
                        {
                            "manifest_digest": str(manifest_digest),
                            "config_digest": manifest["config"]["digest"],
                            "platform": "linux/amd64",
                            "names": [],
                            "layers": layers,
                        }
                    )
                ]
            ),
        )
        # The layers field is a resource of its own.
        response = self.get(self.api(self.buildPath(build) + "/layers"))
        self.assertEqual(layers, response.json())

    def test_reused_layer(self):
        first = self.makeBuild()
        second = self.factory.makeOCIRecipeBuild(recipe=first.recipe)
        for layer in first.layers:
            second.addFile(
                layer.library_file,
                layer_file_digest=layer.digest,
                diff_id=layer.diff_id,
                media_type=layer.media_type,
                kind=layer.oci_file.kind,
            )
        transaction.commit()
        data = self.get(self.api(self.buildPath(second))).json()
        self.assertEqual(
            ["reused", "reused"],
            [layer["transfer"] for layer in data["layers"]],
        )
        data = self.get(self.api(self.buildPath(first))).json()
        self.assertEqual(
            ["fetched", "fetched"],
            [layer["transfer"] for layer in data["layers"]],
        )

    def test_legacy_build(self):
        build = self.factory.makeOCIRecipeBuild(owner_name="alice")
        self.factory.makeLegacyOCIFiles(build=build)
        build.updateStatus(BuildStatus.BUILDING)
        build.updateStatus(BuildStatus.FULLYBUILT)
        transaction.commit()
        data = self.get(self.api(self.buildPath(build))).json()
        self.assertEqual("legacy", data["upload_format"])
        self.assertEqual(
            [str(layer.digest) for layer in build.layers],
            [layer["digest"] for layer in data["layers"]],
        )

    def test_unbuilt_build(self):
        build = self.factory.makeOCIRecipeBuild(owner_name="alice")
        transaction.commit()
        data = self.get(self.api(self.buildPath(build))).json()
        self.assertThat(
            data,
            ContainsDict(
                {
                    "buildstate": Equals("Needs building"),
                    "date_started": Equals(None),
                    "duration": Equals(None),
                    "upload_format": Equals(None),
                    "images": Equals([]),
                    "layers": Equals([]),
                }
            ),
        )

    def test_recipe_entry_and_build_collections(self):
        built = self.makeBuild()
        recipe = built.recipe
        recipe.description = "A recipe"
        pending = self.factory.makeOCIRecipeBuild(recipe=recipe)
        transaction.commit()
        data = self.get(self.api(self.recipePath(recipe))).json()
        self.assertThat(
            data,
            ContainsDict(
                {
                    "web_link": Equals(self.url(self.recipePath(recipe))),
                    "name": Equals(recipe.name),
                    "owner_name": Equals("alice"),
                    "description": Equals("A recipe"),
                    "private": Equals(False),
                    "can_upload_to_registry": Equals(False),
                    "date_created": Equals(recipe.date_created.isoformat()),
                }
            ),
        )
        for name, builds in (
            ("builds", [pending, built]),
            ("completed_builds", [built]),
            ("pending_builds", [pending]),
        ):
            collection = self.get(data[name + "_collection_link"]).json()
            self.assertEqual(
                [self.api(self.buildPath(b)) for b in builds],
                [entry["self_link"] for entry in collection["entries"]],
                name,
            )

    def test_getFileUrls(self):
        build = self.makeBuild()
        response = self.get(
            self.api(self.buildPath(build)), params={"ws.op": "getFileUrls"}
        )
        self.assertEqual(200, response.status_code)
        self.assertEqual(build.getFileUrls(), response.json())
        base = self.url(self.buildPath(build))
        self.assertTrue(
            all(
                url.startswith(base + "/+files/")
                for url in response.json()[:-2]
            )
        )
        # The files, then the two archives.
        self.assertEqual(
            [base + "/+archive/oci", base + "/+archive/docker"],
            response.json()[-2:],
        )
        # Only in devel, as Launchpad's.
        response = self.get(
            self.api(self.buildPath(build), "1.0"),
            params={"ws.op": "getFileUrls"},
        )
        self.assertEqual(400, response.status_code)


class TestAccess(WebServiceTestCase):
    def test_private_is_not_found(self):
        build = self.makeBuild(private=True)
        urls = [
            self.api(self.recipePath(build.recipe)),
            self.api(self.buildPath(build)),
            self.url(self.recipePath(build.recipe)),
            self.url(self.buildPath(build)),
        ] + build.getFileUrls()
        for url in urls:
            for user in (None, "bob"):
                self.assertEqual(
                    404, self.get(url, user).status_code, (url, user)
                )
            for user in ("alice", "admin"):
                self.assertEqual(
                    200, self.get(url, user).status_code, (url, user)
                )

    def test_collection_hides_private(self):
        public = self.makeBuild()
        private = self.makeBuild(private=True)

        def links(user):
            response = self.get(self.api("oci_recipe_builds"), user)
            return [e["self_link"] for e in response.json()["entries"]]

        self.assertEqual([self.api(self.buildPath(public))], links(None))
        self.assertEqual([self.api(self.buildPath(public))], links("bob"))
        both = [
            self.api(self.buildPath(private)),
            self.api(self.buildPath(public)),
        ]
        self.assertEqual(both, links("alice"))
        self.assertEqual(both, links("admin"))

    def test_private_distribution(self):
        distribution = self.factory.makeDistribution(private=True)
        das = self.factory.makeDistroArchSeries(
            distroseries=self.factory.makeDistroSeries(distribution)
        )
        build = self.factory.makeOCIRecipeBuild(
            owner_name="alice", distro_arch_series=das
        )
        transaction.commit()
        url = self.api(self.buildPath(build))
        self.assertEqual(404, self.get(url).status_code)
        self.assertEqual(200, self.get(url, "alice").status_code)
        entries = self.get(self.api("oci_recipe_builds")).json()["entries"]
        self.assertEqual([], entries)

    def schedule(self, build, user=None, password=None):
        auth = None
        if user:
            auth = (user, password or ACCOUNTS[user][0])
        url = self.api(self.buildPath(build))
        transaction.commit()
        return requests.post(
            url,
            data={"ws.op": "scheduleRegistryUpload"},
            auth=auth,
            timeout=30,
        )

    def test_hashed_password(self):
        # bob's password is stored hashed in the accounts file.
        url = self.api("oci_recipe_builds")
        self.assertIn("bob", HASHED_ACCOUNTS)
        with open(os.path.join(WebServiceLayer.directory, "accounts")) as f:
            stored = [
                line.split(":")[1] for line in f if line.startswith("bob:")
            ]
        self.assertTrue(stored[0].startswith(PASSWORD_SCHEME + "$"))
        for password, status in (
            (ACCOUNTS["bob"][0], 200),
            # Twice: the second is answered from the worker's memory of
            # verified credentials, which must not admit anything else.
            (ACCOUNTS["bob"][0], 200),
            ("bob-wrong", 401),
            (stored[0], 401),
            ("", 401),
        ):
            transaction.commit()
            response = requests.get(url, auth=("bob", password), timeout=30)
            self.assertEqual(status, response.status_code, password)

    def test_write_needs_authentication(self):
        build = self.makeBuild()
        self.factory.makeOCIPushRule(recipe=build.recipe)
        transaction.commit()
        response = self.schedule(build)
        self.assertEqual(401, response.status_code)
        self.assertIn("Basic", response.headers["WWW-Authenticate"])
        self.assertEqual(401, self.schedule(build, "bob").status_code)
        self.assertEqual(
            401, self.schedule(build, "alice", "wrong").status_code
        )
        self.assertEqual(
            "Unscheduled",
            self.get(self.api(self.buildPath(build))).json()[
                "registry_upload_status"
            ],
        )
        response = self.schedule(build, "alice")
        self.assertEqual(200, response.status_code, response.text)
        self.assertIsNone(response.json())
        self.assertEqual(
            "Pending",
            self.get(self.api(self.buildPath(build))).json()[
                "registry_upload_status"
            ],
        )
        # Scheduling again is refused with Launchpad's error.
        response = self.schedule(build, "admin")
        self.assertEqual(400, response.status_code)
        self.assertIn("already in progress", response.text)

    def test_schedule_without_push_rules(self):
        build = self.makeBuild()
        response = self.schedule(build, "alice")
        self.assertEqual(400, response.status_code)
        self.assertIn("not properly configured", response.text)

    def test_private_write_is_not_found(self):
        build = self.makeBuild(private=True)
        self.assertEqual(404, self.schedule(build, "bob").status_code)

    def test_bad_credentials_are_refused(self):
        response = requests.get(
            self.api(""), auth=("alice", "wrong"), timeout=30
        )
        self.assertEqual(401, response.status_code)


class TestFiles(WebServiceTestCase):
    def fileUrl(self, build):
        layer = build.layers[0]
        url = "%s/+files/%s" % (
            self.url(self.buildPath(build)),
            layer.library_file.filename,
        )
        self.assertIn(url, build.getFileUrls())
        content = layer.library_file.read()
        layer.library_file.close()
        return url, layer, content

    def test_whole_file(self):
        build = self.makeBuild()
        url, layer, content = self.fileUrl(build)
        response = self.get(url)
        self.assertEqual(200, response.status_code)
        self.assertEqual(content, response.content)
        self.assertEqual(str(len(content)), response.headers["Content-Length"])
        self.assertEqual(
            '"sha256:%s"' % hashlib.sha256(content).hexdigest(),
            response.headers["ETag"],
        )
        # Layers are downloads, whatever media type they were uploaded
        # with (see test_hostile_requests).
        self.assertEqual(
            "application/octet-stream", response.headers["Content-Type"]
        )
        self.assertEqual("bytes", response.headers["Accept-Ranges"])
        # Conditional requests.
        response = self.get(
            url, headers={"If-None-Match": response.headers["ETag"]}
        )
        self.assertEqual(304, response.status_code)

    def test_ranges(self):
        build = self.makeBuild()
        url, _, content = self.fileUrl(build)
        size = len(content)
        for header, start, end in (
            ("bytes=1-3", 1, 3),
            ("bytes=2-", 2, size - 1),
            ("bytes=-2", size - 2, size - 1),
            ("bytes=1-1000", 1, size - 1),
        ):
            response = self.get(url, headers={"Range": header})
            self.assertEqual(206, response.status_code, header)
            self.assertEqual(content[start : end + 1], response.content)
            self.assertEqual(
                f"bytes {start}-{end}/{size}",
                response.headers["Content-Range"],
            )
            self.assertEqual(
                str(end - start + 1), response.headers["Content-Length"]
            )
        response = self.get(url, headers={"Range": f"bytes={size}-"})
        self.assertEqual(416, response.status_code)
        self.assertEqual(f"bytes */{size}", response.headers["Content-Range"])

    def test_head(self):
        build = self.makeBuild()
        url, _, content = self.fileUrl(build)
        transaction.commit()
        response = requests.head(url, timeout=30)
        self.assertEqual(200, response.status_code)
        self.assertEqual(b"", response.content)
        self.assertEqual(str(len(content)), response.headers["Content-Length"])

    def test_archive(self):
        build = self.makeBuild()
        archive = getUtility(IOCIArchiveSet).getArchive(
            build, OCIArchiveFormat.DOCKER
        )
        expected = b"".join(archive.iterBytes())
        url = self.url(self.buildPath(build)) + "/+archive/docker"
        response = self.get(url)
        self.assertEqual(200, response.status_code)
        self.assertEqual(expected, response.content)
        self.assertEqual("application/x-tar", response.headers["Content-Type"])
        self.assertEqual(
            'attachment; filename="%s"' % archive.filename,
            response.headers["Content-Disposition"],
        )
        etag = response.headers["ETag"]
        self.assertEqual(etag, self.get(url).headers["ETag"])
        self.assertNotEqual(
            etag,
            self.get(
                self.url(self.buildPath(build)) + "/+archive/oci"
            ).headers["ETag"],
        )
        response = self.get(url, headers={"Range": "bytes=1000-1999"})
        self.assertEqual(206, response.status_code)
        self.assertEqual(expected[1000:2000], response.content)
        self.assertEqual(
            304,
            self.get(url, headers={"If-None-Match": etag}).status_code,
        )

    def test_archive_checksums_on_the_entry(self):
        # The entry states each archive's URL and size at once, equal to
        # those of the bytes the URL serves, and its sha256 once the
        # archive checksum job has stored it: a GET never reads the
        # blobs to compute one.
        build = self.makeBuild()
        transaction.commit()

        def rows():
            return IStore(OCIArchiveChecksum).find(
                OCIArchiveChecksum, build_id=build.id
            )

        data = self.get(self.api(self.buildPath(build))).json()
        base = self.url(self.buildPath(build))
        contents = {}
        for name in ("oci", "docker"):
            url = data[f"{name}_archive_url"]
            self.assertEqual(f"{base}/+archive/{name}", url)
            contents[name] = self.get(url).content
            self.assertEqual(len(contents[name]), data[f"{name}_archive_size"])
            self.assertIsNone(data[f"{name}_archive_sha256"])
        self.assertEqual(0, rows().count())
        # The job (``lp-oci run-jobs``) stores them; the entry says so.
        computed = {
            (done.id, name) for done, name, _ in run_archive_checksum_jobs()
        }
        self.assertEqual(
            set(), {(build.id, "oci"), (build.id, "docker")} - computed
        )
        transaction.commit()
        self.assertEqual(2, rows().count())
        data = self.get(self.api(self.buildPath(build))).json()
        for name in ("oci", "docker"):
            self.assertEqual(
                hashlib.sha256(contents[name]).hexdigest(),
                data[f"{name}_archive_sha256"],
            )
            self.assertEqual(len(contents[name]), data[f"{name}_archive_size"])
        self.assertNotEqual(
            data["oci_archive_sha256"], data["docker_archive_sha256"]
        )
        rows().find(format="oci").one().sha256 = "stored"
        transaction.commit()
        data = self.get(self.api(self.buildPath(build))).json()
        self.assertEqual("stored", data["oci_archive_sha256"])
        self.assertEqual(
            [
                data["oci_archive_url"],
                data["docker_archive_url"],
            ],
            self.get(
                self.api(self.buildPath(build)),
                params={"ws.op": "getFileUrls"},
            ).json()[-2:],
        )

    def test_archive_fields_null_unless_fullybuilt(self):
        pending = self.factory.makeOCIRecipeBuild(owner_name="alice")
        transaction.commit()
        data = self.get(self.api(self.buildPath(pending))).json()
        for name in ("oci", "docker"):
            for field in ("url", "size", "sha256"):
                self.assertIsNone(data[f"{name}_archive_{field}"])

    def serverFiles(self):
        """Every file below the directories the server writes to."""
        found = set()
        for top in (
            WebServiceLayer.directory,
            WebServiceLayer.tmp,
            SQLiteLaunchpadZopelessLayer.root,
        ):
            for dirpath, _, filenames in os.walk(top):
                found.update(os.path.join(dirpath, f) for f in filenames)
        return found

    def test_interrupted_download_leaves_nothing_behind(self):
        # A client closing the connection mid-archive leaves no file
        # behind on the server, which goes on serving.
        build = self.factory.makeOCIRecipeBuild(owner_name="alice")
        self.factory.makeOCILayoutFiles(
            build=build,
            layer_contents=[os.urandom(16 << 20), os.urandom(1 << 20)],
        )
        build.updateStatus(BuildStatus.BUILDING)
        build.updateStatus(BuildStatus.FULLYBUILT)
        transaction.commit()
        before = self.serverFiles()
        url = self.url(self.buildPath(build)) + "/+archive/docker"
        size = (
            getUtility(IOCIArchiveSet)
            .getArchive(build, OCIArchiveFormat.DOCKER)
            .size
        )
        for _ in range(3):
            with requests.get(url, stream=True, timeout=30) as response:
                self.assertEqual(200, response.status_code)
                self.assertEqual(str(size), response.headers["Content-Length"])
                got = 0
                for chunk in response.iter_content(65536):
                    got += len(chunk)
                    if got >= 1 << 20:
                        break
                self.assertLess(got, size)
                # Close the socket itself, not just the response.
                response.raw._fp.fp.raw._sock.shutdown(socket.SHUT_RDWR)
        # The server notices the broken connection and goes on serving.
        response = self.get(url)
        self.assertEqual(200, response.status_code)
        self.assertEqual(size, len(response.content))
        self.assertEqual(
            build.getArchiveChecksum("docker").sha256,
            hashlib.sha256(response.content).hexdigest(),
        )
        transaction.commit()
        self.assertEqual(set(), self.serverFiles() - before)
        self.assertEqual([], os.listdir(WebServiceLayer.tmp))

    def test_archive_of_unfinished_or_private_build(self):
        pending = self.factory.makeOCIRecipeBuild(owner_name="alice")
        transaction.commit()
        url = self.url(self.buildPath(pending)) + "/+archive/oci"
        self.assertEqual(404, self.get(url).status_code)
        private = self.makeBuild(private=True)
        url = self.url(self.buildPath(private)) + "/+archive/oci"
        self.assertEqual(404, self.get(url).status_code)
        self.assertEqual(404, self.get(url, "bob").status_code)
        self.assertEqual(200, self.get(url, "alice").status_code)

    def test_missing_file(self):
        build = self.makeBuild()
        response = self.get(self.url(self.buildPath(build)) + "/+files/nope")
        self.assertEqual(404, response.status_code)


class TestPages(WebServiceTestCase):
    def test_build_page(self):
        build = self.makeBuild()
        response = self.get(self.url(self.buildPath(build)))
        self.assertEqual(200, response.status_code)
        self.assertIn('<dd id="status">Successfully built</dd>', response.text)
        self.assertIn("linux/amd64", response.text)
        self.assertEqual(2, response.text.count('class="transfer">fetched'))
        for url in build.getFileUrls():
            self.assertIn('href="%s"' % url, response.text)

    def test_recipe_page(self):
        build = self.makeBuild()
        response = self.get(self.url(self.recipePath(build.recipe)))
        self.assertEqual(200, response.status_code)
        self.assertIn(self.url(self.buildPath(build)), response.text)


class TestRestfulClient(WebServiceTestCase):
    def test_walk_entries(self):
        build = self.makeBuild()
        private = self.makeBuild(private=True)
        root = ServiceRoot(
            BasicHttpAuthorizer("alice", ACCOUNTS["alice"][0]),
            self.api(""),
        )
        entries = list(root.oci_recipe_builds)
        self.assertEqual(
            [private.id, build.id],
            [int(entry.self_link.rsplit("/", 1)[1]) for entry in entries],
        )
        entry = entries[1]
        self.assertEqual("Successfully built", entry.buildstate)
        self.assertEqual("oci", entry.upload_format)
        self.assertEqual(build.recipe.name, entry.recipe.name)
        self.assertEqual(
            [entry.self_link], [b.self_link for b in entry.recipe.builds]
        )
        self.assertEqual(build.getFileUrls(), entry.getFileUrls())
        self.assertEqual(2, len(entry.images[0]["layers"]))
        anonymous = ServiceRoot(None, self.api(""))
        self.assertEqual(1, len(list(anonymous.oci_recipe_builds)))


LAUNCHPADLIB_SCRIPT = """
import sys

from launchpadlib.launchpad import Launchpad

service_root, build_url = sys.argv[1:]
lp = Launchpad.login_anonymously(
    "a script", service_root, launchpadlib_dir=sys.argv[0] + ".d",
    version="devel",
)
build = lp.load(build_url)
print(build.title)
print(build.buildstate, build.datecreated.year, build.datebuilt.year)
print(build.arch_tag, build.distro_arch_series.architecturetag)
print(build.requester.name, build.builder.name, build.score)
print(build.can_be_retried, build.can_be_cancelled)
print(build.build_log_url is not None, build.upload_log_url)
print(build.registry_upload_status)
for url in build.getFileUrls():
    print(url)
recipe = build.recipe
print(recipe.name, recipe.owner.name, recipe.registrant.name)
print(recipe.image_name, recipe.information_type)
print([rule.image_name for rule in recipe.push_rules])
print([b.self_link == build.self_link for b in recipe.builds])
"""


class TestLaunchpadlibScript(WebServiceTestCase):
    """A script written against Launchpad's devel API runs unchanged."""

    def test_script(self):
        build = self.makeBuild()
        build.setLog(
            self.factory.makeLibraryFileAlias(
                filename="buildlog.txt.gz", content=b"log"
            )
        )
        build.builder = self.factory.makeBuilder(name="bob-builder")
        build.recipe.image_name = "example/app"
        self.factory.makeOCIPushRule(recipe=build.recipe, image_name="app")
        transaction.commit()
        directory = self.useFixture(TempDir()).path
        script = os.path.join(directory, "script.py")
        with open(script, "w") as f:
            f.write(LAUNCHPADLIB_SCRIPT)
        process = subprocess.run(
            [
                sys.executable,
                script,
                self.url("api/"),
                self.api(self.buildPath(build)),
            ],
            env=CHILD_ENV,
            capture_output=True,
            timeout=120,
        )
        self.assertEqual(0, process.returncode, process.stderr)
        lines = process.stdout.decode().splitlines()
        year = build.date_created.year
        self.assertEqual(
            [
                build.title,
                f"Successfully built {year} {year}",
                "amd64 amd64",
                f"{build.requester.name} bob-builder None",
                "False False",
                "True None",
                "Unscheduled",
                *build.getFileUrls(),
                f"{build.recipe.name} alice alice",
                "example/app Public",
                "['app']",
                "[True]",
            ],
            lines,
        )

    def test_names_by_version(self):
        # As Launchpad's IBuildFarmJob: beta has the attribute names,
        # 1.0 and devel the names Launchpad gave them in 1.0.
        build = self.makeBuild()
        beta = self.get(self.api(self.buildPath(build), "beta")).json()
        devel = self.get(self.api(self.buildPath(build), "devel")).json()
        one = self.get(self.api(self.buildPath(build), "1.0")).json()
        for data in (one, devel):
            for name in ("buildstate", "datecreated", "datebuilt"):
                self.assertIn(name, data)
            for name in ("status", "date_created", "date_finished"):
                self.assertNotIn(name, data)
            self.assertIn("build_log_url", data)
        for name in ("status", "date_created", "date_finished", "log_url"):
            self.assertIn(name, beta)
        # date_started and duration only in devel.
        self.assertIn("date_started", devel)
        self.assertNotIn("date_started", one)

    def test_retry_and_cancel(self):
        failed = self.makeBuild()
        failed.updateStatus(
            BuildStatus.FAILEDTOBUILD, force_invalid_transition=True
        )
        pending = self.factory.makeOCIRecipeBuild(owner_name="alice")
        pending.queueBuild()
        transaction.commit()

        def post(build, op, user="alice"):
            # The URL first: reading the build opens a transaction that
            # would hold SQLite's lock against the server's write.
            url = self.api(self.buildPath(build))
            transaction.commit()
            return requests.post(
                url,
                data={"ws.op": op},
                auth=self.auth(user) if user else None,
                timeout=30,
            )

        data = self.get(self.api(self.buildPath(failed))).json()
        self.assertTrue(data["can_be_retried"])
        self.assertFalse(data["can_be_cancelled"])
        self.assertEqual(401, post(failed, "retry", None).status_code)
        self.assertEqual(200, post(failed, "retry").status_code)
        data = self.get(self.api(self.buildPath(failed))).json()
        self.assertEqual("Needs building", data["buildstate"])
        self.assertEqual(2510, data["score"])
        self.assertFalse(data["can_be_retried"])
        response = post(failed, "retry")
        self.assertEqual(400, response.status_code)
        self.assertIn("cannot be retried", response.text)
        data = self.get(self.api(self.buildPath(pending))).json()
        self.assertTrue(data["can_be_cancelled"])
        self.assertEqual(200, post(pending, "cancel").status_code)
        data = self.get(self.api(self.buildPath(pending))).json()
        self.assertEqual("Cancelled build", data["buildstate"])
        self.assertFalse(data["can_be_cancelled"])
