# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Benchmark the archive downloads of a build (a report, not a test).

``python -m bench.export`` takes the cached synthetic Docker 25 archive
of `bench.gather` (about 1.2 GB in four layers; built if missing, or
the one ``--archive`` names), stores it as a build with ``lp-oci run``
in a state directory under ``.bench/export/`` (kept between runs with
``--keep``), then, in a child process so that its peak RSS is its own:

* the *limit*: every blob of the build read straight from its librarian
  file (1 MiB ``readinto``, page cache warm) and written to /dev/null;
* the *export*: `IOCIArchive.iterBytes` of the OCI and of the Docker
  archive written to /dev/null, as a web server would send it;
* a range: the last MiB of the Docker archive (time to produce it).

Each is timed three times, alternating; medians are reported.  Targets
(issue 11): export throughput at least 0.8 of the limit, peak RSS of the
child under 100 MB.  Results go to ``.bench/results-export.json``
(``results-export-quick.json`` for ``--quick``, the ~300 MB image).
"""

__all__ = [
    "main",
]

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

from bench import common
from bench import gather as gather_bench

MB = common.MB
CHUNK = 1 << 20
TARGET_RATIO = 0.8
TARGET_PEAK_RSS = 100 * MB
REPEATS = 3
ROOT = common.ROOT


def _store_build(archive, state_dir):
    """Run ``lp-oci run ARCHIVE``; return the build's id."""
    common.log(f"storing {os.path.basename(archive)} with lp-oci run ...")
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lpoci.cli",
            "run",
            archive,
            "--state",
            state_dir,
            "--json",
        ],
        capture_output=True,
        env=common.child_env(),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"lp-oci run failed: {proc.stderr.decode()}")
    common.log(f"stored in {time.monotonic() - started:.1f} s")
    return json.loads(proc.stdout)["build_id"]


def _export_child(state_dir, build_id):
    """Time the limit and the exports; print one JSON document."""
    from zope.component import getUtility

    from lp.oci.interfaces.ociarchive import IOCIArchiveSet, OCIArchiveFormat
    from lp.oci.interfaces.ocirecipebuild import IOCIRecipeBuildSet
    from lp.services.librarian.storage import get_librarian_storage
    from lp.services.scripts import setup_services

    rss_start, _ = common.memory()
    setup_services(state_dir)
    rss_services, _ = common.memory()
    build = getUtility(IOCIRecipeBuildSet).getByID(int(build_id))
    archives = {
        format.name.lower(): getUtility(IOCIArchiveSet).getArchive(
            build, format
        )
        for format in (OCIArchiveFormat.OCI, OCIArchiveFormat.DOCKER)
    }
    storage = get_librarian_storage()
    blobs = []
    for image in archives["oci"].images:
        for descriptor in (image.manifest, image.config, *image.layers):
            path = storage.getPath(descriptor.digest.hex)
            if path not in blobs:
                blobs.append(path)
    blob_bytes = sum(os.path.getsize(p) for p in blobs)
    for path in blobs:
        common.warm(path)
    rss_before, _ = common.memory()
    buffer = bytearray(CHUNK)

    def limit(sink):
        for path in blobs:
            with open(path, "rb", buffering=0) as f:
                while True:
                    n = f.readinto(buffer)
                    if not n:
                        break
                    sink.write(memoryview(buffer)[:n])
        return blob_bytes

    def export(format):
        def run(sink):
            archive = archives[format]
            produced = 0
            for chunk in archive.iterBytes():
                sink.write(chunk)
                produced += len(chunk)
            if produced != archive.size:
                raise RuntimeError(
                    f"{format} export produced {produced} bytes, "
                    f"not {archive.size}"
                )
            return produced

        return run

    runs = {"limit": limit, "oci": export("oci"), "docker": export("docker")}
    times = {name: [] for name in runs}
    sizes = {}
    with open(os.devnull, "wb", buffering=0) as sink:
        for _ in range(REPEATS):
            for name, run in runs.items():
                started = time.perf_counter()
                sizes[name] = run(sink)
                times[name].append(time.perf_counter() - started)
        docker = archives["docker"]
        started = time.perf_counter()
        tail = sum(
            len(c) for c in docker.iterBytes(docker.size - CHUNK, docker.size)
        )
        range_seconds = time.perf_counter() - started
    rss_after, peak = common.memory()
    result = {
        "blob_bytes": blob_bytes,
        "sizes": sizes,
        "seconds": {name: statistics.median(t) for name, t in times.items()},
        "all_seconds": times,
        "range_last_mib_seconds": range_seconds,
        "range_bytes": tail,
        "rss_start": rss_start,
        "rss_services": rss_services,
        "rss_before": rss_before,
        "rss_after": rss_after,
        "vm_hwm": peak,
    }
    result["mb_per_s"] = {
        name: sizes[name] / result["seconds"][name] / MB for name in runs
    }
    result["ratio"] = {
        name: result["mb_per_s"][name] / result["mb_per_s"]["limit"]
        for name in ("oci", "docker")
    }
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


