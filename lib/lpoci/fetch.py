# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""``lp-oci fetch``: a Launchpad OCI build as one ready archive.

    lp-oci fetch BUILD_URL -o FILE|- [--format oci|docker]
                 [--anonymous | --credentials FILE] [--json]

``BUILD_URL`` is the web service URL of an OCI recipe build on any
service with Launchpad's ``IOCIRecipeBuild`` shape: Launchpad's own
(``https://api.launchpad.net/devel/~OWNER/+oci/.../+build/ID``) or
``lp-oci serve``'s (``<root>/api/devel/~OWNER/+oci-recipe/NAME/+build/ID``).
The build is read and its files listed (``getFileUrls()``, a ``devel``
operation: a ``1.0`` or ``beta`` URL is read at ``devel``) through
launchpadlib; the files are downloaded with ``requests``, each
verified, then the archive is written as ``lp-oci export`` writes one
(`lp.oci.model.ociarchive.make_archive`, the same code), streamed and
deterministic.

Both kinds of build are fetched:

- an OCI upload (``index.json``, ``blobs-sha256-<hex>``): the index is
  read with `lp.oci.model.ocilayout`, every manifest, config and layer
  is checked against its descriptor's digest and size, and each layer
  is decompressed and checked against its config's ``rootfs.diff_ids``;
- a legacy build (``manifest.json``, ``digests.json``, the configs and
  ``<layer_id>.tar.gz``, which is what every build Launchpad holds today
  consists of): each config against the image ID its name is, each
  layer against its diff_id, and against digests.json's digest where
  that describes the file (a pulled layer's digest may be Docker's
  registry digest of another compression of it).  The image manifest
  is the one a registry push of the build sends
  (`lp.oci.model.ociupload.legacy_image_manifest`).

Every file is also checked against the size and sha256 the service
states, where it states them (``Content-Length``; ``lp-oci serve``'s
``ETag: "sha256:<hex>"``).

Downloads go into a hidden sibling of the output,
``.<FILE>.lp-oci-fetch/`` (for ``-o -``, a temporary directory):
a download cut in the middle is resumed from where it stopped (an HTTP
``Range`` request), within the run after a short wait, and by running
the same command again after a failure or an interruption.  The
archive is written to a temporary sibling and renamed into place, and
the download directory removed, only when everything is verified.  A
file whose bytes do not match ends the command with one line naming
it, and nothing is written (the download directory is removed too).

Progress goes to stderr, one ``fetch`` line (``of N MB`` while it
runs) and one ``write`` line; the result to stdout, as text or, with
``--json``, one JSON document::

    {"build_url", "build_id", "upload_format": "oci"|"legacy",
     "format", "output", "size", "sha256",
     "images": [{"manifest_digest", "config_digest", "platform",
                 "names", "layers": [{"digest", "size", "media_type"}]}],
     "files_downloaded", "bytes_downloaded", "bytes_resumed", "seconds"}
"""

__all__ = [
    "FetchError",
    "add_fetch_parser",
    "fetch_main",
    "split_api_url",
]

import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote, urlsplit, urlunsplit

from ocitypes.errors import OCIContentError

FORMATS = ("oci", "docker")
API_VERSIONS = ("devel", "1.0", "beta")
CHUNK_SIZE = 1 << 20
# Attempts per file; a cut download resumes where it stopped.
ATTEMPTS = 5
RETRY_DELAY = 0.5
# Layers downloaded at once.
PARALLEL_DOWNLOADS = 3
TIMEOUT = (30, 120)
LOCK_NAME = ".lock"
CACHE_NAME = ".launchpadlib-cache"
_HEX64 = re.compile(r"[0-9a-f]{64}")


class FetchError(OCIContentError):
    """The fetch failed; the message is one line for the user."""


class FetchMismatch(FetchError):
    """A downloaded file is not what it should be: nothing is kept."""


def add_fetch_parser(commands):
    """Add the ``fetch`` command to ``lp-oci``'s subparsers."""
    fetch = commands.add_parser(
        "fetch",
        help="download an OCI recipe build (Launchpad's API or lp-oci "
        "serve) as one OCI or Docker archive",
        description="List the files of the OCI recipe build at BUILD_URL "
        "(a web service URL) with getFileUrls(), download and verify "
        "them (resuming cut downloads), and write one OCI archive or "
        "Docker archive of its images.  Works for OCI-upload builds and "
        "for legacy builds (manifest.json, digests.json, configs and "
        "<layer_id>.tar.gz).",
    )
    fetch.add_argument("build_url", metavar="BUILD_URL")
    fetch.add_argument(
        "-o", "--output", required=True, help="output file, or - for stdout"
    )
    fetch.add_argument(
        "--format",
        choices=FORMATS,
        default="oci",
        help="oci (default: keeps every digest through skopeo) or docker "
        "(for docker load)",
    )
    who = fetch.add_mutually_exclusive_group()
    who.add_argument(
        "--anonymous",
        action="store_true",
        help="read as an anonymous user (the default)",
    )
    who.add_argument(
        "--credentials",
        metavar="FILE",
        help='a JSON file {"username": ..., "password": ...} (HTTP basic '
        "authentication, as lp-oci serve takes) or a launchpadlib "
        "credentials file (OAuth, as Launchpad takes)",
    )
    fetch.add_argument(
        "--json",
        action="store_true",
        help="print the summary as JSON (needs -o FILE)",
    )
    fetch.set_defaults(func=fetch_main)
    return fetch


def split_api_url(url):
    """``(service_root, version, devel_url)`` of a web service URL.

    :raises FetchError: if ``url`` has no web service version in it.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FetchError(f"{url} is not an http or https URL")
    segments = parts.path.split("/")
    for i, segment in enumerate(segments):
        if segment in API_VERSIONS and i + 1 < len(segments):
            root = urlunsplit(
                (parts.scheme, parts.netloc, "/".join(segments[:i]) + "/")
                + ("", "")
            )
            devel = urlunsplit(
                (
                    parts.scheme,
                    parts.netloc,
                    "/".join(segments[:i] + ["devel"] + segments[i + 1 :]),
                    "",
                    "",
                )
            )
            return root, segment, devel
    raise FetchError(
        f"{url} is not a web service URL of a build (expected "
        f".../devel/~OWNER/.../+build/ID)"
    )


def _read_credentials(path):
    """An authorizer for lazr.restfulclient from a credentials file."""
    from lazr.restfulclient.authorize import BasicHttpAuthorizer

    try:
        with open(path, "rb") as f:
            data = f.read(1 << 16)
    except OSError as e:
        raise FetchError(
            f"cannot read credentials file {path}: {e.strerror}"
        ) from None
    try:
        value = json.loads(data)
    except ValueError:
        value = None
    if isinstance(value, dict):
        if not all(
            isinstance(value.get(key), str) for key in ("username", "password")
        ):
            raise FetchError(
                f"credentials file {path} must hold a username and a password"
            )
        return BasicHttpAuthorizer(value["username"], value["password"])
    from launchpadlib.credentials import Credentials

    try:
        return Credentials.load_from_path(path)
    except Exception:
        raise FetchError(
            f"credentials file {path} is neither JSON "
            '{"username": ..., "password": ...} nor launchpadlib credentials'
        ) from None


def _anonymous():
    from launchpadlib.credentials import AnonymousAccessToken, Credentials

    return Credentials("lp-oci fetch", access_token=AnonymousAccessToken())


def _describe_http_error(e):
    response = getattr(e, "response", None)
    status = getattr(response, "status", None)
    reason = getattr(response, "reason", "") or ""
    if status is not None:
        return f"{status} {reason}".strip()
    return " ".join(str(e).split()) or type(e).__name__


def _open_build(url, authorizer, cache_dir):
    """The build's entry and its file URLs, through launchpadlib."""
    from launchpadlib.launchpad import Launchpad
    from lazr.restfulclient.errors import HTTPError

    root, _, devel_url = split_api_url(url)
    try:
        service = Launchpad(
            authorizer,
            None,
            None,
            service_root=root,
            cache=cache_dir,
            version="devel",
        )
        entry = service.load(devel_url)
        if not entry.resource_type_link.endswith("#oci_recipe_build"):
            raise FetchError(f"{url} is not an OCI recipe build")
        status = entry.buildstate
        if status != "Successfully built":
            raise FetchError(f"{url} is {status}, not Successfully built")
        file_urls = list(entry.getFileUrls())
    except HTTPError as e:
        raise FetchError(f"cannot read {url}: {_describe_http_error(e)}")
    except FetchError:
        raise
    except (OSError, ValueError, AttributeError, KeyError) as e:
        # httplib2's connection errors are OSErrors; a service of
        # another shape answers with documents launchpadlib cannot use.
        reason = " ".join(str(e).split()) or type(e).__name__
        raise FetchError(f"cannot read {url}: {reason}") from None
    return entry, devel_url, file_urls


class _Content:
    def __init__(self, sha256, filesize):
        self.sha256 = sha256
        self.filesize = filesize


class LocalFile:
    """A downloaded, verified file, shaped as the librarian's files are
    for `lp.oci.model.ociarchive.make_archive`."""

    def __init__(self, path, filename, sha256, size):
        self.path = path
        self.filename = filename
        self.content = _Content(sha256, size)
        self._local = threading.local()

    def open(self):
        stream = open(self.path, "rb")
        self._local.stream = stream
        return stream

    def close(self):
        stream = getattr(self._local, "stream", None)
        if stream is not None:
            stream.close()
            self._local.stream = None

    def read(self):
        with open(self.path, "rb") as f:
            return f.read()


class _Recipe:
    def __init__(self, name):
        self.name = name


class FetchedBuild:
    """A build's downloaded files, as `make_archive` reads a build."""

    def __init__(self, build_id, recipe_name):
        self.id = build_id
        self.recipe = _Recipe(recipe_name)
        self.index = None
        self.digests = None
        self.manifest_data = None
        self.digests_data = None
        self.upload_format = None
        self._by_name = {}
        self._by_digest = {}
        self._sha256s = set()

    def add(self, local, digests=()):
        self._by_name[local.filename] = local
        self._sha256s.add(local.content.sha256)
        for digest in digests:
            self._by_digest[str(digest)] = local

    def getFileByName(self, filename):
        from lp.app.errors import NotFoundError

        try:
            return self._by_name[filename]
        except KeyError:
            raise NotFoundError(filename) from None

    def getLayerFileByDigest(self, digest):
        from lp.app.errors import NotFoundError

        try:
            local = self._by_digest[str(digest)]
        except KeyError:
            raise NotFoundError(str(digest)) from None
        return None, local, local.content

    def exists(self, sha256):
        """See `LibrarianStorage.exists`: the storage is the downloads."""
        return sha256 in self._sha256s


class Downloader:
    """Resumable, verified downloads into ``directory``."""

    def __init__(self, session, authorize, directory, sleep=time.sleep):
        self.session = session
        self.authorize = authorize
        self.directory = directory
        self.sleep = sleep
        self.phase = None
        self.files = 0
        self.bytes = 0
        self.resumed = 0
        self._lock = threading.Lock()

    def _headers(self, url):
        headers = {}
        if self.authorize is not None:
            self.authorize(url, headers)
        return headers

    def _count(self, n):
        with self._lock:
            self.bytes += n
        if self.phase is not None:
            self.phase.add(n)

    def head(self, url):
        """The size the service states for ``url``, or None."""
        import requests

        try:
            response = self.session.head(
                url,
                headers=self._headers(url),
                allow_redirects=True,
                timeout=TIMEOUT,
            )
        except requests.RequestException:
            return None
        length = response.headers.get("Content-Length")
        if response.status_code == 200 and length and length.isdigit():
            return int(length)
        return None

    def fetch(
        self, name, url, sha256=None, size=None, diff_id=None, kind=None
    ):
        """Download ``url`` as ``name`` and verify it.

        :param sha256: The hex digest the file must have, or None.
        :param size: The size it must have, or None.
        :param diff_id: For a layer, the `Digest` of its uncompressed
            content; ``kind`` is then "gzip", "zstd" or "tar".
        :return: a `LocalFile`, with what the service stated
            (``stated_sha256``) for callers that check it themselves.
        :raises FetchMismatch: if the bytes are not what they should be.
        :raises FetchError: if the download fails ``ATTEMPTS`` times.
        """
        path = os.path.join(self.directory, name)
        part = path + ".part"
        if os.path.exists(path):
            # Downloaded by an earlier run: verified again.
            os.rename(path, part)
        stated = {}
        for attempt in range(1, ATTEMPTS + 1):
            try:
                digests = self._download(url, part, stated, kind)
                break
            except _Retry as e:
                if attempt == ATTEMPTS:
                    raise FetchError(
                        f"cannot download {name}: {e} (run the same "
                        "command again to resume)"
                    ) from None
                self.sleep(RETRY_DELAY * attempt)
        got_sha256, got_size, got_diff_id = digests
        problems = []
        if size is not None and got_size != size:
            problems.append(f"{got_size} bytes, expected {size}")
        if stated.get("size") is not None and got_size != stated["size"]:
            problems.append(
                f"{got_size} bytes, the service states {stated['size']}"
            )
        if sha256 is not None and got_sha256 != sha256:
            problems.append(f"sha256 {got_sha256}, expected {sha256}")
        if stated.get("sha256") and got_sha256 != stated["sha256"]:
            problems.append(
                f"sha256 {got_sha256}, the service states {stated['sha256']}"
            )
        if diff_id is not None and got_diff_id != diff_id:
            problems.append(f"diff_id {got_diff_id}, expected {diff_id}")
        if problems:
            os.unlink(part)
            raise FetchMismatch(
                f"downloaded {name} does not match: {'; '.join(problems)}"
            )
        os.rename(part, path)
        with self._lock:
            self.files += 1
        return LocalFile(path, name, got_sha256, got_size)

    def _download(self, url, part, stated, kind):
        """Download to ``part``, resuming what it holds; its digests."""
        import requests
        import urllib3

        from lpbuildd.ociimage.compression import DiffIDHasher
        from ocitypes.digest import Digest

        sha256 = hashlib.sha256()
        hasher = None
        if kind in ("gzip", "zstd"):
            hasher = DiffIDHasher(kind, os.path.basename(part), threaded=True)
        offset = 0
        try:
            if os.path.exists(part):
                with open(part, "rb") as f:
                    while True:
                        data = f.read(CHUNK_SIZE)
                        if not data:
                            break
                        sha256.update(data)
                        if hasher is not None:
                            hasher.update(data)
                        offset += len(data)
            headers = self._headers(url)
            if offset:
                headers["Range"] = f"bytes={offset}-"
                if stated.get("etag"):
                    headers["If-Range"] = stated["etag"]
            try:
                response = self.session.get(
                    url, headers=headers, stream=True, timeout=TIMEOUT
                )
            except requests.RequestException as e:
                raise _Retry(_short(e)) from None
            with response:
                status = response.status_code
                if status in (200, 206):
                    _note_stated(response, stated, offset)
                if offset and status == 200:
                    # The service ignored the range: start again.
                    raise _Restart()
                if offset and status == 416:
                    raise _Restart()
                if status >= 500 or status in (408, 429):
                    raise _Retry(f"{status} {response.reason}")
                if status not in (200, 206):
                    raise FetchError(
                        f"cannot download {url}: {status} {response.reason}"
                    )
                if status == 206:
                    start = _range_start(response.headers.get("Content-Range"))
                    if start != offset:
                        raise _Restart()
                    with self._lock:
                        self.resumed += offset
                try:
                    with open(part, "ab") as f:
                        for data in _body(response):
                            f.write(data)
                            sha256.update(data)
                            if hasher is not None:
                                hasher.update(data)
                            self._count(len(data))
                            offset += len(data)
                except (
                    requests.RequestException,
                    urllib3.exceptions.HTTPError,
                    OSError,
                ) as e:
                    raise _Retry(_short(e)) from None
            expected = stated.get("size")
            if expected is not None and offset < expected:
                raise _Retry(f"the connection ended at {offset} bytes")
            if hasher is not None:
                diff_id = hasher.finish()
            elif kind == "tar":
                # An uncompressed layer's diff_id is its own digest.
                diff_id = Digest("sha256", sha256.hexdigest())
            else:
                diff_id = None
            hasher = None
            return sha256.hexdigest(), offset, diff_id
        except _Restart:
            if hasher is not None:
                hasher.abort()
            os.unlink(part)
            stated.clear()
            raise _Retry("the service could not resume the download")
        except OCIContentError as e:
            if hasher is not None:
                hasher.abort()
            if isinstance(e, FetchError):
                raise
            os.unlink(part)
            raise FetchMismatch(
                f"downloaded {os.path.basename(part)[:-5]} does not match: "
                f"{e}"
            ) from None
        except BaseException:
            if hasher is not None:
                hasher.abort()
            raise


class _Retry(Exception):
    """A download attempt failed; it may be resumed."""


class _Restart(Exception):
    """The partial download cannot be resumed: start again."""


def _body(response):
    """The bytes of a response as they arrive, as sent.

    ``read1`` hands over what has arrived, so a connection cut in the
    middle loses nothing already received (``iter_content`` would drop
    a partly read chunk); no ``Content-Encoding`` is undone, so a
    ``.tar.gz`` sent as gzip-encoded stays the file it is.
    """
    raw = response.raw
    while True:
        data = raw.read1(CHUNK_SIZE, decode_content=False)
        if not data:
            return
        yield data


def _short(e):
    return " ".join(str(e).split())[:200] or type(e).__name__


def _range_start(value):
    match = re.match(r"bytes (\d+)-\d+/(\d+|\*)$", value or "")
    return int(match.group(1)) if match else None


def _note_stated(response, stated, offset):
    """Record the size and sha256 the service states for a file."""
    etag = response.headers.get("ETag")
    if etag and "etag" not in stated:
        stated["etag"] = etag
        match = re.fullmatch(r'(?:W/)?"sha256:([0-9a-f]{64})"', etag)
        if match:
            stated["sha256"] = match.group(1)
    if "size" in stated:
        return
    if response.status_code == 206:
        match = re.match(
            r"bytes \d+-\d+/(\d+)$", response.headers.get("Content-Range", "")
        )
        if match:
            stated["size"] = int(match.group(1))
    else:
        length = response.headers.get("Content-Length")
        if length and length.isdigit():
            stated["size"] = int(length)


def _layer_kind(media_type):
    if media_type.endswith("+zstd") or media_type.endswith(".zstd"):
        return "zstd"
    if media_type.endswith("gzip"):
        return "gzip"
    return "tar"


def _file_urls(urls):
    """``{file name: URL}`` of the build's files (not its archives)."""
    files = {}
    for url in urls:
        if not isinstance(url, str):
            continue
        path = urlsplit(url).path
        if "/+archive/" in path:
            continue
        files[unquote(path.rsplit("/", 1)[-1])] = url
    return files


def _build_id_and_recipe(url):
    segments = urlsplit(url).path.rstrip("/").split("/")
    try:
        build_id = int(segments[-1])
    except ValueError:
        build_id = None
    recipe = "build"
    if len(segments) >= 3 and segments[-2] == "+build":
        recipe = segments[-3]
    return build_id, recipe


def _need(files, name, url):
    try:
        return files[name]
    except KeyError:
        raise FetchError(f"{url} lists no file {name}") from None


def _fetch_oci_upload(build, files, downloader, url, progress):
    from lp.oci.model.ocilayout import (
        OCILayoutError,
        parse_index,
        parse_manifest,
    )
    from lp.oci.model.ociupload import parse_json_document
    from ocitypes.digest import Digest
    from ocitypes.filenames import blob_file_name

    def blob(descriptor, **kwargs):
        digest = Digest.parse(descriptor.digest)
        name = blob_file_name(digest)
        local = downloader.fetch(
            name,
            _need(files, name, url),
            sha256=digest.hex,
            size=descriptor.size,
            **kwargs,
        )
        build.add(local, [digest])
        return local

    index = downloader.fetch("index.json", _need(files, "index.json", url))
    build.add(index)
    build.index = index
    try:
        layers = []
        for descriptor in parse_index(index.read()):
            manifest_file = blob(descriptor)
            manifest = parse_manifest(manifest_file.read(), descriptor)
            config_file = blob(manifest.config)
            config = parse_json_document(
                config_file.read(), manifest.config.digest
            )
            rootfs = config.get("rootfs") if isinstance(config, dict) else None
            diff_ids = (
                rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
            )
            if not isinstance(diff_ids, list) or len(diff_ids) != len(
                manifest.layers
            ):
                raise FetchMismatch(
                    f"config {manifest.config.digest} does not list one "
                    "diff_id per layer of its manifest"
                )
            for layer, diff_id in zip(manifest.layers, diff_ids):
                try:
                    diff_id = Digest.parse(diff_id)
                except (TypeError, ValueError):
                    raise FetchMismatch(
                        f"config {manifest.config.digest} has a malformed "
                        "diff_id"
                    ) from None
                layers.append((layer, diff_id))
    except OCILayoutError as e:
        raise FetchMismatch(" ".join(str(e).split())) from None
    unique = {}
    for layer, diff_id in layers:
        unique.setdefault(layer.digest, (layer, diff_id))
    progress.total = sum(layer.size for layer, _ in unique.values())
    _in_parallel(
        [
            lambda layer=layer, diff_id=diff_id: blob(
                layer,
                diff_id=diff_id,
                kind=_layer_kind(layer.media_type),
            )
            for layer, diff_id in unique.values()
        ]
    )


def _fetch_legacy_upload(build, files, downloader, url, progress):
    from lp.oci.interfaces.ociupload import OCIUploadError
    from lp.oci.model.ociupload import (
        check_legacy_config,
        parse_json_document,
        parse_legacy_upload,
    )

    documents = {}
    for name in ("manifest.json", "digests.json"):
        local = downloader.fetch(name, _need(files, name, url))
        build.add(local)
        documents[name] = local
    build.digests = documents["digests.json"]
    try:
        build.manifest_data = parse_json_document(
            documents["manifest.json"].read(), "manifest.json"
        )
        build.digests_data = parse_json_document(
            documents["digests.json"].read(), "digests.json"
        )
        images = parse_legacy_upload(build.manifest_data, build.digests_data)
        layers = {}
        for image in images:
            stem = image.config_name[: -len(".json")]
            local = downloader.fetch(
                image.config_name,
                _need(files, image.config_name, url),
                # A config is named after its digest, the image ID.
                sha256=stem if _HEX64.fullmatch(stem) else None,
            )
            build.add(local)
            check_legacy_config(
                parse_json_document(local.read(), image.config_name), image
            )
            for layer in image.layers:
                layers.setdefault(layer.file_name, layer)
    except OCIUploadError as e:
        raise FetchMismatch(" ".join(str(e).split())) from None
    urls = {name: _need(files, name, url) for name in layers}
    sizes = _in_parallel(
        [lambda u=u: downloader.head(u) for u in urls.values()]
    )
    progress.total = sum(size or 0 for size in sizes) or None

    def fetch_layer(name, layer):
        local = downloader.fetch(
            name, urls[name], diff_id=layer.diff_id, kind="gzip"
        )
        # digests.json's digest describes the file for a layer built on
        # the builder; for a pulled one it may be Docker's registry
        # digest of another compression, and the diff_id vouches for
        # the content (as the service's sha256, where it states one).
        build.add(local, [layer.digest])

    _in_parallel(
        [
            lambda name=name, layer=layer: fetch_layer(name, layer)
            for name, layer in layers.items()
        ]
    )


def _in_parallel(calls):
    """Run ``calls`` a few at a time; their results, in order.

    The first failure is raised once all have ended.
    """
    if not calls:
        return []
    with ThreadPoolExecutor(max_workers=PARALLEL_DOWNLOADS) as pool:
        futures = [pool.submit(call) for call in calls]
    # A mismatch wins over a download error: it is what to report.
    errors = [f.exception() for f in futures if f.exception() is not None]
    for error in errors:
        if isinstance(error, FetchMismatch):
            raise error
    if errors:
        raise errors[0]
    return [f.result() for f in futures]


def _request_signer(authorizer):
    """Sign each download as the web service requests are signed.

    Each request anew (OAuth nonces are single-use); requests drops the
    header on a redirect to another host (Launchpad's librarian).
    """

    def authorize(url, headers):
        authorizer.authorizeRequest(url, "GET", None, headers)

    return authorize


class _WorkDir:
    """Where the downloads go, locked for this run."""

    def __init__(self, output):
        if output == "-":
            self.path = tempfile.mkdtemp(prefix="lp-oci-fetch-")
            self.keep_on_failure = False
        else:
            directory, base = os.path.split(os.path.abspath(output))
            if os.path.isdir(output):
                raise FetchError(f"cannot write {output}: it is a directory")
            if not os.path.isdir(directory):
                raise FetchError(
                    f"cannot write {output}: no directory {directory}"
                )
            self.path = os.path.join(directory, f".{base}.lp-oci-fetch")
            try:
                os.makedirs(self.path, exist_ok=True)
            except OSError as e:
                raise FetchError(
                    f"cannot write {self.path}: {e.strerror}"
                ) from None
            self.keep_on_failure = True
        self._lock = open(os.path.join(self.path, LOCK_NAME), "a")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise FetchError(
                f"another lp-oci fetch is writing {output} "
                f"(it holds {self.path})"
            ) from None

    def holds_downloads(self):
        """Whether an interrupted run left downloads to resume."""
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return False
        return any(name not in (LOCK_NAME, CACHE_NAME) for name in names)

    def remove(self):
        self._lock.close()
        shutil.rmtree(self.path, ignore_errors=True)

    def release(self):
        self._lock.close()


def fetch_main(args, stdout, stderr):
    """The ``lp-oci fetch`` command; see the module docstring."""
    import requests

    from lp.oci.interfaces.ociarchive import OCIArchiveError, OCIArchiveFormat
    from lp.oci.model.ociarchive import make_archive
    from lpoci.export import _write_file, image_summaries, write_archive
    from lpoci.progress import RunProgress

    if args.json and args.output == "-":
        stderr.write("lp-oci: error: --json needs -o FILE\n")
        return 2
    if args.output == "-" and sys.stdout.isatty():
        raise FetchError("refusing to write an archive to a terminal")
    started = time.monotonic()
    authorizer = (
        _read_credentials(args.credentials)
        if args.credentials
        else _anonymous()
    )
    work = _WorkDir(args.output)
    progress = RunProgress(stderr, mode="off" if args.json else None)
    ok = False
    try:
        cache = os.path.join(work.path, CACHE_NAME)
        _, devel_url, urls = _open_build(args.build_url, authorizer, cache)
        files = _file_urls(urls)
        build = FetchedBuild(*_build_id_and_recipe(devel_url))
        session = requests.Session()
        downloader = Downloader(
            session,
            _request_signer(authorizer) if args.credentials else None,
            work.path,
        )
        phase = progress.phase("fetch")
        downloader.phase = phase
        if "index.json" in files:
            build.upload_format = "oci"
            _fetch_oci_upload(build, files, downloader, args.build_url, phase)
        elif "digests.json" in files:
            build.upload_format = "legacy"
            _fetch_legacy_upload(
                build, files, downloader, args.build_url, phase
            )
        else:
            raise FetchError(
                f"{args.build_url} lists neither index.json nor "
                "digests.json: no image to fetch"
            )
        phase.finish(
            downloader.bytes,
            f"{downloader.files} files verified"
            + (
                f", {downloader.resumed / 1e6:.1f} MB resumed"
                if downloader.resumed
                else ""
            ),
        )
        try:
            archive = make_archive(
                build, OCIArchiveFormat.items[args.format.upper()], build
            )
        except OCIArchiveError as e:
            raise FetchMismatch(str(e)) from None
        write = progress.phase("write", archive.size)
        if args.output == "-":
            stream = sys.stdout.buffer
            # Nothing is printed beside it (no --json): not hashed.
            sha256 = write_archive(archive, stream, write.update, hash=False)
            stream.flush()
        else:
            sha256 = _write_file(archive, args.output, write.update)
        write.finish(archive.size, args.format)
        ok = True
    except FetchMismatch:
        # Nothing of a build whose bytes do not match is kept.
        work.remove()
        raise
    finally:
        if ok or not work.keep_on_failure or not work.holds_downloads():
            work.remove()
        else:
            work.release()
    if args.output == "-":
        return 0
    summary = {
        "build_url": args.build_url,
        "build_id": build.id,
        "upload_format": build.upload_format,
        "format": args.format,
        "output": os.path.abspath(args.output),
        "size": archive.size,
        "sha256": sha256,
        "images": image_summaries(archive),
        "files_downloaded": downloader.files,
        "bytes_downloaded": downloader.bytes,
        "bytes_resumed": downloader.resumed,
        "seconds": round(time.monotonic() - started, 3),
    }
    if args.json:
        json.dump(summary, stdout, indent=2)
        stdout.write("\n")
    else:
        stdout.write(
            f"build {build.id}: {args.format} archive {args.output} "
            f"({build.upload_format} build)\n"
            f"size: {archive.size}\n"
            f"sha256: {sha256}\n"
        )
        for image in summary["images"]:
            stdout.write(
                f"  {image['platform']} manifest {image['manifest_digest']} "
                f"{len(image['layers'])} layers "
                f"{', '.join(image['names'])}\n"
            )
    return 0
