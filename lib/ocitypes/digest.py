# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Content digests as a checked value type.

A `Digest` is parsed once at the boundary (archive, database, builder)
and never handled as a bare string afterwards.  Only the algorithms that
registries accept are recognised, and their encoded part must be lower
case hex of the right length (OCI image-spec, "Digests").
"""

__all__ = [
    "Digest",
]

import hashlib
import re

_HEX_LENGTHS = {"sha256": 64, "sha512": 128}
_DIGEST_RE = re.compile(r"\A([a-z0-9]+):([0-9a-f]+)\Z")


class Digest:
    """An algorithm-qualified content digest, e.g. ``sha256:<hex>``."""

    __slots__ = ("algorithm", "hex")

    def __init__(self, algorithm, hex):
        length = _HEX_LENGTHS.get(algorithm)
        if length is None:
            raise ValueError(f"unsupported digest algorithm {algorithm!r}")
        if len(hex) != length or not re.fullmatch(r"[0-9a-f]+", hex):
            raise ValueError(f"malformed {algorithm} digest {hex!r}")
        object.__setattr__(self, "algorithm", algorithm)
        object.__setattr__(self, "hex", hex)

    def __setattr__(self, name, value):
        raise AttributeError("Digest is immutable")

    @classmethod
    def parse(cls, text):
        """Parse ``algorithm:hex``; raise `ValueError` if malformed."""
        if not isinstance(text, str):
            raise ValueError(f"digest must be a string, not {text!r}")
        match = _DIGEST_RE.match(text)
        if match is None:
            raise ValueError(f"malformed digest {text[:80]!r}")
        return cls(match.group(1), match.group(2))

    @classmethod
    def from_legacy(cls, text):
        """Parse a digest that may lack its ``sha256:`` prefix.

        Launchpad's `digests.json` holds bare hex for locally built
        layers and prefixed digests for pulled ones.
        """
        if isinstance(text, str) and ":" not in text:
            return cls("sha256", text)
        return cls.parse(text)

    @classmethod
    def of_bytes(cls, data):
        return cls("sha256", hashlib.sha256(data).hexdigest())

    def hasher(self):
        return hashlib.new(self.algorithm)

    def __str__(self):
        return f"{self.algorithm}:{self.hex}"

    def __repr__(self):
        return f"Digest({str(self)!r})"

    def __eq__(self, other):
        if not isinstance(other, Digest):
            return NotImplemented
        return self.algorithm == other.algorithm and self.hex == other.hex

    def __hash__(self):
        return hash((self.algorithm, self.hex))

    def __lt__(self, other):
        return str(self) < str(other)

    def __reduce__(self):
        return (Digest, (self.algorithm, self.hex))
