# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""What the benchmarks share: targets, results, the machine, the cache."""

__all__ = [
    "MB",
    "default_bench_dir",
    "log",
    "machine",
    "run_and_report",
    "target_recorder",
    "warm",
]

import json
import os
import platform
import subprocess
import sys
import time

MB = 1000 * 1000
CHUNK = 1 << 20

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def memory():
    """This process's (VmRSS, VmHWM) in bytes, from /proc."""
    values = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return values.get("VmRSS"), values.get("VmHWM")


def child_env():
    """The environment for a child that must run this checkout's code."""
    path = os.environ.get("PYTHONPATH")
    return dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            filter(None, [os.path.join(ROOT, "lib"), ROOT, path])
        ),
    )


def default_bench_dir():
    """``.bench/`` at the top of the tree (git-ignored)."""
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(os.path.dirname(here), ".bench")


def log(message):
    print(message, file=sys.stderr, flush=True)


def warm(path):
    """Read a file once so that it sits in the page cache."""
    with open(path, "rb", buffering=0) as f:
        buffer = bytearray(8 * CHUNK)
        while f.readinto(buffer):
            pass


def evict(path):
    """Drop a file's pages from the page cache, so that the next read
    comes from the disk (no root needed: the file is ours and clean once
    synced)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def machine():
    """What the figures depend on: CPUs, versions, load."""
    model = ""
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and not model:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = line
    except OSError:
        pass
    try:
        skopeo = subprocess.run(
            ["skopeo", "--version"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        skopeo = None
    try:
        from isal import __version__ as isal_version
    except ImportError:
        isal_version = None
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "sha_ni": " sha_ni" in flags,
        "python": platform.python_version(),
        "skopeo": skopeo,
        "isal": isal_version,
        "load_average": os.getloadavg(),
    }


def target_recorder(targets):
    """A function that appends one PASS/FAIL target to `targets`."""

    def target(name, value, goal, ok, unit=""):
        targets.append(
            {
                "name": name,
                "value": value,
                "goal": goal,
                "unit": unit,
                "pass": bool(ok),
            }
        )

    return target


def run_and_report(run_benchmark, format_report, args):
    """Run a benchmark, write its JSON atomically and print the report."""
    started = time.monotonic()
    results = run_benchmark(args)
    results["total_seconds"] = time.monotonic() - started
    with open(args.json + ".tmp", "w") as f:
        json.dump(results, f, indent=1)
    os.replace(args.json + ".tmp", args.json)
    print(format_report(results))
    print(f"\nResults written to {args.json}", flush=True)
    return 0


def table_lines(header, rows, left=1):
    """A text table: `header`, a rule, then `rows`, columns aligned.

    The first `left` columns are left-aligned, the others right-aligned
    (numbers); cells may be any value.
    """
    rows = [tuple(str(cell) for cell in row) for row in [header] + rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    rows.insert(1, tuple("-" * w for w in widths))
    return [
        "  ".join(
            cell.ljust(w) if i < left else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths))
        )
        for row in rows
    ]
