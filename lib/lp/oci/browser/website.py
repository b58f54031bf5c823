# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The website's OCI URLs: recipe and build pages, and build files.

``~<owner>/+oci-recipe/<name>``, ``<recipe>/+build/<id>`` and
``<build>/+files/<filename>`` (the URLs `getFileUrls` hands out), and
``<build>/+archive/oci`` or ``/docker``: a FULLYBUILT build's images as
one archive (`IOCIArchiveSet`), with ranges too.  What
the user may not see is 404.  Files are streamed from the librarian
with Content-Length, the content's sha256 digest as ETag and single byte
ranges, as downloads (``Content-Disposition: attachment``,
``X-Content-Type-Options: nosniff``) of a type this module chooses
(`safe_content_type`): no header is built from what a build uploaded.
"""

__all__ = [
    "safe_content_type",
    "website",
]

import hashlib
import re
from html import escape
from urllib.parse import unquote

import transaction
from zope.component import getUtility

from lp.app.errors import NotFoundError
from lp.buildmaster.enums import BuildStatus
from lp.oci.enums import OCIFileKind
from lp.oci.interfaces.ocirecipe import IOCIRecipeSet
from lp.oci.interfaces.ocirecipebuild import IOCIRecipeBuildSet
from lp.oci.security import can_view
from lp.services.librarian.storage import get_librarian_storage
from lp.services.webapp.guards import parse_database_id
from lp.services.webapp.publisher import canonical_url
from lp.services.webservice.publication import ENVIRON_USER_KEY
from ocitypes.descriptor import MediaType

CHUNK_SIZE = 1 << 20

_PATH = re.compile(
    r"^/~(?P<owner>[^/]+)/\+oci-recipe/(?P<name>[^/]+)"
    r"(?:/\+build/(?P<build>[^/]+)"
    r"(?:/\+files/(?P<filename>[^/]+)|/\+archive/(?P<archive>oci|docker))?"
    r")?/?$"
)
_RANGE = re.compile(r"^bytes=(?P<start>[0-9]*)-(?P<end>[0-9]*)$")
_SAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]")
# The JSON documents a build's files may be served as: upload processing
# parsed and checked each of them (`lp.oci.model.ocilayout`).
_DOCUMENT_TYPES = {
    OCIFileKind.INDEX: frozenset(MediaType.INDEXES),
    OCIFileKind.MANIFEST: frozenset(MediaType.MANIFESTS),
    OCIFileKind.CONFIG: frozenset(
        {MediaType.OCI_CONFIG, MediaType.DOCKER_CONFIG}
    ),
}
OCTET_STREAM = "application/octet-stream"


def safe_content_type(oci_file):
    """The Content-Type to serve a build's file with.

    The media type the upload declared for a document the project has
    verified (an index, a manifest or a config), if it is one of the
    types such a document has; else ``application/octet-stream``.  Never
    a type only the upload vouches for: a config declared ``text/html``
    would be a page of this site.

    :param oci_file: the file's `IOCIFile`, or None.
    """
    if oci_file is None:
        return OCTET_STREAM
    if oci_file.media_type in _DOCUMENT_TYPES.get(oci_file.kind, ()):
        return oci_file.media_type
    return OCTET_STREAM


def _attachment(filename):
    """A Content-Disposition header value: a download named ``filename``."""
    return 'attachment; filename="%s"' % _SAFE_FILENAME.sub("_", filename)


def _respond(start_response, status, body, content_type="text/plain"):
    if isinstance(body, str):
        body = body.encode("utf-8")
        content_type += "; charset=utf-8"
    start_response(
        status,
        [("Content-Type", content_type), ("Content-Length", str(len(body)))],
    )
    return [body]


def _not_found(start_response):
    return _respond(start_response, "404 Not Found", "Not found.\n")


def _stream(f, start, length):
    with f:
        f.seek(start)
        while length:
            data = f.read(min(CHUNK_SIZE, length))
            if not data:
                break
            length -= len(data)
            yield data


def _ranged_response(environ, start_response, size, headers):
    """Start a response to a GET or HEAD of ``size`` bytes.

    ``headers`` hold the ETag among others.  Handles If-None-Match and
    a single byte range (with If-Range).

    :return: (start, length) of the bytes to send, or None if there are
        none to send.
    """
    etag = dict(headers)["ETag"]
    if environ.get("HTTP_IF_NONE_MATCH") in (etag, "*"):
        start_response("304 Not Modified", headers)
        return None
    start, length, status = 0, size, "200 OK"
    match = _RANGE.match(environ.get("HTTP_RANGE", "").strip())
    if_range = environ.get("HTTP_IF_RANGE")
    if match and (if_range is None or if_range == etag):
        first, last = match.group("start"), match.group("end")
        if first:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
        elif last:
            start = max(size - int(last), 0)
            end = size - 1
        else:
            start, end = 0, -1
        if start >= size or end < start:
            start_response(
                "416 Range Not Satisfiable",
                headers
                + [
                    ("Content-Range", f"bytes */{size}"),
                    ("Content-Length", "0"),
                ],
            )
            return None
        length = end - start + 1
        status = "206 Partial Content"
        headers = headers + [("Content-Range", f"bytes {start}-{end}/{size}")]
    start_response(status, headers + [("Content-Length", str(length))])
    if environ.get("REQUEST_METHOD") == "HEAD":
        return None
    return start, length


def _serve_archive(environ, start_response, build, format_name):
    """The build's images as one OCI or Docker archive tar."""
    # Circular import.
    from lp.oci.interfaces.ociarchive import (
        CannotExportOCIArchive,
        IOCIArchiveSet,
        OCIArchiveError,
        OCIArchiveFormat,
    )

    format = OCIArchiveFormat.items[format_name.upper()]
    try:
        archive = getUtility(IOCIArchiveSet).getArchive(build, format)
    except (CannotExportOCIArchive, OCIArchiveError):
        return _not_found(start_response)
    # The archive is a function of its members, which are named by
    # their digests, and of the images (index.json, manifest.json).
    identity = hashlib.sha256()
    for part in [format.name, str(archive.size), *archive.member_names]:
        identity.update(part.encode() + b"\n")
    for image in archive.images:
        identity.update(
            repr((str(image.manifest.digest), image.names)).encode()
        )
    headers = [
        ("Content-Type", archive.content_type),
        ("ETag", f'"{identity.hexdigest()}"'),
        ("Accept-Ranges", "bytes"),
        ("Content-Disposition", _attachment(archive.filename)),
    ]
    response = _ranged_response(environ, start_response, archive.size, headers)
    if response is None:
        return []
    start, length = response
    return _ending_transaction(archive.iterBytes(start, start + length))


