# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""A small deterministic Docker 25+ ``docker save`` archive for demos.

`write_sample_archive` writes what Docker 25+ with the classic store
would save for a three-layer image: uncompressed layers, the config and
an OCI manifest under ``blobs/sha256/``, ``index.json``,
``manifest.json`` and ``oci-layout``.  Layer content is seeded text and
every mtime is 0, so the same bytes come out every time and a second
``lp-oci run --sample`` finds every layer in the librarian.
"""

__all__ = [
    "SAMPLE_IMAGE_NAME",
    "write_sample_archive",
]

import hashlib
import io
import json
import random
import tarfile

SAMPLE_IMAGE_NAME = "lp-oci/sample:latest"

# (seed, bytes of text) of each layer, bottom first.
_LAYERS = ((1, 256 * 1024), (2, 64 * 1024), (3, 4 * 1024))

_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf")


def _json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _hex(data):
    return hashlib.sha256(data).hexdigest()


def _descriptor(media_type, data, **extra):
    return (
        dict(
            mediaType=media_type, digest="sha256:" + _hex(data), size=len(data)
        )
        | extra
    )


def _tar(members):
    """An uncompressed tar of ``{name: bytes}``, deterministic."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _layer(seed, size):
    rng = random.Random(seed)
    text = " ".join(rng.choice(_WORDS) for _ in range(size // 5))
    return _tar({f"layer{seed}/data.txt": text.encode()[:size]})


def write_sample_archive(path, name=SAMPLE_IMAGE_NAME):
    """Write the sample archive to ``path``; return ``path``."""
    layers = [_layer(seed, size) for seed, size in _LAYERS]
    config = _json(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {
                "type": "layers",
                "diff_ids": ["sha256:" + _hex(layer) for layer in layers],
            },
        }
    )
    layer_type = "application/vnd.oci.image.layer.v1.tar"
    manifest = _json(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": _descriptor(
                "application/vnd.oci.image.config.v1+json", config
            ),
            "layers": [_descriptor(layer_type, layer) for layer in layers],
        }
    )
    repository, tag = name.rsplit(":", 1)
    index = _json(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                _descriptor(
                    "application/vnd.oci.image.manifest.v1+json",
                    manifest,
                    annotations={
                        "io.containerd.image.name": (
                            f"docker.io/{repository}:{tag}"
                        ),
                        "org.opencontainers.image.ref.name": tag,
                    },
                )
            ],
        }
    )
    docker_manifest = _json(
        [
            {
                "Config": "blobs/sha256/" + _hex(config),
                "RepoTags": [name],
                "Layers": ["blobs/sha256/" + _hex(layer) for layer in layers],
            }
        ]
    )
    members = {"blobs/sha256/" + _hex(blob): blob for blob in layers}
    members["blobs/sha256/" + _hex(config)] = config
    members["blobs/sha256/" + _hex(manifest)] = manifest
    members["index.json"] = index
    members["manifest.json"] = docker_manifest
    members["oci-layout"] = _json({"imageLayoutVersion": "1.0.0"})
    with open(path, "wb") as f:
        f.write(_tar(members))
    return path
