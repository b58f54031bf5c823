# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Write an OCI image layout atomically.

Everything is written into a temporary sibling of the output directory,
which is renamed into place only once complete.  On failure the sibling
is removed, so the output directory either appears whole or not at all.

The sibling (``.OUTDIR.XXXXXXXX``) holds a file `LOCK_NAME` on which the
writing process keeps an exclusive flock; a process killed outright
(SIGKILL, power loss) cannot remove its sibling, but the kernel drops
its lock, so the next `LayoutWriter` in the same parent directory
removes every sibling whose lock nobody holds (`sweep_dead_siblings`).
"""

__all__ = [
    "LOCK_NAME",
    "LayoutWriter",
    "sweep_dead_siblings",
]

import fcntl
import os
import re
import shutil
import tempfile
import time

from lpbuildd.ociimage.errors import OutputError
from lpbuildd.ociimage.image import (
    IMAGE_NAME,
    LAYER_SOURCES,
    REF_NAME,
    document_bytes,
)
from ocitypes.descriptor import Descriptor, MediaType
from ocitypes.digest import Digest
from ocitypes.faultpoint import checkpoint
from ocitypes.flock import remove_if_dead
from ocitypes.safejson import canonical_json

LOCK_NAME = ".lp-oci-gather.lock"

# tempfile.mkdtemp's names: ``.OUTDIR.`` and 8 characters.
_SIBLING_RE = re.compile(r"\A\..+\.[a-z0-9_]{8}\Z")

# A sibling without a lock file is being created, unless older (s).
_CREATION_GRACE = 60

# Everything a writer puts in its sibling.
_WRITER_NAMES = {"blobs", ".work", "index.json", "oci-layout"}


def _holds_only_ours(path):
    return set(os.listdir(path)) <= _WRITER_NAMES


def sweep_dead_siblings(parent, now=None):
    """Remove the temporary layouts of dead writers in ``parent``.

    Only directories named as `LayoutWriter` names them and holding an
    unlocked `LOCK_NAME` (or, older than a minute, holding nothing but
    what a writer writes: their writer died before locking or just
    before renaming) are removed.  Best effort.

    :return: the paths removed.
    """
    now = time.time() if now is None else now
    removed = []
    try:
        names = os.listdir(parent)
    except OSError:
        return removed
    for name in names:
        if not _SIBLING_RE.match(name):
            continue
        path = os.path.join(parent, name)
        # Without its lock: killed before locking, or between unlocking
        # and renaming (then it holds only what a writer writes).
        if remove_if_dead(
            path, LOCK_NAME, now, _CREATION_GRACE, _holds_only_ours
        ):
            removed.append(path)
    return removed


class LayoutWriter:
    """Build an OCI layout in a temporary sibling, then rename it."""

    def __init__(self, outdir):
        self.outdir = os.path.abspath(outdir)
        parent = os.path.dirname(self.outdir)
        if not os.path.isdir(parent):
            raise OutputError(f"{parent} is not a directory")
        if os.path.lexists(self.outdir) and (
            not os.path.isdir(self.outdir)
            or os.path.islink(self.outdir)
            or os.listdir(self.outdir)
        ):
            raise OutputError(
                f"output {self.outdir} already exists and is not an empty "
                f"directory"
            )
        self._lock_fd = None
        sweep_dead_siblings(parent)
        self.tmpdir = tempfile.mkdtemp(
            prefix=f".{os.path.basename(self.outdir)}.", dir=parent
        )
        self._lock_fd = os.open(
            os.path.join(self.tmpdir, LOCK_NAME),
            os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
            0o600,
        )
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self.blobdir = os.path.join(self.tmpdir, "blobs", "sha256")
        os.makedirs(self.blobdir)
        # Scratch space for members whose role is not yet known.
        self.workdir = os.path.join(self.tmpdir, ".work")
        os.mkdir(self.workdir)
        self.written = {}

    def blob_path(self, digest):
        return os.path.join(self.blobdir, digest.hex)

    def add_blob_file(self, path, digest):
        """Move a finished file into place as the blob `digest`.

        :return: the blob's path in the layout.
        """
        target = self.blob_path(digest)
        if digest not in self.written:
            checkpoint("gather.blob")
            os.replace(path, target)
            self.written[digest] = target
        return target

    def add_blob_bytes(self, data):
        digest = Digest.of_bytes(data)
        if digest not in self.written:
            target = self.blob_path(digest)
            with open(target, "wb") as f:
                f.write(data)
            self.written[digest] = target
        return digest

    def write_image(self, image):
        """Write an image's config and manifest; return index entries."""
        # An `Image`'s config matches its digest: see `Image`.
        self.add_blob_bytes(image.config_bytes())
        source = image.source_manifest
        layer_sources = {} if source is None else source.layer_sources
        if source is not None:
            manifest = document_bytes(source.data)
            media_type = source.media_type
        else:
            media_type = MediaType.OCI_MANIFEST
            manifest = canonical_json(
                {
                    "schemaVersion": 2,
                    "mediaType": media_type,
                    "config": image.config_descriptor().to_json(),
                    "layers": [
                        layer.descriptor.to_json() for layer in image.layers
                    ],
                }
            )
        digest = self.add_blob_bytes(manifest)
        base = Descriptor(
            media_type, digest, len(manifest), platform=image.platform
        )
        entries = []
        for repository, tag in image.names or [(None, None)]:
            annotations = {}
            if layer_sources:
                annotations[LAYER_SOURCES] = canonical_json(
                    {str(d): r for d, r in layer_sources.items()}
                ).decode("utf-8")
            if tag:
                annotations[REF_NAME] = tag
            if repository:
                annotations[IMAGE_NAME] = (
                    f"{repository}:{tag}" if tag else repository
                )
            entries.append(
                Descriptor(
                    base.media_type,
                    base.digest,
                    base.size,
                    annotations,
                    base.platform,
                )
            )
        return entries

    def commit(self, entries):
        """Write index.json and oci-layout, then move into place."""
        index = {
            "schemaVersion": 2,
            "mediaType": MediaType.OCI_INDEX,
            "manifests": [entry.to_json() for entry in entries],
        }
        with open(os.path.join(self.tmpdir, "index.json"), "wb") as f:
            f.write(canonical_json(index))
        with open(os.path.join(self.tmpdir, "oci-layout"), "wb") as f:
            f.write(canonical_json({"imageLayoutVersion": "1.0.0"}))
        shutil.rmtree(self.workdir)
        os.chmod(self.tmpdir, 0o755)
        if os.path.isdir(self.outdir) and not os.path.islink(self.outdir):
            os.rmdir(self.outdir)
        os.unlink(os.path.join(self.tmpdir, LOCK_NAME))
        checkpoint("gather.commit")
        os.rename(self.tmpdir, self.outdir)
        self.tmpdir = None
        self._unlock()

    def _unlock(self):
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def abort(self):
        """Remove the temporary layout, unless `commit` moved it."""
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None
        self._unlock()
