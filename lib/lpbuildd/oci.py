# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The OCI build manager's result gathering.

After `docker build`, `OCIBuildManager.gatherResults` streams
``docker save <name>`` straight into `gather` (no copy of the archive on
disk), which writes an OCI upload: an OCI image layout whose layers are
compressed blobs named by digest.  Every file of the upload is then
filed with the builder's sha1-keyed file cache under a flat name, so
that Launchpad can fetch each by the `filemap`:

    ``oci-layout``, ``index.json``   as they are;
    ``blobs/<algorithm>/<hex>``      as ``blobs-<algorithm>-<hex>``.

The mapping is reversible (neither algorithm names nor hex digits contain
``-``), so Launchpad derives each blob's digest from its name and checks
it against the content.  The upload replaces launchpad-buildd's
``digests.json`` and ``<layer_id>.tar.gz`` files.
"""

__all__ = [
    "OCIBuildManager",
    "OCIGatherError",
    "parse_containerd_sources",
    "read_distribution_sources",
]

import json
import os
import shutil
import subprocess

from lpbuildd.ociimage.errors import ArchiveError
from lpbuildd.ociimage.gather import gather
from ocitypes.digest import Digest
from ocitypes.errors import OCIContentError
from ocitypes.filenames import upload_file_name

UPLOAD_DIR = "oci-upload"


class OCIGatherError(ArchiveError):
    """Gathering the build's results failed; the build fails.

    Either ``docker save`` failed or what it wrote was refused; the
    message says which, on one line.
    """


def read_distribution_sources(docker_root):
    """Map diff_ids to the repository docker pulled them from.

    Docker's classic store records, per diff_id, the registry digests
    and source repositories it has seen, under
    ``image/<driver>/distribution/v2metadata-by-diffid/sha256/<hex>``.
    The storage driver is not assumed (launchpad-buildd hard-codes
    ``vfs``).  Unreadable or odd entries are ignored: this is a hint
    for cross-repository mounts, never trusted content.
    """
    sources = {}
    image_dir = os.path.join(docker_root, "image")
    if not os.path.isdir(image_dir):
        return sources
    for driver in sorted(os.listdir(image_dir)):
        meta = os.path.join(
            image_dir, driver, "distribution", "v2metadata-by-diffid", "sha256"
        )
        if not os.path.isdir(meta):
            continue
        for name in sorted(os.listdir(meta)):
            try:
                diff_id = Digest("sha256", name)
                with open(os.path.join(meta, name), "rb") as f:
                    entries = json.loads(f.read(1 << 20))
                repository = entries[-1]["SourceRepository"]
            except (ValueError, OSError, LookupError, TypeError):
                continue
            if isinstance(repository, str) and repository:
                sources[diff_id] = repository
    return sources


SOURCE_LABEL = "containerd.io/distribution.source."


def parse_containerd_sources(listing):
    """Map blob digests to the repository containerd pulled them from.

    :param listing: the output of ``ctr content ls``: tab-separated
        columns DIGEST, SIZE, AGE, LABELS, the labels joined by ",", and
        a `containerd.io/distribution.source.<registry>` label's value
        itself a ","-joined list of repositories.
    """
    sources = {}
    for line in listing.splitlines()[1:]:
        fields = line.split("\t")
        if len(fields) < 2:
            continue
        try:
            digest = Digest.parse(fields[0].strip())
        except ValueError:
            continue
        labels = {}
        key = None
        for token in fields[-1].strip().split(","):
            if "=" in token:
                key, value = token.split("=", 1)
                labels[key] = [value]
            elif key is not None:
                labels[key].append(token)
        for key in sorted(labels):
            repositories = [r for r in labels[key] if r]
            if key.startswith(SOURCE_LABEL) and repositories:
                registry = key[len(SOURCE_LABEL) :]
                sources[digest] = f"{registry}/{repositories[0]}"
                break
    return sources


class OCIBuildManager:
    """Gathers an OCI build's results for Launchpad.

    :param builder: the `lpbuildd.builder.Builder` whose file cache
        receives the results.
    :param backend: runs commands where the image was built; its
        ``run(args, get_output=True, return_process=True)`` returns a
        process whose ``stdout`` streams the command's output.
    """

    def __init__(
        self,
        builder,
        backend,
        name,
        build_dir,
        compression="gzip",
        jobs=None,
        docker_root=None,
        containerd_namespace="moby",
        progress=None,
    ):
        self._builder = builder
        self.backend = backend
        self.name = name
        self.build_dir = build_dir
        self.compression = compression
        self.jobs = jobs
        self.docker_root = docker_root
        self.containerd_namespace = containerd_namespace
        # Optional callable(phase, done_bytes, total_bytes), passed to
        # `gather`.
        self.progress = progress

    def _getLayerSources(self):
        """Where the image's pulled layers came from, as far as known.

        Docker's classic store keeps that per diff_id on disk; with the
        containerd image store it is a label on each blob, read with
        ``ctr``.  Neither is required: a failure means no hints.
        """
        sources = {}
        if self.docker_root:
            sources.update(read_distribution_sources(self.docker_root))
        if self.containerd_namespace:
            try:
                listing = self.backend.run(
                    [
                        "ctr",
                        "--namespace",
                        self.containerd_namespace,
                        "content",
                        "ls",
                    ],
                    get_output=True,
                )
            except (OSError, subprocess.CalledProcessError):
                listing = b""
            sources.update(
                parse_containerd_sources(listing.decode("UTF-8", "replace"))
            )
        return sources

    def gatherResults(self):
        """Save the image, write the OCI upload and file every part.

        :return: the `GatherResult`.
        :raises OCIGatherError: with a one-line reason; nothing is filed
            and no upload directory is left behind.
        """
        upload = os.path.join(self.build_dir, UPLOAD_DIR)
        sources = self._getLayerSources()
        proc = self.backend.run(
            ["docker", "save", self.name],
            get_output=True,
            return_process=True,
        )
        try:
            result = gather(
                proc.stdout,
                upload,
                compression=self.compression,
                jobs=self.jobs,
                sources=sources,
                progress=self.progress,
                # The file cache names files by SHA-1: computed as each
                # layer blob is written, not in a second read of them.
                sha1=True,
            )
        except OCIContentError as e:
            proc.kill()
            proc.wait()
            raise OCIGatherError(
                f"cannot gather 'docker save' output: {e}"
            ) from e
        finally:
            proc.stdout.close()
        if proc.wait() != 0:
            shutil.rmtree(upload, ignore_errors=True)
            raise OCIGatherError(
                f"'docker save {self.name}' failed with status "
                f"{proc.returncode}"
            )
        self._fileUpload(upload, result.sha1s)
        return result

    def _fileUpload(self, upload, sha1s):
        """File every file of the upload as a waiting file.

        :param sha1s: {relative path: SHA-1} known from gathering; the
            other files (documents, small layers) are hashed here.
        """
        # Name everything first so that a surprise files nothing.
        files = []
        for dirpath, dirnames, filenames in os.walk(upload):
            dirnames.sort()
            for filename in sorted(filenames):
                path = os.path.join(dirpath, filename)
                relpath = os.path.relpath(path, upload).replace(os.sep, "/")
                files.append((path, upload_file_name(relpath), relpath))
        for path, name, relpath in files:
            self._builder.addWaitingFile(
                path, name=name, sha1=sha1s.get(relpath)
            )