def run_benchmark(args):
    bench_dir = os.path.abspath(args.dir)
    variant = "quick" if args.quick else "full"
    if args.archive:
        archive = os.path.abspath(args.archive)
    else:
        workdir = os.path.join(bench_dir, variant)
        gather_bench.build_image(workdir, variant)
        archive = gather_bench.archive_path(workdir, "docker25")
    export_dir = os.path.join(bench_dir, "export")
    state_dir = os.path.join(export_dir, f"state-{variant}")
    id_file = os.path.join(state_dir, "bench-build-id")
    if not os.path.exists(id_file):
        shutil.rmtree(state_dir, ignore_errors=True)
        os.makedirs(state_dir)
        build_id = _store_build(archive, state_dir)
        with open(id_file, "w") as f:
            f.write(str(build_id))
    with open(id_file) as f:
        build_id = f.read().strip()
    common.log("timing the limit and the exports ...")
    proc = subprocess.run(
        [sys.executable, "-m", "bench.export", "--export-child"]
        + [state_dir, build_id],
        capture_output=True,
        env=common.child_env(),
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the export child failed: {proc.stderr.decode()}")
    child = json.loads(proc.stdout)
    if not args.keep:
        shutil.rmtree(state_dir, ignore_errors=True)
    results = {
        "variant": variant,
        "machine": common.machine(),
        "archive": archive,
        "export": child,
    }
    targets = []
    target = common.target_recorder(targets)
    for name in ("oci", "docker"):
        ratio = child["ratio"][name]
        target(
            f"{name} export throughput / blob read limit",
            round(ratio, 3),
            f">= {TARGET_RATIO}",
            ratio >= TARGET_RATIO,
        )
    target(
        "export peak RSS",
        round(child["vm_hwm"] / MB, 1),
        f"< {TARGET_PEAK_RSS / MB:.0f}",
        child["vm_hwm"] < TARGET_PEAK_RSS,
        "MB",
    )
    results["targets"] = targets
    results["machine"]["load_average_end"] = os.getloadavg()
    return results


def _format_report(results):
    child = results["export"]
    lines = [
        f"export benchmark ({results['variant']}): "
        f"{child['blob_bytes'] / MB:.0f} MB of blobs, "
        f"load {results['machine']['load_average'][0]:.2f}",
    ]
    for name in ("limit", "oci", "docker"):
        lines.append(
            f"  {name:>6}: {child['sizes'][name] / MB:8.1f} MB in "
            f"{child['seconds'][name]:.2f} s = "
            f"{child['mb_per_s'][name]:.0f} MB/s"
        )
    lines.append(
        f"  last MiB of the docker archive: "
        f"{child['range_last_mib_seconds'] * 1000:.1f} ms"
    )
    lines.append(
        f"  child RSS {child['rss_start'] / MB:.1f} MB at start, "
        f"{child['rss_services'] / MB:.1f} MB with the services, "
        f"{child['rss_before'] / MB:.1f} MB before, "
        f"{child['rss_after'] / MB:.1f} MB after, "
        f"peak {child['vm_hwm'] / MB:.1f} MB"
    )
    for t in results["targets"]:
        lines.append(
            f"{'PASS' if t['pass'] else 'FAIL'}  {t['name']}: "
            f"{t['value']}{t['unit']} (target {t['goal']})"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m bench.export",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--quick", action="store_true", help="the ~300 MB image"
    )
    parser.add_argument(
        "--archive", help="a Docker archive to store instead of the cached one"
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the state directory (reused by the next run)",
    )
    parser.add_argument(
        "--dir", default=common.default_bench_dir(), help="cache directory"
    )
    parser.add_argument("--json", default=None, help="results file")
    parser.add_argument(
        "--export-child",
        nargs=2,
        metavar=("STATE", "BUILD_ID"),
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args(argv)
    if args.export_child:
        return _export_child(*args.export_child)
    if args.json is None:
        name = (
            "results-export-quick.json"
            if args.quick
            else "results-export.json"
        )
        args.json = os.path.join(args.dir, name)
    os.makedirs(args.dir, exist_ok=True)
    return common.run_and_report(run_benchmark, _format_report, args)


if __name__ == "__main__":
    sys.exit(main())
