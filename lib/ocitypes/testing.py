# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Test data about the shared value types, for both sides' tests.

Hostile digests and JSON documents that every reader of OCI content must
refuse, and mutations of valid JSON documents for the fuzzers; the
builder's archive builder and fuzzers and Launchpad's upload tests and
fuzzers use them alike.  And `tool_missing`, which every test that
needs an outside tool calls when the tool is not there.
"""

__all__ = [
    "HOSTILE_JSON_VALUES",
    "JSON_KEYS",
    "MALFORMED_DIGESTS",
    "REQUIRE_TOOLS",
    "big_json",
    "deep_json",
    "json_nodes",
    "mutate_json",
    "mutate_json_bytes",
    "tool_missing",
]

import copy
import hashlib
import json
import os

_HEX = hashlib.sha256(b"x").hexdigest()

# Where this environment variable is "1" (``.ci/run`` sets it), a test
# that needs an outside tool (skopeo, docker-registry, Chromium, a tmpfs
# mount) fails when the tool is missing instead of being skipped.
REQUIRE_TOOLS = "LP_OCI_REQUIRE_TOOLS"


def tool_missing(test, reason):
    """Skip ``test``, which needs a tool that is missing (``reason`` says
    which), or fail it where ``$LP_OCI_REQUIRE_TOOLS`` is ``1``."""
    if os.environ.get(REQUIRE_TOOLS) == "1":
        test.fail(f"{reason} and {REQUIRE_TOOLS}=1")
    test.skipTest(reason)


def _json(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


MALFORMED_DIGESTS = (
    "sha256:XYZ",
    "md5:d41d8cd98f00b204e9800998ecf8427e",
    "sha256:" + _HEX.upper(),
    "sha256:" + _HEX[:-1],
    "sha256:" + _HEX + "0",
    "sha256:../../../etc/passwd",
    "sha256:" + _HEX[:32] + "/" + _HEX[33:],
    "SHA256:" + _HEX,
    "sha256" + _HEX,
    "sha256:",
    ":" + _HEX,
    "",
)
"""Digest strings a reader must refuse (OCI image-spec "Digests")."""


def deep_json(depth):
    """``[[[...]]]`` nested `depth` deep (valid JSON)."""
    return b"[" * depth + b"]" * depth


def big_json(nbytes, base=None, key="padding"):
    """A valid JSON document of exactly `nbytes` bytes.

    `base` (default ``{}``) is padded with a string under `key`; if it is
    a list, its first element (a dict) gets the padding, so
    ``big_json(n, base=[{"Config": "x.json", "Layers": []}])`` still
    looks like a manifest.json.
    """
    base = copy.deepcopy({} if base is None else base)
    target = base[0] if isinstance(base, list) else base
    target[key] = ""
    overhead = len(_json(base))
    if nbytes < overhead:
        raise ValueError("%d bytes is too small" % nbytes)
    target[key] = "a" * (nbytes - overhead)
    return _json(base)


# Fuzzing: mutations of valid JSON documents, for both sides' fuzzers.
# Every function takes `rng`, a `random.Random` (hypothesis' `randoms()`
# or the atheris driver's, whose choices come from the fuzzer's input),
# so the same mutations serve the seeded, the hypothesis and the
# coverage-guided runs.

HOSTILE_JSON_VALUES = (
    None,
    0,
    -1,
    2**53,
    2**64,
    -(2**63),
    10**40,
    1.5,
    1e308,
    True,
    "",
    "x" * 3000,
    "\ud800",
    "\x00",
    "a\nb: forged",
    "\x1b[2J",
    "../../etc/passwd",
    "/abs",
    "sha256:" + "0" * 64,
    "sha256:" + _HEX,
    "sha512:" + "0" * 128,
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    [],
    {},
    [None],
    [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
    {"digest": "sha256:" + "1" * 64, "size": 1, "mediaType": "x"},
    {"os": "linux", "architecture": "arm64", "variant": "v\x00"},
    {"os": "", "architecture": ""},
    {"": ""},
) + MALFORMED_DIGESTS
"""Values that readers of OCI JSON must survive in any position."""

JSON_KEYS = (
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
    "schemaVersion",
    "os",
    "architecture",
    "variant",
    "rootfs",
    "diff_ids",
    "type",
    "Config",
    "RepoTags",
    "Layers",
    "LayerSources",
    "Parent",
    "layer_id",
    "imageLayoutVersion",
    "org.opencontainers.image.ref.name",
    "io.containerd.image.name",
    "com.canonical.launchpad.oci.layer-source-repositories",
    "com.canonical.launchpad.oci.layer-sources",
    "vnd.docker.reference.type",
    "vnd.docker.reference.digest",
)
"""Keys the documents of both sides use, to add where they are absent."""


def json_nodes(value):
    """Every dict and list in a parsed JSON value, iteratively."""
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


def _digests(value):
    return [
        node
        for node in json_nodes(value)
        if isinstance(node, dict) and isinstance(node.get("digest"), str)
    ]


def mutate_json(rng, doc):
    """One structured mutation of a parsed JSON document; returns it.

    Wrong types, missing keys, huge numbers, deep nesting, bad digests,
    swapped references and fan-out, at a node chosen by `rng`.
    """
    nodes = json_nodes(doc)
    if not nodes:
        return rng.choice(HOSTILE_JSON_VALUES)
    node = rng.choice(nodes)
    action = rng.randrange(8)
    if action == 0 and len(_digests(doc)) >= 2:
        # Point one descriptor at another's content (a real digest of
        # the wrong kind or size).
        first, second = rng.sample(_digests(doc), 2)
        first["digest"], second["digest"] = second["digest"], first["digest"]
    elif action == 1 and isinstance(node, list) and node:
        # Fan-out: one element many times (duplicates, amplification).
        node.extend([node[rng.randrange(len(node))]] * rng.choice((1, 2, 500)))
    elif action == 2:
        value = copy.deepcopy(doc)
        for _ in range(rng.choice((2, 40, 70))):
            value = [value]
        replacement = value
        _replace_somewhere(rng, node, replacement)
    elif isinstance(node, dict):
        if action == 3 and node:
            del node[rng.choice(sorted(node))]
        elif action in (4, 5) and node:
            node[rng.choice(sorted(node))] = copy.deepcopy(
                rng.choice(HOSTILE_JSON_VALUES)
            )
        else:
            node[rng.choice(JSON_KEYS)] = copy.deepcopy(
                rng.choice(HOSTILE_JSON_VALUES)
            )
    elif node and action in (3, 4):
        del node[rng.randrange(len(node)) :]
    else:
        _replace_somewhere(
            rng, node, copy.deepcopy(rng.choice(HOSTILE_JSON_VALUES))
        )
    return doc


def _replace_somewhere(rng, node, value):
    if isinstance(node, dict):
        key = rng.choice(sorted(node) or list(JSON_KEYS))
        node[key] = value
    elif node and rng.random() < 0.5:
        node[rng.randrange(len(node))] = value
    else:
        node.append(value)


_RAW_INSERTS = (
    b'"schemaVersion":2,',
    b'"mediaType":"x",',
    b"1e400",
    b"9" * 5000,
    b"-0",
    b"NaN",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"\\ud800",
    b"\x00",
    b"[" * 70,
    b"{" * 30,
    b'"',
    b",",
)


def mutate_json_bytes(rng, data):
    """One byte-level mutation of a serialised JSON document."""
    data = bytearray(data)
    action = rng.randrange(5)
    if action == 0 and data:
        data[rng.randrange(len(data))] = rng.randrange(256)
    elif action == 1 and data:
        del data[rng.randrange(len(data)) :]
    elif action == 2 and data.startswith(b"{"):
        # A duplicate key, or any other insertion after the brace.
        data[1:1] = rng.choice(_RAW_INSERTS[:2])
    elif action == 3 and data:
        at = rng.randrange(len(data) + 1)
        data[at:at] = rng.choice(_RAW_INSERTS)
    else:
        data[rng.randrange(len(data) + 1) :] = rng.randbytes(rng.randrange(64))
    return bytes(data)
