# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The OCI build manager's result gathering, as launchpad-buildd's.

`OCIBuildManager.gatherResults` and its helpers have the shape they have
in launchpad-buildd with the project's patch series
(``upstream/launchpad-buildd``): ``docker save <name>`` is streamed into
`lpbuildd.dockersave` (the series' module, byte for byte), the sources
of pulled layers are read through the backend, and every file is filed
with the builder's file cache: the legacy set (``manifest.json``,
``digests.json``, the configs, ``<layer_id>.tar.gz``), or, when
Launchpad asks with ``upload_format="oci"``, the OCI upload
(``oci-layout``, ``index.json``, ``blobs-sha256-<hex>``).

Harness only: the constructor takes what launchpad-buildd's build manager
gets from ``initiate``; progress is reported as the archive is read;
fault checkpoints mark where a kill may land; and `gatherResults`
returns a `GatherSummary` for ``lp-oci run``'s report.
"""

__all__ = [
    "GatherSummary",
    "OCIBuildManager",
    "OCIGatherError",
]

import json
import os
import shutil
import tempfile
from dataclasses import dataclass

from lpbuildd.dockersave import (
    DockerSaveError,
    parse_containerd_sources,
    read_docker_save,
    write_legacy_upload,
    write_oci_upload,
)
from lpbuildd.ociimage.errors import ArchiveError, CorruptArchive
from lpbuildd.ociimage.reference import parse_reference
from ocitypes.descriptor import Descriptor
from ocitypes.digest import Digest
from ocitypes.faultpoint import checkpoint

# `progress` is called at most once per this many bytes read.
PROGRESS_STEP = 1 << 20
LAYER_MEDIA_TYPES = {
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}


class OCIGatherError(ArchiveError):
    """Gathering the build's results failed; the build fails.

    Either ``docker save`` failed or what it wrote was refused; the
    message says which, on one line.
    """


@dataclass(frozen=True)
class LayerSummary:
    descriptor: Descriptor  # the layer as filed
    diff_id: Digest


@dataclass(frozen=True)
class ImageSummary:
    config_digest: Digest
    platform: dict
    layers: tuple
    # The image's names (``RepoTags``) that are valid references,
    # normalised.
    names: tuple = ()


@dataclass(frozen=True)
class GatherSummary:
    """What `gatherResults` filed (harness only: `lp-oci run` reports it).

    `format` names the layout ``docker save`` wrote: "docker-save"
    (Docker <= 24), "docker25-classic" or "docker25-containerd".
    """

    format: str
    upload_format: str
    images: tuple
    files: dict  # name -> SHA-1
    bytes_in: int
    bytes_out: int

    @property
    def layer_count(self):
        return sum(len(image.layers) for image in self.images)


class _ProgressReader:
    """Counts what is read from ``docker save`` and reports it."""

    def __init__(self, stream, progress, total):
        self._stream = stream
        self._progress = progress
        self._total = total
        self._reported = 0
        self.count = 0

    def read(self, size=-1):
        data = self._stream.read(size)
        self.count += len(data)
        if self._progress is not None and (
            self.count - self._reported >= PROGRESS_STEP or not data
        ):
            self._reported = self.count
            self._progress("gather", self.count, self._total)
        return data


def _describe(save):
    if "index.json" not in save.members:
        return "docker-save"
    for image in save.images:
        if any(layer.member.compression for layer in image.layers):
            return "docker25-containerd"
    return "docker25-classic"


class OCIBuildManager:
    """Build an OCI image (the part after ``docker build``).

    :param builder: the `lpbuildd.builder.Builder` whose file cache
        receives the results.
    :param backend: runs commands where the image was built and reads
        its files (``run``, ``path_exists``, ``listdir``, ``copy_out``),
        as launchpad-buildd's backends do.
    :param name: the image's name, as given to ``docker build``.
    :param build_dir: where the build's temporary files go.
    :param upload_format: "oci" to file an OCI upload, as Launchpad
        asks; otherwise the legacy files.
    :param progress: optional callable(phase, done_bytes, total_bytes).
    """

    def __init__(
        self,
        builder,
        backend,
        name,
        build_dir,
        upload_format="legacy",
        progress=None,
    ):
        self._builder = builder
        self.backend = backend
        self.name = name
        self.build_dir = build_dir
        self.upload_format = upload_format
        self.progress = progress

    def _getLayerSources(self, save):
        """Find the repositories that the image's pulled layers came from.

        Docker's classic image store records them per diff_id under
        `image/<storage driver>/distribution/v2metadata-by-diffid`, for
        whichever storage driver it uses; the containerd image store
        labels the blobs it pulled.  These are hints for registry
        uploads, so anything unreadable is passed over.
        """
        sources = {}
        diff_ids = {
            layer.member.diff_id
            for image in save.images
            for layer in image.layers
        }
        image_path = "/var/lib/docker/image"
        drivers = []
        if self.backend.path_exists(image_path):
            drivers = self.backend.listdir(image_path)
        sha_directory = tempfile.mkdtemp(dir=self.build_dir)
        try:
            for driver in sorted(drivers):
                sha_path = os.path.join(
                    image_path,
                    driver,
                    "distribution/v2metadata-by-diffid/sha256",
                )
                if not self.backend.path_exists(sha_path):
                    continue
                for name in self.backend.listdir(sha_path):
                    diff_id = f"sha256:{name}"
                    if name not in diff_ids or diff_id in sources:
                        continue
                    local_path = os.path.join(sha_directory, name)
                    self.backend.copy_out(
                        os.path.join(sha_path, name), local_path
                    )
                    try:
                        with open(local_path) as diff_fp:
                            # The first entry is the most parent image.
                            source = json.load(diff_fp)[0]["SourceRepository"]
                    except (ValueError, LookupError, TypeError):
                        continue
                    if isinstance(source, str) and source:
                        sources[diff_id] = source
        finally:
            shutil.rmtree(sha_directory)
        if any(
            layer.member.compression is not None
            for image in save.images
            for layer in image.layers
        ):
            sources.update(self._getContainerdSources())
        return sources

    def _getContainerdSources(self):
        """Read the containerd image store's labels of pulled blobs."""
        try:
            listing = self.backend.run(
                ["ctr", "--namespace", "moby", "content", "ls"],
                get_output=True,
            ).decode("UTF-8", "replace")
        except Exception as e:
            self._builder.log(f"Cannot list containerd's content: {e}\n")
            return {}
        return parse_containerd_sources(listing)

    def gatherResults(self):
        """Gather the results of the build and add them to the file cache.

        `docker save` is read as it streams, verified, and laid out as
        the files Launchpad fetches: an OCI upload if Launchpad asked
        for one, otherwise `manifest.json`, `digests.json`, the configs
        and `<layer_id>.tar.gz` files.

        :return: A `GatherSummary` (harness only).
        :raises OCIGatherError: with a one-line reason; nothing is filed
            and no temporary file is left behind.
        """
        extract_path = tempfile.mkdtemp(prefix="gather-", dir=self.build_dir)
        try:
            proc = self.backend.run(
                ["docker", "save", self.name],
                get_output=True,
                return_process=True,
            )
            stdout = _ProgressReader(proc.stdout, self.progress, None)
            try:
                save = read_docker_save(
                    stdout,
                    extract_path,
                    keep_compressed=self.upload_format == "oci",
                    log=lambda line: self._builder.log(f"{line}\n"),
                )
            except DockerSaveError as e:
                raise OCIGatherError(
                    f"cannot gather 'docker save' output: {e}"
                ) from e
            finally:
                proc.stdout.close()
                returncode = proc.wait()
            if returncode != 0:
                raise OCIGatherError(
                    f"'docker save {self.name}' failed with status "
                    f"{returncode}"
                )
            sources = self._getLayerSources(save)
            if self.upload_format == "oci":
                files = write_oci_upload(save, extract_path, sources)
            else:
                files = write_legacy_upload(save, extract_path, sources)
            checkpoint("gather.commit")
            filed = {}
            for name, path in files:
                filed[name] = self._builder.addWaitingFile(path, name=name)
                checkpoint("gather.blob")
            return GatherSummary(
                format=_describe(save),
                upload_format=self.upload_format,
                images=tuple(_summarise(image) for image in save.images),
                files=filed,
                bytes_in=stdout.count,
                bytes_out=sum(os.path.getsize(path) for _, path in files),
            )
        finally:
            shutil.rmtree(extract_path, ignore_errors=True)


def _summarise(image):
    layers = []
    for layer in image.layers:
        member = layer.member
        descriptor = Descriptor(
            LAYER_MEDIA_TYPES[member.filed_compression],
            Digest("sha256", member.filed_sha256),
            member.filed_size,
        )
        layers.append(LayerSummary(descriptor, Digest.parse(layer.diff_id)))
    return ImageSummary(
        Digest.parse(image.config_digest),
        image.platform,
        tuple(layers),
        tuple(filter(None, map(_normalised_name, image.repo_tags))),
    )


def _normalised_name(text):
    """``docker.io/library/x:latest`` for ``x``, as `gather` and `fetch`
    name images; None for a name that is not a valid reference."""
    try:
        repository, tag = parse_reference(text, "name")
    except CorruptArchive:
        return None
    return ":".join(part for part in (repository, tag) if part)
