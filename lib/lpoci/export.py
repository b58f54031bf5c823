# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""``lp-oci export``: a stored build's images as an archive, offline.

    lp-oci export BUILD_ID [--state DIR] --format oci|docker -o FILE|-
                  [--json]

Writes the archive `IOCIArchiveSet.getArchive` generates for a
FULLYBUILT build of the ``--state`` directory that ``lp-oci run`` keeps
(SQLite and librarian).  ``-o FILE`` writes to a temporary sibling that
is renamed into place once complete, so nothing half-written is ever
at FILE; ``-o -`` writes to standard output.  The summary (format,
file, size, sha256, images) goes to stdout with ``-o FILE``, as one
JSON document with ``--json``.  Errors are one line on stderr.
"""

__all__ = [
    "ExportError",
    "add_export_parser",
    "export_main",
    "find_build",
    "open_state",
    "write_archive",
]

import hashlib
import json
import os
import sys
import tempfile

from ocitypes.errors import OCIContentError

FORMATS = ("oci", "docker")


class ExportError(OCIContentError):
    """The export cannot be done; the message is one line for the user."""


def add_export_parser(commands):
    """Add the ``export`` command to ``lp-oci``'s subparsers."""
    export = commands.add_parser(
        "export",
        help="write a stored build's images as an OCI or Docker archive",
        description="Write the images of a FULLYBUILT build stored in "
        "--state (by lp-oci run) as an OCI archive or as a Docker archive "
        "(as docker save of Docker 25+ writes it, which docker load reads "
        "since Docker 1.10), byte-for-byte the same at every export.",
    )
    export.add_argument(
        "build_id",
        type=int,
        metavar="BUILD_ID",
        help="the build's id, as lp-oci run prints it",
    )
    export.add_argument("--state", default="var", help="state directory")
    export.add_argument("--format", required=True, choices=FORMATS)
    export.add_argument(
        "-o", "--output", required=True, help="output file, or - for stdout"
    )
    export.add_argument(
        "--json",
        action="store_true",
        help="print the summary as JSON (needs -o FILE)",
    )
    export.set_defaults(func=export_main)
    return export


def write_archive(archive, stream, progress=None, hash=True):
    """Write all of ``archive`` to ``stream``.

    :return: The sha256 hex digest of what was written, or None when
        ``hash`` is false.
    """
    hasher = hashlib.sha256() if hash else None
    written = 0
    for chunk in archive.iterBytes():
        stream.write(chunk)
        if hasher is not None:
            hasher.update(chunk)
        written += len(chunk)
        if progress is not None:
            progress(written)
    if written != archive.size:
        raise ExportError(
            f"wrote {written} bytes, the archive should be {archive.size}"
        )
    return hasher.hexdigest() if hasher is not None else None


def _write_file(archive, path, progress):
    """Write ``archive`` to a temporary sibling of ``path``, then rename."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ExportError(f"cannot write {path}: it is a directory")
    try:
        fd, temp = tempfile.mkstemp(
            dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp"
        )
    except OSError as e:
        raise ExportError(f"cannot write {path}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            sha256 = write_archive(archive, f, progress)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException as e:
        os.unlink(temp)
        if isinstance(e, OSError) and not isinstance(e, OCIContentError):
            raise ExportError(
                f"cannot write {path}: {e.strerror or e}"
            ) from None
        raise
    return sha256


def image_summaries(archive):
    """The JSON summary of each image of ``archive`` (an `IOCIArchive`)."""
    return [
        {
            "manifest_digest": str(image.manifest.digest),
            "config_digest": str(image.config.digest),
            "platform": str(image.platform) if image.platform else None,
            "names": list(image.names),
            "layers": [
                {
                    "digest": str(layer.digest),
                    "size": layer.size,
                    "media_type": layer.media_type,
                }
                for layer in image.layers
            ],
        }
        for image in archive.images
    ]


def _summary(archive, args, sha256):
    return {
        "format": args.format,
        "build_id": archive.build.id,
        "output": os.path.abspath(args.output),
        "size": archive.size,
        "sha256": sha256,
        "images": image_summaries(archive),
    }


def open_state(state):
    """Set up the services on an existing state directory.

    :raises ExportError: if ``state`` holds no Launchpad database.
    """
    from lp.services.config import config
    from lp.services.database.connection import default_database_uri
    from lp.services.scripts import setup_services

    if not os.environ.get("LP_DATABASE_URI") and not config.database.url:
        database = default_database_uri(state)[len("sqlite:") :]
        if not os.path.isfile(database):
            raise ExportError(f"no Launchpad state in {state} (no {database})")
    # Only reads: works on a read-only copy of a state.
    setup_services(state, schema="check", read_only=True)
    # Circular import.
    from lp.services.webapp.wsgi import import_models

    import_models()


def find_build(args):
    """Set up the services on ``--state``; the build ``args.build_id``."""
    from zope.component import getUtility

    from lp.oci.interfaces.ocirecipebuild import IOCIRecipeBuildSet

    open_state(args.state)
    build = getUtility(IOCIRecipeBuildSet).getByID(args.build_id)
    if build is None:
        raise ExportError(f"no build {args.build_id} in {args.state}")
    return build


def export_main(args, stdout, stderr):
    """The ``lp-oci export`` command; see the module docstring."""
    from zope.component import getUtility

    from lp.oci.interfaces.ociarchive import IOCIArchiveSet, OCIArchiveFormat
    from lpoci.cli import Progress

    if args.json and args.output == "-":
        stderr.write("lp-oci: error: --json needs -o FILE\n")
        return 2
    build = find_build(args)
    if args.output == "-" and sys.stdout.isatty():
        raise ExportError("refusing to write an archive to a terminal")
    archive = getUtility(IOCIArchiveSet).getArchive(
        build, getattr(OCIArchiveFormat, args.format.upper())
    )
    if args.output == "-":
        stream = sys.stdout.buffer
        write_archive(archive, stream, hash=False)
        stream.flush()
        return 0
    progress = Progress(stderr, archive.size)
    try:
        sha256 = _write_file(archive, args.output, progress)
    finally:
        progress.clear()
    summary = _summary(archive, args, sha256)
    if args.json:
        json.dump(summary, stdout, indent=2)
        stdout.write("\n")
    else:
        stdout.write(
            f"build {build.id}: {args.format} archive {args.output}\n"
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
