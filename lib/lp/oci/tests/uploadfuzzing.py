# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Fuzzing support for the Launchpad-side reader of an upload.

Valid uploads are made in code, as a builder makes them: archives from
the test archive builder read by `lpbuildd.dockersave` and filed as OCI
uploads (flat names), and legacy uploads (`legacy_upload_files`).
`mutate_upload` damages one, with the same mutations as the builder
side's fuzzers (`lpbuildd.tests.fuzzing`): JSON documents mutated
structurally or byte by byte (blobs re-pointed, most of the time, so
that the mutation reaches the parsing behind the digest checks), files
removed, emptied, truncated or corrupted, and files added.

`read_upload` reads an upload directory as the build farm and the
upload processor do before they store anything: an OCI upload with
`lp.oci.model.ocilayout.read_upload` (the layout and index, every
document checked against its descriptor) and every layer present
checked against its descriptor; or a legacy upload's manifest.json and
digests.json paired (`lp.oci.model.ociupload`).
"""

__all__ = [
    "base_uploads",
    "mutate_upload",
    "read_upload",
    "write_upload",
]

import functools
import os
import tempfile

from lp.oci.model import ocilayout
from lp.oci.model.ociupload import (
    parse_legacy_upload,
    read_json_file,
)
from lp.oci.tests.buildfarm import legacy_upload_files
from lpbuildd.dockersave import read_docker_save, write_oci_upload
from lpbuildd.tests.archivebuilder import (
    ArchiveBuilder,
    docker25_classic,
    docker25_containerd,
    make_image,
    make_layer,
)
from lpbuildd.tests.fuzzing import mutate_json_members
from ocitypes.filenames import (
    INDEX_FILE_NAME,
    LAYOUT_FILE_NAME,
    digest_from_blob_file_name,
)


def _gathered(builder):
    """The files of the OCI upload a builder files for an archive:
    {flat name: bytes}."""
    with tempfile.TemporaryDirectory() as work:
        archive = os.path.join(work, "archive.tar")
        builder.write(archive)
        save_dir = os.path.join(work, "save")
        upload = os.path.join(work, "upload")
        os.mkdir(save_dir)
        os.mkdir(upload)
        with open(archive, "rb") as f:
            save = read_docker_save(f, save_dir, keep_compressed=True, jobs=1)
        files = {}
        for name, path in write_oci_upload(save, upload):
            with open(path, "rb") as f:
                files[name] = f.read()
        return files


@functools.lru_cache(maxsize=None)
def _base_uploads():
    image = make_image(layers=[make_layer(seed=1), make_layer(seed=2)])
    arm = make_image(
        layers=[make_layer(seed=3)], architecture="arm64", variant="v8"
    )
    return (
        _gathered(docker25_classic([image, arm])),
        _gathered(docker25_containerd(image)),
        _gathered(docker25_containerd(image, layer_compression="zstd")),
        legacy_upload_files(image, pulled=(1,)),
    )


def base_uploads():
    """Valid uploads, OCI and legacy, as fresh {name: bytes} dicts."""
    return [dict(files) for files in _base_uploads()]


def _layout_name(name):
    digest = digest_from_blob_file_name(name)
    return name if digest is None else f"blobs/sha256/{digest.hex}"


def _mutate_documents(rng, files):
    """Mutate JSON files, re-pointing blobs as a layout's would be."""
    builder = ArchiveBuilder()
    for name, data in sorted(files.items()):
        builder.add_file(_layout_name(name), data)
    mutate_json_members(rng, builder)
    return {
        n.replace("/", "-") if n.startswith("blobs/") else n: builder.get(n)
        for n in builder.names()
    }


def _mutate_files(rng, files):
    """Remove, empty, truncate, corrupt or add files."""
    for _ in range(rng.randint(1, 3)):
        name = rng.choice(sorted(files))
        data = files[name]
        action = rng.randrange(5)
        if action == 0:
            del files[name]
        elif action == 1:
            files[name] = b""
        elif action == 2 and data:
            files[name] = data[: rng.randrange(len(data))]
        elif action == 3 and data:
            data = bytearray(data)
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            files[name] = bytes(data)
        else:
            files[
                rng.choice(
                    [
                        INDEX_FILE_NAME,
                        LAYOUT_FILE_NAME,
                        "digests.json",
                        "manifest.json",
                        "blobs-sha256-" + "0" * 64,
                        "blobs-sha512-" + "0" * 128,
                    ]
                )
            ] = rng.randbytes(rng.randrange(64))
    return files


def mutate_upload(rng):
    """A damaged upload: {flat name: bytes}."""
    files = rng.choice(base_uploads())
    if rng.random() < 0.75:
        files = _mutate_documents(rng, files)
    if rng.random() < 0.4:
        files = _mutate_files(rng, files)
    return files


def write_upload(files, directory):
    """Write an upload's files into `directory` (which must exist)."""
    for name, data in files.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)


def read_upload(directory):
    """Read the upload at `directory` as the build farm and the upload
    processor do; return the `OCIImageManifest`s or `LegacyImage`s.

    :raises OCILayoutError: if an OCI upload is not acceptable.
    :raises OCIUploadError: if a legacy upload is not acceptable.
    """

    def path_of(name):
        return os.path.join(directory, name)

    if os.path.isfile(path_of(INDEX_FILE_NAME)):
        manifests = ocilayout.read_upload(directory)
        for manifest in manifests:
            for layer in manifest.layers:
                path = path_of(layer.file_name)
                if os.path.exists(path):
                    ocilayout.check_file(path, layer)
        return manifests
    return parse_legacy_upload(
        read_json_file(path_of("manifest.json")),
        read_json_file(path_of("digests.json")),
    )
