# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Hostile requests to ``lp-oci serve``, over real sockets to gunicorn.

Whatever a client sends, the answer is a 4xx with one line, never a 500,
and no header of any answer is built from what an archive said.
"""

import base64
import os
import re
import socket

import requests
import transaction
from fixtures import TempDir

from lp.buildmaster.enums import BuildStatus
from lp.oci.enums import OCIFileKind
from lp.services.librarian.storage import get_librarian_storage
from lp.services.webservice.testing import ACCOUNTS, WebServiceLayer
from lp.services.webservice.tests.test_webservice import WebServiceTestCase
from ocitypes.digest import Digest


def raw_request(request, timeout=30):
    """Send ``request`` (bytes) to the server; (status, headers, body)."""
    port = int(WebServiceLayer.root_url.rsplit(":", 1)[1].strip("/"))
    with socket.create_connection(("127.0.0.1", port), timeout) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode("latin-1")] = value.strip()
    return status, headers, body


class HostileRequestTestCase(WebServiceTestCase):
    def request(self, method, url, **kwargs):
        transaction.commit()
        return requests.request(method, url, timeout=30, **kwargs)

    def assertOneLine4xx(self, response, status=None):
        self.assertTrue(
            400 <= response.status_code < 500,
            f"{response.status_code}: {response.text[:500]}",
        )
        if status is not None:
            self.assertEqual(status, response.status_code)
        self.assertNotIn("Traceback", response.text)
        if response.headers.get("Content-Type", "").startswith("text/html"):
            # Pages answer browsers with the site's own HTML 404 page,
            # which says the one thing there is to say.
            self.assertIn(
                "There is no such page, or you may not see it.", response.text
            )
        else:
            self.assertLessEqual(len(response.text.strip().splitlines()), 1)


class TestNoServerErrors(HostileRequestTestCase):
    def test_non_ascii_basic_credentials(self):
        # Before: base64 of a non-ASCII str raised ValueError, a 500.
        for value in (
            "Basic \xff\xfe".encode("latin-1"),
            b"Basic " + base64.b64encode("\xe9t\xe9:x".encode("latin-1")),
            b"Basic " + base64.b64encode(b"\xff:\xff"),
        ):
            status, headers, body = raw_request(
                b"GET /api/devel/ HTTP/1.1\r\nHost: x\r\n"
                b"Authorization: " + value + b"\r\nConnection: close\r\n\r\n"
            )
            self.assertEqual(401, status, body[:300])
            self.assertNotIn(b"Traceback", body)

    def test_batch_parameters_out_of_range(self):
        # Before: ws.start=-1 on a recipe's builds raised IntegrityError
        # (a negative OFFSET), and huge values overflowed.
        build = self.makeBuild()
        for collection in (
            self.recipePath(build.recipe) + "/builds",
            "oci_recipe_builds",
        ):
            for query in (
                "ws.start=-1",
                "ws.size=-1",
                "ws.size=0",
                "ws.start=%d" % 2**63,
                "ws.size=%d" % 2**63,
                "ws.start=99999999999999999999999999",
                "ws.start=abc",
                "ws.size=1e3",
                "ws.start=%EF%BC%91",
            ):
                with self.subTest(collection=collection, query=query):
                    response = self.request(
                        "GET", self.api(collection) + "?" + query
                    )
                    self.assertOneLine4xx(response, 400)
            # Sound values still work.
            response = self.request(
                "GET", self.api(collection) + "?ws.start=0&ws.size=1"
            )
            self.assertEqual(200, response.status_code)

    def test_huge_ids(self):
        # Before: an id over 2^63 - 1 overflowed the database driver.
        build = self.makeBuild()
        recipe_path = self.recipePath(build.recipe)
        for build_id in (
            str(2**63),
            str(2**63 - 1),
            "9" * 40,
            "0",
            "00000000000000000000001",
        ):
            for url in (
                self.api(f"{recipe_path}/+build/{build_id}"),
                self.url(f"{recipe_path}/+build/{build_id}"),
                self.url(f"{recipe_path}/+build/{build_id}/+files/x"),
                self.url(f"{recipe_path}/+build/{build_id}/+archive/oci"),
            ):
                with self.subTest(url=url):
                    response = self.request("GET", url)
                    self.assertOneLine4xx(response, 404)

    def test_path_not_utf8(self):
        build = self.makeBuild()
        for path in (
            b"/api/devel/%FF",
            b"/api/devel/~%C3%28/+oci-recipe/x",
            b"/api/devel/\xff\xfe",
            b"/~%FF/+oci-recipe/x",
            b"/~alice/+oci-recipe/\xc3\x28",
            ("/" + self.buildPath(build) + "/+files/%FF").encode(),
            b"/api/devel/oci_recipe_builds?ws.start=%FF",
        ):
            with self.subTest(path=path):
                status, headers, body = raw_request(
                    b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n"
                    b"Connection: close\r\n\r\n"
                )
                self.assertEqual(400, status, body[:300])
                self.assertNotIn(b"Traceback", body)
                self.assertLessEqual(
                    len(body.strip().splitlines()), 1, body[:300]
                )

    def test_deeply_nested_json_body(self):
        # Before: lazr.restful's json.loads raised RecursionError, a 500.
        build = self.makeBuild()
        for body in (
            b"[" * 100000 + b"]" * 100000,
            b'{"description": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            b"[" * 100000,
        ):
            for method, path in (
                ("PATCH", self.recipePath(build.recipe)),
                ("POST", self.buildPath(build)),
            ):
                with self.subTest(method=method, size=len(body)):
                    response = self.request(
                        method,
                        self.api(path),
                        data=body,
                        auth=("alice", ACCOUNTS["alice"][0]),
                        headers={"Content-Type": "application/json"},
                    )
                    self.assertOneLine4xx(response, 400)

    def test_body_over_the_cap_refused_before_it_is_read(self):
        # A client announcing 250 MB is refused at once, having sent
        # only its headers: the server does not wait for the body
        # (before, a 250 MB PATCH grew a worker by over 500 MB).
        build = self.makeBuild()
        status, headers, body = raw_request(
            b"PATCH /api/devel/"
            + self.recipePath(build.recipe).encode()
            + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 250000000\r\nConnection: close\r\n\r\n",
            timeout=10,
        )
        self.assertEqual(413, status, body[:300])
        self.assertLessEqual(len(body.strip().splitlines()), 1)
        # Chunked, without a length: refused once past the cap.
        chunk = b"x" * 65536
        chunked = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 40
        status, headers, body = raw_request(
            b"PATCH /api/devel/"
            + self.recipePath(build.recipe).encode()
            + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            + chunked
            + b"0\r\n\r\n"
        )
        self.assertEqual(413, status, body[:300])

    def test_sound_bodies_still_reach_the_web_service(self):
        # A body within the bounds is read by lazr.restful as before
        # (which checks its fields).
        build = self.makeBuild()
        response = self.request(
            "PATCH",
            self.api(self.recipePath(build.recipe)),
            json={"description": [[["a"]]] * 10},
            auth=("alice", ACCOUNTS["alice"][0]),
        )
        self.assertEqual(400, response.status_code, response.text)
        self.assertIn("description: got 'list'", response.text)


class TestServedHeaders(HostileRequestTestCase):
    def makeHostileBuild(self, media_type):
        """A build whose config was recorded with ``media_type``."""
        build = self.factory.makeOCIRecipeBuild(owner_name="alice")
        content = b"<script>alert(document.cookie)</script>"
        lfa = self.factory.makeLibraryFileAlias(
            filename="config", content=content, content_type=media_type
        )
        build.addFile(
            lfa,
            layer_file_digest=Digest.of_bytes(content),
            media_type=media_type,
            kind=OCIFileKind.CONFIG,
        )
        build.updateStatus(BuildStatus.BUILDING)
        build.updateStatus(BuildStatus.FULLYBUILT)
        transaction.commit()
        return build

    def test_stored_media_type_is_never_a_header(self):
        # Before: a config declared text/html was served as an HTML page
        # from the site's origin (stored script).
        for media_type in (
            "text/html",
            "image/svg+xml",
            "application/vnd.oci.image.config.v1+json\r\nX-Injected: 1",
        ):
            build = self.makeHostileBuild(media_type)
            for method in ("GET", "HEAD"):
                with self.subTest(media_type=media_type, method=method):
                    response = self.request(
                        method,
                        self.url(self.buildPath(build) + "/+files/config"),
                    )
                    self.assertEqual(200, response.status_code)
                    self.assertEqual(
                        "application/octet-stream",
                        response.headers["Content-Type"],
                    )
                    self.assertEqual(
                        "nosniff", response.headers["X-Content-Type-Options"]
                    )
                    self.assertTrue(
                        response.headers["Content-Disposition"].startswith(
                            "attachment"
                        )
                    )
                    self.assertNotIn("X-Injected", response.headers)

    def test_verified_documents_keep_their_json_type(self):
        build = self.makeBuild()
        for oci_file, lfa, _ in build.getFiles():
            response = self.request(
                "GET",
                self.url(self.buildPath(build) + "/+files/" + lfa.filename),
            )
            self.assertEqual(200, response.status_code)
            if oci_file.kind == OCIFileKind.LAYER:
                expected = "application/octet-stream"
            else:
                expected = oci_file.media_type
            self.assertEqual(expected, response.headers["Content-Type"])
            self.assertEqual(
                "nosniff", response.headers["X-Content-Type-Options"]
            )
            self.assertTrue(
                response.headers["Content-Disposition"].startswith(
                    "attachment"
                )
            )

    def test_no_link_followed_out_of_the_librarian(self):
        # A link in the librarian, even to the right bytes, is not
        # served: the file server opens without following links.
        build = self.makeBuild()
        layer = build.layers[0]
        storage = get_librarian_storage()
        path = storage.getPath(layer.library_file.content.sha256)
        outside = os.path.join(self.useFixture(TempDir()).path, "secret")
        os.rename(path, outside)
        os.symlink(outside, path)
        url = self.url(
            self.buildPath(build) + "/+files/" + layer.library_file.filename
        )
        for method in ("GET", "HEAD"):
            response = self.request(method, url)
            self.assertEqual(404, response.status_code)

    def test_archive_headers(self):
        build = self.makeBuild()
        response = self.request(
            "HEAD", self.url(self.buildPath(build) + "/+archive/oci")
        )
        self.assertEqual(200, response.status_code)
        self.assertEqual("nosniff", response.headers["X-Content-Type-Options"])
        self.assertRegex(
            response.headers["Content-Disposition"],
            r'\Aattachment; filename="[A-Za-z0-9._-]+"\Z',
        )

    def test_xhtml_entry_escapes_links(self):
        # Names print in links: a recipe named with markup must not
        # inject it into the XHTML form of its entries.
        markup = '"><img src=x onerror=alert(1)>'
        build = self.factory.makeOCIRecipeBuild(
            owner_name="alice", name="r" + markup
        )
        build.updateStatus(BuildStatus.BUILDING)
        build.updateStatus(BuildStatus.FULLYBUILT)
        transaction.commit()
        path = "~alice/+oci-recipe/%s" % requests.utils.quote(
            build.recipe.name, safe=""
        )
        for entry in (path, path + "/+build/%d" % build.id):
            response = self.request(
                "GET",
                self.api(entry),
                headers={"Accept": "application/xhtml+xml"},
            )
            self.assertEqual(200, response.status_code, response.text)
            self.assertNotIn("<img", response.text)
            self.assertIsNone(re.search(r'href="[^"]*"[^ >]', response.text))
