# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Seeded fuzzing of `gather` over JSON documents, tar headers and
compressed streams.

Each test runs a fixed number of seeded random mutations of valid
archives of every format (small enough to take seconds) and asserts the
only outcomes allowed for hostile input: success, or one
`OCIContentError` (the builder's `ArchiveError`s included) with a
one-line message and nothing left behind.  Any other exception fails
the test with the mutation's seed in the message.
"""

__all__ = []

import json
import os
import random
import shutil

from lpbuildd.ociimage.tests.helpers import GatherTestCase
from lpbuildd.tests.archivebuilder import (
    docker25_classic,
    docker25_containerd,
    kaniko_tarball,
    legacy_docker_save,
    make_image,
    make_layer,
    oci_archive,
    podman_docker_archive,
    replace_blob,
)
from ocitypes.errors import OCIContentError

JSON_MUTATIONS = int(os.environ.get("LP_OCI_FUZZ_JSON", 400))
HEADER_MUTATIONS = int(os.environ.get("LP_OCI_FUZZ_HEADERS", 300))
COMPRESSED_MUTATIONS = int(os.environ.get("LP_OCI_FUZZ_COMPRESSED", 200))

_HOSTILE_VALUES = [
    None,
    0,
    -1,
    2**64,
    1.5,
    True,
    "",
    "x" * 3000,
    "\ud800",
    "a\nb: forged",
    "\x1b[2J",
    "../../etc/passwd",
    "/abs",
    "sha256:" + "0" * 64,
    "sha256:../x",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    [],
    {},
    [None],
    {"digest": "sha256:" + "1" * 64, "size": 1, "mediaType": "x"},
    {"os": "linux", "architecture": "arm64", "variant": "v\x00"},
]


def _archives():
    image = make_image(layers=[make_layer(seed=1), make_layer(seed=2)])
    return [
        legacy_docker_save(image),
        podman_docker_archive(image),
        kaniko_tarball(image),
        docker25_classic(image),
        docker25_containerd(image),
        oci_archive(image, layer_compression="zstd"),
    ]


def _nodes(value):
    """Every dict and list in a JSON value."""
    found = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            found.append(item)
            stack.extend(item)
    return found


def _mutate_value(rng, doc):
    nodes = _nodes(doc)
    if not nodes:
        return rng.choice(_HOSTILE_VALUES)
    node = rng.choice(nodes)
    if isinstance(node, dict):
        action = rng.randrange(3)
        if action == 0 and node:
            del node[rng.choice(list(node))]
        elif action == 1 and node:
            node[rng.choice(list(node))] = rng.choice(_HOSTILE_VALUES)
        else:
            key = rng.choice(
                [
                    "mediaType",
                    "digest",
                    "size",
                    "manifests",
                    "layers",
                    "config",
                    "platform",
                    "annotations",
                    "data",
                    "urls",
                    "RepoTags",
                    "Layers",
                    "Config",
                    "rootfs",
                    "os",
                    "architecture",
                    "schemaVersion",
                    "LayerSources",
                ]
            )
            node[key] = rng.choice(_HOSTILE_VALUES)
    else:
        if node and rng.random() < 0.5:
            node[rng.randrange(len(node))] = rng.choice(_HOSTILE_VALUES)
        elif node and rng.random() < 0.5:
            node.append(node[0])
        else:
            node.append(rng.choice(_HOSTILE_VALUES))
    return doc


def _mutate_bytes(rng, data):
    data = bytearray(data)
    action = rng.randrange(3)
    if action == 0 and data:
        data[rng.randrange(len(data))] = rng.randrange(256)
    elif action == 1 and data:
        del data[rng.randrange(len(data)) :]
    elif data.startswith(b"{"):
        # A duplicate key.
        data[1:1] = b'"schemaVersion":2,'
    return bytes(data)


class FuzzTestCase(GatherTestCase):
    def assertOnlyAllowedOutcomes(self, data, seed):
        outdir = self.new_outdir()
        try:
            self.gather(data, outdir=outdir)
        except OCIContentError as e:
            self.assertNotIn("\n", str(e), f"seed {seed}")
            self.assertNothingLeft()
        except Exception as e:
            self.fail(f"seed {seed}: {type(e).__name__}: {e}")
        else:
            shutil.rmtree(outdir)


class TestFuzzDocuments(FuzzTestCase):
    def test_mutated_json_documents(self):
        bases = _archives()
        rng = random.Random(2026)
        for seed in range(JSON_MUTATIONS):
            builder = rng.choice(bases).copy()
            documents = [
                name
                for name in builder.names()
                if builder.get(name)[:1] in (b"{", b"[")
            ]
            name = rng.choice(documents)
            data = builder.get(name)
            if rng.random() < 0.7:
                doc = _mutate_value(rng, json.loads(data))
                data = json.dumps(doc).encode()
            else:
                data = _mutate_bytes(rng, data)
            if name.startswith("blobs/sha256/") and rng.random() < 0.8:
                # Keep every reference consistent, to get past the
                # digest checks into the parsing behind them.
                replace_blob(builder, "sha256:" + name[13:], data)
            else:
                builder.replace(name, data)
            self.assertOnlyAllowedOutcomes(builder.to_bytes(), seed)


class TestFuzzHeaders(FuzzTestCase):
    def test_mutated_tar_headers(self):
        bases = [b.to_bytes() for b in _archives()]
        rng = random.Random(7)
        for seed in range(HEADER_MUTATIONS):
            data = bytearray(rng.choice(bases))
            # Mutate bytes inside some header block: find headers by
            # their magic.
            headers = [
                i - 257
                for i in range(257, len(data), 512)
                if data[i : i + 5] == b"ustar"
            ]
            for _ in range(rng.randint(1, 3)):
                start = rng.choice(headers)
                offset = rng.choice(
                    [rng.randrange(512), 124, 125, 135, 156, 148, 0, 345]
                )
                data[start + offset] = rng.choice(
                    [
                        0,
                        0x20,
                        0x30,
                        0x37,
                        0x38,
                        0x80,
                        0xFF,
                        ord("x"),
                        ord("L"),
                        ord("K"),
                        ord("S"),
                        ord("g"),
                        ord("2"),
                        ord("1"),
                        ord("5"),
                        rng.randrange(256),
                    ]
                )
                if rng.random() < 0.7:
                    # Past the checksum, into the fields behind it.
                    block = data[start : start + 512]
                    block[148:156] = b" " * 8
                    data[start + 148 : start + 156] = b"%06o\0 " % sum(block)
            self.assertOnlyAllowedOutcomes(bytes(data), seed)


class TestFuzzCompressedStreams(FuzzTestCase):
    def test_mutated_outer_and_layer_streams(self):
        image = make_image(layers=[make_layer(seed=1)])
        bases = [
            legacy_docker_save(image).to_bytes(outer)
            for outer in ("gzip", "xz", "zstd")
        ] + [
            oci_archive(image, layer_compression=kind).to_bytes()
            for kind in ("gzip", "zstd")
        ]
        rng = random.Random(11)
        for seed in range(COMPRESSED_MUTATIONS):
            data = bytearray(rng.choice(bases))
            for _ in range(rng.randint(1, 3)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            if rng.random() < 0.3:
                data = data[: rng.randrange(len(data))]
            self.assertOnlyAllowedOutcomes(bytes(data), seed)