def _ending_transaction(chunks):
    """Yield ``chunks``, then end the read transaction they needed."""
    try:
        yield from chunks
    finally:
        transaction.abort()


def _serve_file(environ, start_response, build, filename):
    try:
        lfa = build.getFileByName(filename)
    except NotFoundError:
        return _not_found(start_response)
    content = lfa.content
    if content is None:
        return _not_found(start_response)
    oci_file = None
    for candidate, file_lfa, _ in build.getFiles():
        if file_lfa.id == lfa.id:
            oci_file = candidate
            break
    size = content.filesize
    etag = f'"sha256:{content.sha256}"'
    try:
        # Never a link out of the librarian.
        f = get_librarian_storage().open(content.sha256)
    except OSError:
        return _not_found(start_response)
    headers = [
        ("Content-Type", safe_content_type(oci_file)),
        ("ETag", etag),
        ("Accept-Ranges", "bytes"),
        ("Content-Disposition", _attachment(filename)),
        ("X-Content-Type-Options", "nosniff"),
    ]
    response = _ranged_response(environ, start_response, size, headers)
    if response is None:
        f.close()
        return []
    start, length = response
    wrapper = environ.get("wsgi.file_wrapper")
    if wrapper is not None and start + length == size:
        # To the end of the file: the server may send it with
        # sendfile(2) (gunicorn does, for its Content-Length from here).
        f.seek(start)
        return wrapper(f, CHUNK_SIZE)
    return _stream(f, start, length)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 1em; max-width: 60em; }}
