# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Benchmark the patched launchpad-buildd's gatherResults (a report).

``python -m bench.upstream`` (``make bench``) measures what a builder
running launchpad-buildd with the project's patch series
(``upstream/launchpad-buildd/``) does after ``docker build``:
``OCIBuildManager.gatherResults``, reading ``docker save`` from a pipe
and filing every file in a real file cache, in both output modes:
``legacy`` (the files today's Launchpad reads) and ``oci`` (the OCI
upload).  It runs the series' own code, applied with ``git am`` to the
launchpad-buildd snapshot in ``../shared/upstream`` (cached under
``.bench/upstream/``), with the interpreter of launchpad-buildd's test
environment that ``make upstream-check`` builds
(``.venv-upstream/buildd``, made if missing by ``upstream/check
--buildd-python``; ``$LP_OCI_UPSTREAM_PYTHON`` overrides it).

The image is `bench.gather`'s 1.2 GB four-layer image, saved as Docker
24 does, as Docker 25+ with the classic store (uncompressed layers) and
as Docker 25+ with the containerd store (gzip layers, written here as
``containerd.tar`` beside the others).  In the same run, `lp-oci gather`
reads each archive file (its fastest input) and writes an OCI upload;
the target is the patched gatherResults within 1.5x of that.

The patch may only use the standard library's zlib (see the cover
letter), while `lp-oci gather` uses ISA-L: so the report also gives the
zlib floor, the CPU time of the compression or decompression the run
cannot avoid (deflate level 1 and two sha256 passes for uncompressed
layers; inflate and two sha256 passes for gzip layers), spread
perfectly over the CPUs.

Results go to ``.bench/upstream.json``; ``--check`` exits 1 if a
target is missed.
"""

__all__ = ["main"]

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

from bench import gather as gather_bench
from bench.common import (
    MB,
    ROOT,
    default_bench_dir,
    log,
    machine,
    run_and_report,
    table_lines,
    target_recorder,
    warm,
)
from lpbuildd.tests.archivebuilder import docker25_containerd

CHUNK = 1 << 20
SNAPSHOT = "launchpad-buildd-55908e2.tar.gz"
FORMATS = ("docker24", "docker25", "containerd")
MODES = ("legacy", "oci")
TARGET_RATIO = 1.5
CHILD = os.path.join(ROOT, "bench", "upstream_gather_child.py")


def upstream_dir():
    return os.environ.get(
        "LP_OCI_UPSTREAM_DIR",
        os.path.join(os.path.dirname(ROOT), "shared", "upstream"),
    )


def series_paths():
    series = os.path.join(ROOT, "upstream", "launchpad-buildd")
    return sorted(
        os.path.join(series, name)
        for name in os.listdir(series)
        if name.endswith(".patch") and not name.startswith("0000-")
    )


def patched_tree(bench_dir):
    """launchpad-buildd with the series applied, built once per series."""
    digest = hashlib.sha256()
    for path in series_paths():
        with open(path, "rb") as f:
            digest.update(f.read())
    tree = os.path.join(
        bench_dir, "upstream", f"launchpad-buildd-{digest.hexdigest()[:12]}"
    )
    if os.path.isdir(tree):
        return tree
    os.makedirs(os.path.dirname(tree), exist_ok=True)
    parent = tempfile.mkdtemp(dir=os.path.dirname(tree))
    try:
        with tarfile.open(os.path.join(upstream_dir(), SNAPSHOT)) as tar:
            tar.extractall(parent, filter="data")
        work = os.path.join(parent, "launchpad-buildd")
        git = ["git", "-c", "user.name=bench", "-c", "user.email=b@invalid"]
        for args in (
            ["init", "-q"],
            ["add", "-A"],
            ["commit", "-qm", "base"],
            ["am", "-q"] + series_paths(),
        ):
            subprocess.run(git + args, cwd=work, check=True)
        os.rename(work, tree)
    finally:
        shutil.rmtree(parent, ignore_errors=True)
    return tree


def upstream_python():
    """launchpad-buildd's test interpreter, as make upstream-check makes it."""
    python = os.environ.get("LP_OCI_UPSTREAM_PYTHON")
    if python:
        return python
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "upstream", "check"),
            "--buildd-python",
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"bench.upstream: {result.stderr.strip()}")
    return result.stdout.strip()


def containerd_archive(image, workdir):
    path = os.path.join(workdir, "containerd.tar")
    if not os.path.exists(path):
        archive = docker25_containerd(image.archive_image(gzip_layers=True))
        archive.write(path + ".tmp")
        os.replace(path + ".tmp", path)
    return path


