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
from urllib.parse import quote, unquote, urlsplit

import transaction
from zope.component import getUtility

from lp.app.errors import NotFoundError
from lp.buildmaster.enums import BuildStatus
from lp.oci.enums import OCIFileKind
from lp.oci.interfaces.ocirecipe import IOCIRecipeSet
from lp.oci.interfaces.ocirecipebuild import (
    CannotScheduleRegistryUpload,
    IOCIRecipeBuildSet,
)
from lp.oci.security import can_edit, can_view
from lp.services.librarian.storage import get_librarian_storage
from lp.services.webapp.guards import parse_database_id
from lp.services.webapp.publisher import (
    canonical_path,
    canonical_url,
    root_url,
)
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
code, #files a, .digest {{ word-break: break-all; }}
dt {{ font-weight: bold; }}
.failure {{ border-left: 4px solid #c00; padding-left: 0.5em; }}
nav {{ margin-bottom: 1em; }}
</style></head>
<body><nav><a href="{root}">OCI builds</a></nav><h1>{title}</h1>
{body}
</body></html>
"""


def _page(start_response, title, body, status="200 OK"):
    html = _PAGE.format(
        title=escape(title), body=body, root=escape(root_url())
    )
    return _respond(start_response, status, html, "text/html")


def _html_not_found(start_response):
    return _page(
        start_response,
        "Not found",
        "<p>There is no such page, or you may not see it.</p>",
        "404 Not Found",
    )


def human_size(size):
    """``1.2 MB`` (decimal units, as ``lp-oci`` prints), or ``512 bytes``."""
    if size is None:
        return ""
    if size < 1000:
        return f"{size} bytes"
    for unit in ("kB", "MB", "GB", "TB"):
        size /= 1000
        if size < 1000 or unit == "TB":
            return f"{size:.1f} {unit}"


def human_date(date):
    return "" if date is None else date.strftime("%Y-%m-%d %H:%M:%S UTC")


def human_duration(duration):
    if duration is None:
        return ""
    seconds = duration.total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {seconds} s"


def _dd(value):
    return escape("" if value is None else str(value))


def _rows(pairs):
    """``<dt>/<dd>`` pairs, leaving out those without a value."""
    return "".join(
        "<dt>%s</dt><dd%s>%s</dd>"
        % (escape(label), f' id="{ident}"' if ident else "", value)
        for label, value, ident in pairs
        if value not in (None, "")
    )


def registry_results(build):
    """Where the build was pushed: one dict per push rule of the last
    completed registry upload (``registry``, ``repository``, ``tags``,
    ``index_digest``, ``pull``)."""
    job = build.last_registry_upload_job
    if job is None:
        return []
    rules = {str(rule.id): rule for rule in build.recipe.push_rules}
    results = []
    for rule_id, tags in sorted(job.manifest_list_digests.items()):
        rule = rules.get(rule_id)
        if rule is None or not tags:
            continue
        registry = urlsplit(rule.registry_url).netloc or rule.registry_url
        digests = sorted(set(tags.values()))
        results.append(
            {
                "registry": registry,
                "repository": rule.image_name,
                "tags": sorted(tags),
                "index_digest": digests[0] if len(digests) == 1 else None,
                "pull": (
                    f"{registry}/{rule.image_name}@{digests[0]}"
                    if len(digests) == 1
                    else None
                ),
            }
        )
    return results


_KIND_LABELS = {
    "INDEX": "index",
    "MANIFEST": "manifest",
    "CONFIG": "config",
    "LAYER": "layer",
    "LEGACY_MANIFEST": "manifest",
    "LEGACY_DIGESTS": "digests",
}


def _file_rows(build):
    rows = []
    for oci_file, lfa, content in build.getFiles():
        kind = _KIND_LABELS.get(oci_file.kind.name, "file")
        if oci_file.kind.name == "OTHER" and lfa.filename.endswith(".json"):
            kind = "config"
        url = f"{canonical_url(build)}/+files/{quote(lfa.filename)}"
        rows.append(
            f'<tr class="file"><td class="kind">{kind}</td>'
            f'<td><a href="{escape(url)}">{escape(lfa.filename)}</a></td>'
            f'<td class="size">{human_size(content.filesize)}</td></tr>'
        )
    return "".join(rows)


def _log_link(url, lfa, label):
    if url is None or lfa is None or lfa.content is None:
        return None
    return (
        f'<a href="{escape(url)}">{label}</a> '
        f"({human_size(lfa.content.filesize)})"
    )


def _upload_form(build, user):
    """Upstream's "Upload this build to registries" / "Retry" form."""
    if not can_edit(build, user) or not build.recipe.can_upload_to_registry:
        return ""
    status = build.registry_upload_status.name
    if build.status != BuildStatus.FULLYBUILT or status in (
        "PENDING",
        "UPLOADED",
        "SUPERSEDED",
    ):
        return ""
    label = (
        "Retry"
        if status == "FAILEDTOUPLOAD"
        else "Upload this build to " "registries"
    )
    return (
        f'<form id="upload-form" action="{escape(canonical_url(build))}" '
        f'method="POST"><input type="submit" name="field.actions.upload" '
        f'value="{label}"></form>'
    )


def _build_page(start_response, build, user, notice=None):
    images = []
    for image in build.images:
        layers = "".join(
            f'<tr class="layer"><td><code>{_dd(layer["digest"])}</code></td>'
            f'<td>{human_size(layer["size"])}</td>'
            f'<td class="transfer">{_dd(layer["transfer"])}</td></tr>'
            for layer in image["layers"]
        )
        images.append(
            f'<section class="image"><h3 class="platform">'
            f'{_dd(image["platform"])}</h3><dl>'
            + _rows(
                [
                    (
                        "Manifest",
                        (
                            f'<code>{_dd(image["manifest_digest"])}</code>'
                            if image["manifest_digest"]
                            else None
                        ),
                        None,
                    ),
                    (
                        "Config",
                        f'<code>{_dd(image["config_digest"])}</code>',
                        None,
                    ),
                    ("Names", _dd(", ".join(image["names"])), None),
                ]
            )
            + f"</dl><table><tr><th>Layer</th><th>Size</th>"
            f"<th>Transfer</th></tr>{layers}</table></section>"
        )
    failure = ""
    if build.failure_reason or build.status.name in (
        "FAILEDTOBUILD",
        "FAILEDTOUPLOAD",
    ):
        failure = (
            f'<p class="failure" id="failure-reason"><strong>Why it '
            f"failed:</strong> "
            f'{_dd(build.failure_reason or "see the build log")}</p>'
        )
    errors = "".join(
        (
            f"<li>{_dd(error.get('code'))}: {_dd(error.get('message'))}</li>"
            if isinstance(error, dict)
            else f"<li>{_dd(error)}</li>"
        )
        for error in build.registry_upload_errors
    )
    pushed = "".join(
        '<section class="push"><dl>'
        + _rows(
            [
                ("Registry", _dd(result["registry"]), None),
                ("Repository", _dd(result["repository"]), None),
                ("Tags", _dd(", ".join(result["tags"])), None),
                (
                    "Index digest",
                    (
                        f'<code>{_dd(result["index_digest"])}</code>'
                        if result["index_digest"]
                        else None
                    ),
                    None,
                ),
                (
                    "Pull",
                    (
                        f'<code class="pull">docker pull '
                        f'{_dd(result["pull"])}</code>'
                        if result["pull"]
                        else None
                    ),
                    None,
                ),
            ]
        )
        + "</dl></section>"
        for result in registry_results(build)
    )
    archives = ""
    if build.oci_archive_url is not None:
        items = []
        for name, label in (
            ("oci", "OCI archive"),
            ("docker", "Docker archive (docker load)"),
        ):
            url = getattr(build, f"{name}_archive_url")
            size = getattr(build, f"{name}_archive_size")
            sha256 = getattr(build, f"{name}_archive_sha256")
            items.append(
                f'<li><a href="{escape(url)}">{label}</a> '
                f"({human_size(size)})"
                + (
                    f'<br>sha256 <code class="digest">{_dd(sha256)}</code>'
                    if sha256
                    else ""
                )
                + "</li>"
            )
        api_url = f"{root_url()}api/devel/{canonical_path(build)}"
        archives = (
            f'<h2>Archives</h2><ul id="archives">{"".join(items)}</ul>'
            f"<p>Or: <code>lp-oci fetch {escape(api_url)} -o "
            f"{escape(build.recipe.name)}.tar</code></p>"
        )
    files = _file_rows(build)
    body = (
        (f'<p class="notice">{escape(notice)}</p>' if notice else "")
        + f'<p>Recipe: <a href="{escape(canonical_url(build.recipe))}">'
        f"{escape(build.recipe.name)}</a></p>"
        + failure
        + "<dl>"
        + _rows(
            [
                ("Status", _dd(build.status.title), "status"),
                ("Architecture", _dd(build.arch_tag), None),
                (
                    "Builder",
                    _dd(build.builder.name) if build.builder else None,
                    None,
                ),
                ("Created", human_date(build.date_created), None),
                ("Started", human_date(build.date_started), None),
                ("Finished", human_date(build.date_finished), None),
                ("Took", human_duration(build.duration), None),
                (
                    "Build log",
                    _log_link(build.log_url, build.log, "buildlog"),
                    "build-log",
                ),
                (
                    "Upload log",
                    _log_link(
                        build.upload_log_url, build.upload_log, "uploadlog"
                    ),
                    "upload-log",
                ),
                ("Upload format", _dd(build.upload_format), None),
                (
                    "Registry upload",
                    _dd(build.registry_upload_status.title),
                    "registry-upload-status",
                ),
                (
                    "Registry upload error",
                    _dd(build.registry_upload_error_summary),
                    None,
                ),
            ]
        )
        + "</dl>"
        + (f'<ul id="registry-upload-errors">{errors}</ul>' if errors else "")
        + (
            f'<h2>Pushed</h2><div id="registry-result">{pushed}</div>'
            if pushed
            else ""
        )
        + _upload_form(build, user)
        + (f'<h2>Images</h2>{"".join(images)}' if images else "")
        + (
            f'<h2>Files</h2><table id="files"><tr><th>Kind</th><th>File</th>'
            f"<th>Size</th></tr>{files}</table>"
            if files
            else ""
        )
        + archives
    )
    return _page(start_response, build.title, body)


def _build_rows(builds):
    return "".join(
        f'<tr><td><a href="{escape(canonical_url(build))}">'
        f"{escape(build.title)}</a></td>"
        f'<td class="status">{escape(build.status.title)}</td>'
        f'<td class="upload">{escape(build.registry_upload_status.title)}'
        f"</td><td>{human_date(build.date_created)}</td></tr>"
        for build in builds
    )


def _recipe_page(start_response, recipe):
    rules = "".join(
        f"<li>{escape(rule.registry_url)}: <code>{escape(rule.image_name)}"
        f"</code></li>"
        for rule in recipe.push_rules
    )
    groups = {}
    for build in recipe.builds:
        groups.setdefault(build.registry_upload_status.title, []).append(build)
    sections = "".join(
        f'<h3>{escape(title)}</h3><table class="builds"><tr><th>Build</th>'
        f"<th>Status</th><th>Registry upload</th><th>Created</th></tr>"
        f"{_build_rows(builds)}</table>"
        for title, builds in groups.items()
    )
    body = (
        "<dl>"
        + _rows(
            [
                ("Owner", _dd(recipe.owner_name), None),
                ("Description", _dd(recipe.description), None),
                ("Image name", _dd(recipe.image_name), "image-name"),
            ]
        )
        + "</dl>"
        + (
            f'<h2>Push rules</h2><ul id="push-rules">{rules}</ul>'
            if rules
            else "<p>No push rules: builds are not pushed.</p>"
        )
        + f'<h2>Builds</h2><div id="builds">'
        f'{sections or "<p>No builds yet.</p>"}</div>'
    )
    return _page(start_response, f"OCI recipe {recipe.name}", body)


def _front_page(start_response, user):
    recipes = [
        recipe
        for recipe in getUtility(IOCIRecipeSet).findAll()
        if can_view(recipe, user)
    ]
    recipe_rows = "".join(
        f'<li><a href="{escape(canonical_url(recipe))}">~'
        f"{escape(recipe.owner_name)}/{escape(recipe.name)}</a></li>"
        for recipe in recipes
    )
    builds = getUtility(IOCIRecipeBuildSet).findVisible(user)[:20]
    body = (
        f'<h2>Recipes</h2><ul id="recipes">'
        f'{recipe_rows or "<li>None yet: lp-oci run makes one.</li>"}</ul>'
        f'<h2>Recent builds</h2><table id="recent-builds"><tr><th>Build'
        f"</th><th>Status</th><th>Registry upload</th><th>Created</th></tr>"
        f"{_build_rows(builds)}</table>"
        f'<p>The web service: <a href="{escape(root_url())}api/devel/">'
        f"{escape(root_url())}api/devel/</a></p>"
    )
    return _page(start_response, "OCI recipes and builds", body)


def _offsite(environ):
    """Whether a POST did not come from this site's own pages."""
    origin = environ.get("HTTP_ORIGIN") or environ.get("HTTP_REFERER")
    if not origin:
        return True
    mine = urlsplit(root_url())
    theirs = urlsplit(origin)
    return (theirs.scheme, theirs.netloc) != (mine.scheme, mine.netloc)


def _post_upload(environ, start_response, build, user):
    """The build page's form: schedule a registry upload."""
    if user is None:
        return _respond(
            start_response, "401 Unauthorized", "Log in to do this.\n"
        )
    if not can_edit(build, user):
        return _html_not_found(start_response)
    if _offsite(environ):
        # As Launchpad, no form POST from another site.
        return _respond(
            start_response,
            "403 Forbidden",
            "No form posts from other sites.\n",
        )
    try:
        build.scheduleRegistryUpload()
        transaction.commit()
        notice = (
            "An upload has been scheduled and will run as soon as "
            "possible (lp-oci run-jobs)."
        )
    except CannotScheduleRegistryUpload as e:
        transaction.abort()
        notice = str(e)
    return _build_page(start_response, build, user, notice)


def website(environ, start_response):
    """The WSGI application of the OCI pages and files."""
    path = environ.get("PATH_INFO") or "/"
    method = environ.get("REQUEST_METHOD")
    user = environ.get(ENVIRON_USER_KEY)
    match = _PATH.match(path)
    try:
        if path == "/" and method in ("GET", "HEAD"):
            return _front_page(start_response, user)
        if match is None or method not in ("GET", "HEAD", "POST"):
            return _html_not_found(start_response)
        recipe = getUtility(IOCIRecipeSet).getByName(
            unquote(match.group("owner")), unquote(match.group("name"))
        )
        if recipe is None or not can_view(recipe, user):
            return _html_not_found(start_response)
        is_page = (
            match.group("archive") is None and match.group("filename") is None
        )
        if method == "POST" and not (is_page and match.group("build")):
            return _html_not_found(start_response)
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
            return _html_not_found(start_response)
        if match.group("archive") is not None:
            return _serve_archive(
                environ, start_response, build, match.group("archive")
            )
        if match.group("filename") is None:
            if method == "POST":
                return _post_upload(environ, start_response, build, user)
            return _build_page(start_response, build, user)
        return _serve_file(
            environ, start_response, build, unquote(match.group("filename"))
        )
    finally:
        transaction.abort()