table {{ border-collapse: collapse; display: block; overflow-x: auto; }}
td, th {{ border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; }}
code, #files a {{ word-break: break-all; }}
</style></head>
<body><h1>{title}</h1>
{body}
</body></html>
"""


def _page(start_response, title, body):
    html = _PAGE.format(title=escape(title), body=body)
    return _respond(start_response, "200 OK", html, "text/html")


def _recipe_page(start_response, recipe):
    rows = "".join(
        f'<tr><td><a href="{escape(canonical_url(build))}">'
        f"{escape(build.title)}</a></td>"
        f'<td class="status">{escape(build.status.title)}</td>'
        f"<td>{escape(str(build.date_created))}</td></tr>"
        for build in recipe.builds
    )
    body = (
        f"<p>Owner: {escape(recipe.owner_name)}</p>"
        f"<p>{escape(recipe.description or '')}</p>"
        f'<h2>Builds</h2><table id="builds"><tr><th>Build</th>'
        f"<th>Status</th><th>Created</th></tr>{rows}</table>"
    )
    return _page(start_response, f"OCI recipe {recipe.name}", body)


def _dd(value):
    return escape("" if value is None else str(value))


def _build_page(start_response, build):
    images = []
    for image in build.images:
        layers = "".join(
            f'<tr class="layer"><td><code>{_dd(layer["digest"])}</code></td>'
            f'<td>{_dd(layer["size"])}</td>'
            f'<td class="transfer">{_dd(layer["transfer"])}</td></tr>'
            for layer in image["layers"]
        )
        images.append(
            f'<section class="image"><h3 class="platform">'
            f'{_dd(image["platform"])}</h3>'
            f'<p>Manifest: <code>{_dd(image["manifest_digest"])}</code></p>'
            f'<p>Config: <code>{_dd(image["config_digest"])}</code></p>'
            f'<p>Names: {_dd(", ".join(image["names"]))}</p>'
            f"<table><tr><th>Layer</th><th>Size</th><th>Transfer</th></tr>"
            f"{layers}</table></section>"
        )
    errors = "".join(
        f"<li>{_dd(error)}</li>" for error in build.registry_upload_errors
    )
    files = "".join(
        f'<li><a href="{escape(url)}">{escape(url.rsplit("/", 1)[-1])}</a></li>'
        for url in build.getFileUrls()
        if url and "/+files/" in url
    )
    archives = ""
    if build.oci_archive_url is not None:
        archives = (
            f'<h2>Archives</h2><ul id="archives">'
            f'<li><a href="{escape(build.oci_archive_url)}">OCI archive</a>'
            f"</li>"
            f'<li><a href="{escape(build.docker_archive_url)}">Docker '
            f"archive (docker load)</a></li></ul>"
        )
    body = (
        f'<p>Recipe: <a href="{escape(canonical_url(build.recipe))}">'
        f"{escape(build.recipe.name)}</a></p>"
        f'<dl><dt>Status</dt><dd id="status">{_dd(build.status.title)}</dd>'
        f"<dt>Created</dt><dd>{_dd(build.date_created)}</dd>"
        f"<dt>Started</dt><dd>{_dd(build.date_started)}</dd>"
        f"<dt>Finished</dt><dd>{_dd(build.date_finished)}</dd>"
        f"<dt>Upload format</dt><dd>{_dd(build.upload_format)}</dd>"
        f'<dt>Registry upload</dt><dd id="registry-upload-status">'
        f"{_dd(build.registry_upload_status.title)}</dd>"
        f"<dt>Registry upload error</dt>"
        f"<dd>{_dd(build.registry_upload_error_summary)}</dd></dl>"
        f'<ul id="registry-upload-errors">{errors}</ul>'
        f'<h2>Images</h2>{"".join(images)}'
        f'<h2>Files</h2><ul id="files">{files}</ul>'
        f"{archives}"
    )
    return _page(start_response, build.title, body)


def website(environ, start_response):
    """The WSGI application of the OCI pages and files."""
    match = _PATH.match(environ.get("PATH_INFO") or "/")
    if match is None or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        return _not_found(start_response)
    user = environ.get(ENVIRON_USER_KEY)
    try:
        recipe = getUtility(IOCIRecipeSet).getByName(
            unquote(match.group("owner")), unquote(match.group("name"))
        )
        if recipe is None or not can_view(recipe, user):
            return _not_found(start_response)
        if match.group("build") is None:
            return _recipe_page(start_response, recipe)
        build_id = parse_database_id(match.group("build"))
        build = (
            None
            if build_id is None
            else getUtility(IOCIRecipeBuildSet).getByID(build_id)
        )
        if (
            build is None
            or build.recipe_id != recipe.id
            or not can_view(build, user)
        ):
            return _not_found(start_response)
        if match.group("archive") is not None:
            return _serve_archive(
                environ, start_response, build, match.group("archive")
            )
        if match.group("filename") is None:
            return _build_page(start_response, build)
        return _serve_file(
            environ, start_response, build, unquote(match.group("filename"))
        )
    finally:
        transaction.abort()
