# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Test data about the shared value types, for both sides' tests.

Hostile digests and JSON documents that every reader of OCI content must
refuse; the builder's archive builder and Launchpad's upload tests use
them alike.
"""

__all__ = [
    "MALFORMED_DIGESTS",
    "big_json",
    "deep_json",
]

import copy
import hashlib
import json

_HEX = hashlib.sha256(b"x").hexdigest()


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
