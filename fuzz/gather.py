# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Harness: `lp-oci gather` on mutated and raw archives.

The first byte of the input chooses: below 0xC0, the rest drives a
structured mutation of a valid archive (`mutate_archive` through
`BytesRandom`); otherwise the rest is the archive itself (the seeds are
valid archives of every format, so libFuzzer mutates real tar, gzip,
zstd and JSON bytes).  Property: exit 0 with a layout whose every blob
matches its descriptor, or exit 1 with one line ``lp-oci: error: ...``
and nothing left beside the output directory; anything else (another
exit status, a traceback, an exception) is a crash.
"""

__all__ = [
    "INSTRUMENT",
    "prepare",
    "seeds",
    "test_one_input",
]

import hashlib
import io
import json
import os
import shutil
import tempfile

INSTRUMENT = ("lpbuildd.ociimage", "ocitypes", "lpoci.cli")
RAW = 0xC0

_work = None


def prepare():
    """Import everything and make the bases before fuzzing starts."""
    global _work
    import lpoci.cli  # noqa: F401
    from lpbuildd.tests.fuzzing import base_archives

    base_archives()
    _work = tempfile.mkdtemp(prefix="fuzz-gather-")


def seeds():
    from lpbuildd.tests.fuzzing import base_archives

    return [bytes([RAW]) + b.to_bytes() for b in base_archives()] + [
        bytes([kind]) + bytes(range(64)) for kind in range(4)
    ]


def _check_layout(outdir):
    """Every blob index.json leads to matches its descriptor."""
    with open(os.path.join(outdir, "index.json"), "rb") as f:
        index = json.load(f)
    stack = list(index["manifests"])
    while stack:
        descriptor = stack.pop()
        # A kept (byte-exact) manifest's descriptors may lack mediaType:
        # `Descriptor.from_json` takes it as "" on both sides.
        media_type = descriptor.get("mediaType", "")
        if "nondistributable" in media_type:
            continue
        algorithm, hex = descriptor["digest"].split(":")
        with open(os.path.join(outdir, "blobs", algorithm, hex), "rb") as f:
            data = f.read()
        assert hashlib.new(algorithm, data).hexdigest() == hex, descriptor
        assert len(data) == descriptor["size"], descriptor
        if media_type.endswith(("manifest.v1+json", "manifest.v2+json")):
            manifest = json.loads(data)
            stack.append(manifest["config"])
            stack.extend(manifest["layers"])


def test_one_input(data):
    from lpbuildd.tests.fuzzing import MUTATIONS, BytesRandom, mutate_archive
    from lpoci.cli import main

    if _work is None:
        prepare()
    if not data:
        return
    if data[0] >= RAW:
        archive_bytes = data[1:]
    else:
        kinds = sorted(MUTATIONS)
        archive_bytes = mutate_archive(
            BytesRandom(data[1:]), kinds[data[0] % len(kinds)]
        )
    archive = os.path.join(_work, "archive")
    with open(archive, "wb") as f:
        f.write(archive_bytes)
    parent = os.path.join(_work, "out")
    os.mkdir(parent)
    outdir = os.path.join(parent, "layout")
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        status = main(
            ["gather", archive, "-o", outdir, "--jobs", "1"], stdout, stderr
        )
        if status == 0:
            _check_layout(outdir)
            shutil.rmtree(outdir)
        else:
            lines = stderr.getvalue().splitlines()
            assert status == 1, (status, lines)
            assert len(lines) == 1, lines
            assert lines[0].startswith("lp-oci: error: "), lines
        left = os.listdir(parent)
        assert not left, f"left behind: {left}"
    finally:
        shutil.rmtree(parent, ignore_errors=True)


if __name__ == "__main__":
    from fuzz.common import fuzz_main

    fuzz_main("fuzz.gather")
