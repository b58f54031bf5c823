# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Fuzzing support: mutations of valid archives, and the fuzzing budget.

The hypothesis suites (``test_fuzz`` on each side) and the atheris
harnesses (``fuzz/`` at the top of the tree) share these: every
mutation takes `rng`, a `random.Random` whose choices come from
hypothesis (``st.randoms()``, shrinkable) or from the coverage-guided
fuzzer's input, and starts from a valid archive the test archive
builder makes in code (`base_archives`).

Kinds of mutation (`MUTATIONS`):

* ``documents``: structured or byte-level mutations of JSON members
  (`ocitypes.testing.mutate_json`), blobs re-pointed with
  `replace_blob` most of the time so that the mutation gets past the
  digest checks into the parsing behind them;
* ``members``: members removed, duplicated, reordered, renamed,
  replaced by links, or added;
* ``headers``: bytes of tar header blocks, checksum fixed most of the
  time;
* ``streams``: bytes anywhere in outer- or layer-compressed archives,
  and truncation.

`BytesRandom` turns a fuzzer's input into the choices of `rng`.
`fuzz_settings` is the budget: small and derandomized for CI, scaled by
``LP_OCI_FUZZ_SCALE`` (``make fuzz``), with fresh randomness when
``LP_OCI_FUZZ_RANDOM`` is set.
"""

__all__ = [
    "BytesRandom",
    "MUTATIONS",
    "base_archives",
    "fuzz_settings",
    "mutate_archive",
    "mutate_json_members",
]

import functools
import json
import os
import random

from lpbuildd.tests.archivebuilder import (
    docker25_classic,
    docker25_containerd,
    kaniko_tarball,
    legacy_docker_save,
    make_image,
    make_layer,
    nested_index_archive,
    oci_archive,
    podman_docker_archive,
    replace_blob,
)
from ocitypes.testing import mutate_json, mutate_json_bytes


class BytesRandom(random.Random):
    """A `random.Random` whose every choice consumes the given bytes.

    The atheris harnesses drive the mutations with it, so that the
    coverage-guided fuzzer steers each choice through its input; past
    the end of the input, choices come from a generator seeded with the
    input (never a constant, which would make rejection sampling such
    as `sample` loop for ever).
    """

    def __init__(self, data):
        self._data = bytes(data)
        self._position = 0
        self._rest = random.Random(self._data)
        super().__init__(0)

    def seed(self, *args, **kwargs):
        pass

    def getrandbits(self, k):
        n = (k + 7) // 8
        if self._position + n > len(self._data):
            return self._rest.getrandbits(k)
        chunk = self._data[self._position : self._position + n]
        self._position += n
        return int.from_bytes(chunk, "little") & ((1 << k) - 1)

    def random(self):
        return self.getrandbits(53) / (1 << 53)


def fuzz_settings(max_examples):
    """Hypothesis settings for a fuzz test of `max_examples` in CI.

    Derandomized (the same examples every run, so CI is deterministic)
    unless ``LP_OCI_FUZZ_RANDOM`` is set; ``LP_OCI_FUZZ_SCALE``
    multiplies the number of examples.  No deadline: time is bounded
    by the readers' own limits, which the tests check by outcome.
    """
    from hypothesis import HealthCheck, settings

    scale = float(os.environ.get("LP_OCI_FUZZ_SCALE", "1"))
    return settings(
        max_examples=max(1, int(max_examples * scale)),
        derandomize=not os.environ.get("LP_OCI_FUZZ_RANDOM"),
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
    )


@functools.lru_cache(maxsize=None)
def _base_builders():
    image = make_image(layers=[make_layer(seed=1), make_layer(seed=2)])
    arm = make_image(
        layers=[make_layer(seed=3)], architecture="arm64", variant="v8"
    )
    return (
        legacy_docker_save([image, arm]),
        podman_docker_archive(image),
        kaniko_tarball(image),
        docker25_classic(image),
        docker25_containerd(image),
        oci_archive(image, layer_compression="zstd"),
        nested_index_archive(2, image=arm),
    )


def base_archives():
    """Valid archives of every format, as fresh `ArchiveBuilder`s."""
    return [builder.copy() for builder in _base_builders()]


@functools.lru_cache(maxsize=None)
def _compressed_bases():
    image = make_image(layers=[make_layer(seed=1)])
    return tuple(
        [
            legacy_docker_save(image).to_bytes(outer)
            for outer in ("gzip", "xz", "zstd")
        ]
        + [
            oci_archive(image, layer_compression=kind).to_bytes()
            for kind in ("gzip", "zstd")
        ]
    )


def _is_json(data):
    return data[:1] in (b"{", b"[")


def mutate_json_members(rng, builder):
    """Mutate one to three JSON members of `builder`, in place."""
    for _ in range(rng.randint(1, 3)):
        documents = [
            name
            for name in builder.names()
            if builder.get_info(name).isfile() and _is_json(builder.get(name))
        ]
        if not documents:
            break
        name = rng.choice(documents)
        data = builder.get(name)
        try:
            doc = json.loads(data)
        except ValueError:
            # Mutated already.
            doc = None
        if doc is not None and rng.random() < 0.7:
            data = json.dumps(mutate_json(rng, doc)).encode()
        else:
            data = mutate_json_bytes(rng, data)
        if name.startswith("blobs/sha256/") and rng.random() < 0.8:
            # Keep every reference consistent, to get past the digest
            # checks into the parsing behind them.
            replace_blob(builder, "sha256:" + name[13:], data)
        else:
            builder.replace(name, data)


def mutate_documents(rng, builder):
    """Mutate one to three JSON members of `builder`; return its bytes."""
    mutate_json_members(rng, builder)
    return builder.to_bytes()


def mutate_members(rng, builder):
    """Remove, duplicate, reorder, rename or link members; return bytes."""
    for _ in range(rng.randint(1, 3)):
        names = [n for n in builder.names() if builder.get_info(n).isfile()]
        name = rng.choice(names)
        action = rng.randrange(7)
        if action == 0:
            builder.remove(name)
        elif action == 1:
            builder.add_file(name, rng.choice([builder.get(name), b"", b"{}"]))
        elif action == 2:
            builder.move_to_front(name)
        elif action == 3:
            builder.rename(
                name,
                rng.choice(
                    [
                        "../" + name,
                        "/" + name,
                        name + "/x",
                        "./" + name,
                        name.upper(),
                        "blobs/sha256/" + "0" * 64,
                    ]
                ),
            )
        elif action == 4:
            data = builder.get(name)
            builder.remove(name)
            target = rng.choice([n for n in names if n != name] or [name])
            if rng.random() < 0.5:
                builder.add_symlink(
                    name,
                    os.path.relpath(target, os.path.dirname(name) or "."),
                )
            else:
                builder.add_hardlink(name, target)
            builder.add_file(name + ".orig", data)
        elif action == 5:
            builder.add_file(
                rng.choice(
                    ["index.json", "manifest.json", "repositories", "x/json"]
                ),
                rng.randbytes(rng.randrange(100)),
            )
        else:
            builder.move_to_end(name)
    return builder.to_bytes()


_HEADER_BYTES = (
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
)


def mutate_headers(rng, builder):
    """Mutate bytes inside tar header blocks; return the archive bytes."""
    data = bytearray(builder.to_bytes())
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
        data[start + offset] = (
            rng.choice(_HEADER_BYTES)
            if rng.random() < 0.8
            else rng.randrange(256)
        )
        if rng.random() < 0.7:
            # Past the checksum, into the fields behind it.
            block = data[start : start + 512]
            block[148:156] = b" " * 8
            data[start + 148 : start + 156] = b"%06o\0 " % sum(block)
    return bytes(data)


def mutate_streams(rng, builder):
    """Damage a compressed archive (outer or layers); return its bytes."""
    data = bytearray(rng.choice(_compressed_bases()))
    for _ in range(rng.randint(1, 3)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    if rng.random() < 0.3:
        data = data[: rng.randrange(len(data))]
    return bytes(data)


MUTATIONS = {
    "documents": mutate_documents,
    "members": mutate_members,
    "headers": mutate_headers,
    "streams": mutate_streams,
}


def mutate_archive(rng, kind=None):
    """A mutated archive (bytes) of a base chosen by `rng`.

    :param kind: one of `MUTATIONS`, or None for one chosen by `rng`.
    """
    kind = kind or rng.choice(sorted(MUTATIONS))
    builder = rng.choice(base_archives())
    return MUTATIONS[kind](rng, builder)