def _patched_once(python, tree, archive, mode):
    workdir = tempfile.mkdtemp(prefix="bench-upstream-")
    try:
        os.sync()
        wall, rss, output, cpu = gather_bench._run_measured(
            [python, CHILD, tree, archive, mode, workdir], with_cpu=True
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result = json.loads(output)
    result.update(wall=wall, rss=rss, cpu=cpu)
    return result


def _floor_layer(layer, compressed):
    started = time.thread_time()
    raw, out = hashlib.sha256(), hashlib.sha256()
    codec = zlib.decompressobj(31) if compressed else zlib.compressobj(1)
    path = layer["gz_path"] if compressed else layer["path"]
    with open(path, "rb", buffering=0) as f:
        for data in iter(lambda: f.read(CHUNK), b""):
            raw.update(data)
            if compressed:
                out.update(codec.decompress(data))
            else:
                out.update(codec.compress(data))
    return time.thread_time() - started


def zlib_floor(image, compressed):
    """CPU seconds of the unavoidable zlib work, and that over all CPUs."""
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        cpu = sum(
            pool.map(
                lambda layer: _floor_layer(layer, compressed), image.layers
            )
        )
    return {"cpu": cpu, "wall": cpu / (os.cpu_count() or 1)}


def run_benchmark(args):
    bench_dir = os.path.abspath(args.dir)
    python = upstream_python()
    tree = patched_tree(bench_dir)
    variant = "quick" if args.quick else "full"
    workdir = os.path.join(bench_dir, variant)
    image = gather_bench.build_image(workdir, variant)
    archives = {
        "docker24": gather_bench.archive_path(workdir, "docker24"),
        "docker25": gather_bench.archive_path(workdir, "docker25"),
        "containerd": containerd_archive(image, workdir),
    }
    runs = args.runs or (1 if args.quick else 3)
    targets = []
    target = target_recorder(targets)
    results = {
        "variant": variant,
        "image_bytes": image.size,
        "machine": machine(),
        "formats": {},
        "targets": targets,
    }
    for fmt in args.formats.split(","):
        archive = archives[fmt]
        size = os.path.getsize(archive)
        warm(archive)
        entry = {"archive_bytes": size}
        gathers = []
        for _ in range(runs):
            outdir = os.path.join(bench_dir, "out", "gather")
            shutil.rmtree(outdir, ignore_errors=True)
            os.makedirs(os.path.dirname(outdir), exist_ok=True)
            gathers.append(gather_bench._gather_once(archive, outdir, None))
        entry["lp_oci_gather"] = statistics.median(r["wall"] for r in gathers)
        for mode in MODES:
            measured = [
                _patched_once(python, tree, archive, mode) for _ in range(runs)
            ]
            wall = statistics.median(r["wall"] for r in measured)
            entry[mode] = {
                "wall": wall,
                "walls": [r["wall"] for r in measured],
                "gather_seconds": statistics.median(
                    r["seconds"] for r in measured
                ),
                "cpu": statistics.median(r["cpu"] for r in measured),
                "peak_rss": max(r["rss"] for r in measured),
                "bytes_filed": measured[-1]["bytes_filed"],
                "files": len(measured[-1]["files"]),
                "ratio": wall / entry["lp_oci_gather"],
            }
            target(
                f"patched gatherResults ({fmt}, {mode}) / lp-oci gather",
                round(entry[mode]["ratio"], 2),
                f"<= {TARGET_RATIO}",
                entry[mode]["ratio"] <= TARGET_RATIO,
                "x",
            )
        entry["zlib_floor"] = zlib_floor(image, compressed=fmt == "containerd")
        results["formats"][fmt] = entry
        log(
            f"{fmt}: lp-oci gather {entry['lp_oci_gather']:.2f} s, "
            + ", ".join(f"{m} {entry[m]['wall']:.2f} s" for m in MODES)
        )
    return results


def format_report(results):
    lines = [
        f"Patched launchpad-buildd gatherResults vs lp-oci gather "
        f"({results['image_bytes'] / MB:.0f} MB image, "
        f"{results['machine'].get('cpus')} CPUs)",
        "",
    ]
    rows = []
    for fmt, entry in results["formats"].items():
        for mode in MODES:
            row = entry[mode]
            rows.append(
                (
                    fmt,
                    mode,
                    f"{row['wall']:.2f}",
                    f"{entry['lp_oci_gather']:.2f}",
                    f"{row['ratio']:.2f}x",
                    f"{entry['zlib_floor']['wall']:.2f}",
                    f"{row['cpu']:.1f}",
                    f"{row['peak_rss'] / MB:.0f}",
                    f"{row['bytes_filed'] / MB:.0f}",
                )
            )
    lines += table_lines(
        (
            "archive",
            "mode",
            "patched s",
            "lp-oci gather s",
            "ratio",
            "zlib floor s",
            "CPU s",
            "RSS MB",
            "filed MB",
        ),
        rows,
        left=2,
    )
    lines.append("")
    for t in results["targets"]:
        status = "PASS" if t["pass"] else "FAIL"
        lines.append(
            f"{status}  {t['name']}: {t['value']}{t['unit']} "
            f"(target {t['goal']})"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m bench.upstream",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--dir", default=default_bench_dir())
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if args.json is None:
        args.json = os.path.join(args.dir, "upstream.json")
    os.makedirs(args.dir, exist_ok=True)
    status = run_and_report(run_benchmark, format_report, args)
    if args.check:
        with open(args.json) as f:
            if not all(t["pass"] for t in json.load(f)["targets"]):
                return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
