# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The recipe and build pages, rendered by headless Chromium.

Chromium (Debian's ``chromium``) loads the pages from the running
server; the tests check the DOM it rendered and keep screenshots, at a
phone's and a desktop's width, under ``$LP_TEST_OUTPUT`` (by default
``<tmp>/lp-oci-test-output``) and as test details.
"""

import os
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser

import requests
import transaction
from testtools.content import content_from_file

from lp.buildmaster.enums import BuildStatus
from lp.oci.browser.website import human_size
from lp.services.webservice.testing import ACCOUNTS, WebServiceLayer
from lp.testing import TestCaseWithFactory
from ocitypes.testing import tool_missing

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
VOID = frozenset(
    "area base br col embed hr img input link meta source track wbr".split()
)


class Element:
    def __init__(self, tag, attrs, parent):
        self.tag = tag
        self.attrs = dict(attrs)
        self.parent = parent
        self.children = []
        self.texts = []

    @property
    def text(self):
        parts = []

        def walk(element):
            parts.extend(element.texts)
            for child in element.children:
                walk(child)

        walk(self)
        return "".join(parts).strip()

    def iter(self):
        yield self
        for child in self.children:
            yield from child.iter()

    def find(self, tag=None, id=None, cls=None):
        return [
            e
            for e in self.iter()
            if (tag is None or e.tag == tag)
            and (id is None or e.attrs.get("id") == id)
            and (cls is None or cls in (e.attrs.get("class") or "").split())
        ]


class DOMBuilder(HTMLParser):
    """A tree of `Element`s from the DOM Chromium serialised."""

    def __init__(self):
        super().__init__()
        self.root = self.current = Element("#document", (), None)

    def handle_starttag(self, tag, attrs):
        element = Element(tag, attrs, self.current)
        self.current.children.append(element)
        if tag not in VOID:
            self.current = element

    def handle_endtag(self, tag):
        element = self.current
        while element is not None and element.tag != tag:
            element = element.parent
        if element is not None and element.parent is not None:
            self.current = element.parent

    def handle_data(self, data):
        self.current.texts.append(data)


class ChromiumTestCase(TestCaseWithFactory):
    layer = WebServiceLayer

    def setUp(self):
        super().setUp()
        if CHROMIUM is None:
            tool_missing(
                self, "chromium is not installed (apt-get install chromium)"
            )
        self.profile = tempfile.mkdtemp(prefix="lp-chromium-")
        self.addCleanup(shutil.rmtree, self.profile, ignore_errors=True)

    def chromium(self, *args):
        # Chromium runs as root only without its sandbox.
        return subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                f"--user-data-dir={self.profile}",
                *args,
            ],
            capture_output=True,
            timeout=60,
            check=True,
        )

    def render(self, url):
        """The DOM Chromium renders for ``url``."""
        transaction.commit()
        dom = self.chromium("--dump-dom", url).stdout.decode()
        builder = DOMBuilder()
        builder.feed(dom)
        return builder.root

    def screenshot(self, url, name):
        output = os.environ.get("LP_TEST_OUTPUT") or os.path.join(
            tempfile.gettempdir(), "lp-oci-test-output"
        )
        os.makedirs(output, exist_ok=True)
        for label, size in (("phone", "412,915"), ("desktop", "1280,900")):
            path = os.path.join(output, f"{self.id()}-{name}-{label}.png")
            self.chromium(f"--screenshot={path}", f"--window-size={size}", url)
            self.assertGreater(os.path.getsize(path), 1000)
            self.addDetail(
                f"screenshot-{name}-{label}",
                content_from_file(path, buffer_now=True),
            )

    def makeBuild(self, **kwargs):
        build = self.factory.makeOCIRecipeBuild(owner_name="alice", **kwargs)
        self.factory.makeOCILayoutFiles(build=build)
        build.updateStatus(BuildStatus.BUILDING)
        build.updateStatus(BuildStatus.FULLYBUILT)
        transaction.commit()
        return build


class TestOCIRecipeBuildPages(ChromiumTestCase):
    def test_build_page(self):
        build = self.makeBuild()
        url = WebServiceLayer.root_url + "~alice/+oci-recipe/%s/+build/%d" % (
            build.recipe.name,
            build.id,
        )
        file_urls = build.getFileUrls()
        layers = build.layers
        [(manifest_digest, manifest)] = build.image_manifests
        dom = self.render(url)
        [title] = dom.find("h1")
        self.assertEqual(build.title, title.text)
        [status] = dom.find(id="status")
        self.assertEqual("Successfully built", status.text)
        [upload] = dom.find(id="registry-upload-status")
        self.assertEqual("Unscheduled", upload.text)
        [image] = dom.find(cls="image")
        [platform] = image.find(cls="platform")
        self.assertEqual("linux/amd64", platform.text)
        self.assertIn(str(manifest_digest), image.text)
        self.assertIn(manifest["config"]["digest"], image.text)
        rows = image.find(cls="layer")
        self.assertEqual(
            [
                (str(layer.digest), human_size(layer.size), "fetched")
                for layer in layers
            ],
            [tuple(cell.text for cell in row.find("td")) for row in rows],
        )
        [files] = dom.find(id="files")
        self.assertEqual(
            sorted(file_urls[:-2]),
            sorted(a.attrs["href"] for a in files.find("a")),
        )
        # The two generated archives follow the files in getFileUrls.
        [archives] = dom.find(id="archives")
        self.assertEqual(
            [build.oci_archive_url, build.docker_archive_url],
            file_urls[-2:],
        )
        self.assertEqual(
            file_urls[-2:], [a.attrs["href"] for a in archives.find("a")]
        )
        self.screenshot(url, "build")

    def test_recipe_page_lists_builds(self):
        build = self.makeBuild()
        recipe_url = WebServiceLayer.root_url + "~alice/+oci-recipe/%s" % (
            build.recipe.name
        )
        build_url = recipe_url + "/+build/%d" % build.id
        dom = self.render(recipe_url)
        [table] = dom.find(id="builds")
        self.assertEqual(
            [build_url], [a.attrs["href"] for a in table.find("a")]
        )
        self.assertEqual(
            ["Successfully built"],
            [td.text for td in table.find(cls="status")],
        )
        self.screenshot(recipe_url, "recipe")

    def test_private_build_page(self):
        build = self.makeBuild(private=True)
        url = WebServiceLayer.root_url + "~alice/+oci-recipe/%s/+build/%d" % (
            build.recipe.name,
            build.id,
        )
        dom = self.render(url)
        self.assertEqual([], dom.find(id="status"))
        self.assertIn("Not found", dom.text)


class TestMorePages(ChromiumTestCase):
    def url(self, path=""):
        return WebServiceLayer.root_url + path

    def buildUrl(self, build):
        return self.url(
            "~alice/+oci-recipe/%s/+build/%d" % (build.recipe.name, build.id)
        )

    def test_front_page(self):
        build = self.makeBuild()
        dom = self.render(self.url())
        [recipes] = dom.find(id="recipes")
        self.assertIn(
            self.url("~alice/+oci-recipe/%s" % build.recipe.name),
            [a.attrs["href"] for a in recipes.find("a")],
        )
        [recent] = dom.find(id="recent-builds")
        self.assertIn(
            self.buildUrl(build), [a.attrs["href"] for a in recent.find("a")]
        )
        self.screenshot(self.url(), "front")

    def test_not_found_is_a_page(self):
        transaction.commit()
        for path in (
            "nope",
            "~alice/+oci-recipe/nope",
            "~x/+oci-recipe/y/+build/9",
        ):
            response = requests.get(self.url(path), timeout=30)
            self.assertEqual(404, response.status_code)
            self.assertTrue(
                response.headers["Content-Type"].startswith("text/html")
            )
        dom = self.render(self.url("nope"))
        [title] = dom.find("h1")
        self.assertEqual("Not found", title.text)
        self.screenshot(self.url("nope"), "not-found")

    def test_failed_build_says_why(self):
        build = self.factory.makeOCIRecipeBuild(owner_name="alice")
        build.updateStatus(BuildStatus.BUILDING)
        build.setLog(
            self.factory.makeLibraryFileAlias(
                filename="buildlog.txt.gz", content=b"x" * 2048
            )
        )
        build.storeUploadLog("Layer sha256:abc is missing\n")
        build.failure_reason = "Layer sha256:abc is missing"
        build.updateStatus(BuildStatus.FAILEDTOUPLOAD)
        transaction.commit()
        dom = self.render(self.buildUrl(build))
        [reason] = dom.find(id="failure-reason")
        self.assertIn("Layer sha256:abc is missing", reason.text)
        [log] = dom.find(id="build-log")
        self.assertEqual(
            [build.log_url], [a.attrs["href"] for a in log.find("a")]
        )
        self.assertIn("2.0 kB", log.text)
        [upload_log] = dom.find(id="upload-log")
        self.assertEqual(
            [build.upload_log_url],
            [a.attrs["href"] for a in upload_log.find("a")],
        )
        self.assertIn("bytes", upload_log.text)
        # No empty rows: nothing for what a failed build lacks.
        self.assertEqual([], dom.find(id="archives"))
        for dd in dom.find("dd"):
            self.assertNotEqual("", dd.text)
        # The entry says it too.
        data = requests.get(
            self.url(
                "api/devel/~alice/+oci-recipe/%s/+build/%d"
                % (build.recipe.name, build.id)
            ),
            timeout=30,
        ).json()
        self.assertEqual("Layer sha256:abc is missing", data["failure_reason"])
        self.screenshot(self.buildUrl(build), "failed")

    def test_pushed_build_says_where(self):
        build = self.makeBuild()
        rule = self.factory.makeOCIPushRule(
            recipe=build.recipe,
            registry_credentials=self.factory.makeOCIRegistryCredentials(
                url="http://registry.example:5000"
            ),
            image_name="team/app",
        )
        job = build.scheduleRegistryUpload()
        job.job.start()
        digest = "sha256:" + "ab" * 32
        job.manifest_list_digests = {
            str(rule.id): {"edge": digest, "v1": digest}
        }
        job.job.complete()
        transaction.commit()
        dom = self.render(self.buildUrl(build))
        [result] = dom.find(id="registry-result")
        self.assertIn("registry.example:5000", result.text)
        self.assertIn("team/app", result.text)
        self.assertIn("edge, v1", result.text)
        [pull] = result.find(cls="pull")
        self.assertEqual(
            f"docker pull registry.example:5000/team/app@{digest}", pull.text
        )
        # The recipe page groups builds by upload status.
        dom = self.render(
            self.url("~alice/+oci-recipe/%s" % build.recipe.name)
        )
        [rules] = dom.find(id="push-rules")
        self.assertIn("team/app", rules.text)
        [builds] = dom.find(id="builds")
        self.assertEqual(["Uploaded"], [h.text for h in builds.find("h3")])
        self.screenshot(self.buildUrl(build), "pushed")

    def test_owner_upload_form(self):
        build = self.makeBuild()
        self.factory.makeOCIPushRule(recipe=build.recipe)
        transaction.commit()
        url = self.buildUrl(build)
        # Anonymous users get no form; the owner does.
        self.assertEqual([], self.render(url).find(id="upload-form"))
        response = requests.get(
            url, auth=("alice", ACCOUNTS["alice"][0]), timeout=30
        )
        self.assertIn('value="Upload this build to registries"', response.text)
        owner_url = url.replace(
            "http://", "http://alice:%s@" % ACCOUNTS["alice"][0]
        )
        self.screenshot(owner_url, "owner")
        # A form post from another site is refused; from the page, done.
        auth = ("alice", ACCOUNTS["alice"][0])
        data = {"field.actions.upload": "Upload this build to registries"}
        transaction.commit()
        response = requests.post(
            url,
            data=data,
            auth=auth,
            headers={"Referer": "http://evil.example/"},
            timeout=30,
        )
        self.assertEqual(403, response.status_code)
        response = requests.post(
            url,
            data=data,
            auth=("bob", ACCOUNTS["bob"][0]),
            headers={"Referer": url},
            timeout=30,
        )
        self.assertEqual(404, response.status_code)
        response = requests.post(
            url, data=data, auth=auth, headers={"Referer": url}, timeout=30
        )
        self.assertEqual(200, response.status_code)
        self.assertIn("An upload has been scheduled", response.text)
        self.assertIn('id="registry-upload-status">Pending<', response.text)
