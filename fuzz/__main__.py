# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Run the fuzzers for a while and report what they found.

    python -m fuzz [--seconds N] [--hypothesis-scale S] [TARGET...]

Each target (default: all of `TARGETS`) runs in its own process for
``N / len(targets)`` seconds (``N`` defaults to ``$FUZZ_SECONDS``, else
180), with libFuzzer's memory (2 GiB) and per-input time (60 s) limits,
starting from `seeds()` plus what earlier runs kept in
``.fuzz/corpus/<target>/``.  Crashing inputs are written to
``.fuzz/crashes/<target>/``.  Prints one line per target (executions,
executions per second, coverage, crashes) and writes
``.fuzz/results.json``; exits 1 if any target crashed.

Then, unless ``--hypothesis-scale 0``, the hypothesis suites
(`HYPOTHESIS_SUITES`) run through ``bin/test`` with ``S`` times their
CI budget of examples (``$FUZZ_SCALE``, else 20) and fresh randomness;
their examples are counted from the tests' settings (hypothesis runs
exactly that many unless a test fails).
"""

__all__ = [
    "main",
]

import argparse
import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timezone

from fuzz import TARGETS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATE = os.path.join(ROOT, ".fuzz")
RSS_LIMIT_MB = 2048
TIMEOUT_SECONDS = 60
MAX_LEN = 1 << 18


def _env():
    path = [os.path.join(ROOT, "lib"), ROOT]
    if os.environ.get("PYTHONPATH"):
        path.append(os.environ["PYTHONPATH"])
    return dict(os.environ, PYTHONPATH=os.pathsep.join(path))


def _write_seeds(target, corpus):
    """Put the target's seeds in its corpus directory (generated, never
    committed)."""
    os.makedirs(corpus, exist_ok=True)
    code = (
        "import hashlib, os, sys\n"
        f"from fuzz.{target} import seeds\n"
        "for data in seeds():\n"
        "    name = 'seed-' + hashlib.sha1(data).hexdigest()\n"
        "    with open(os.path.join(sys.argv[1], name), 'wb') as f:\n"
        "        f.write(data)\n"
    )
    subprocess.run(
        [sys.executable, "-c", code, corpus], env=_env(), check=True
    )


def _stat(output, name):
    match = re.search(rf"^stat::{name}:\s*(\d+)", output, re.M)
    if match:
        return int(match.group(1))
    return None


def run_target(target, seconds):
    corpus = os.path.join(STATE, "corpus", target)
    crashes = os.path.join(STATE, "crashes", target)
    os.makedirs(crashes, exist_ok=True)
    _write_seeds(target, corpus)
    log_path = os.path.join(STATE, f"{target}.log")
    started = time.monotonic()
    with open(log_path, "w") as log:
        process = subprocess.run(
            [
                sys.executable,
                "-m",
                f"fuzz.{target}",
                corpus,
                f"-max_total_time={seconds}",
                f"-rss_limit_mb={RSS_LIMIT_MB}",
                f"-timeout={TIMEOUT_SECONDS}",
                f"-max_len={MAX_LEN}",
                f"-artifact_prefix={crashes}/",
                "-print_final_stats=1",
            ],
            cwd=ROOT,
            env=_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    with open(log_path) as f:
        output = f.read()
    executions = _stat(output, "number_of_executed_units")
    if executions is None:
        # A crash ends the run before the final statistics.
        runs = re.findall(r"^#(\d+)\s", output, re.M)
        executions = int(runs[-1]) if runs else 0
    coverage = re.findall(r"\bcov: (\d+)", output)
    crashed = process.returncode != 0
    excerpt = []
    if crashed:
        lines = output.splitlines()
        for i, line in enumerate(lines):
            if "Uncaught Python exception" in line or "ERROR:" in line:
                excerpt = lines[i : i + 40]
                break
        excerpt = excerpt or lines[-40:]
    return {
        "target": target,
        "seconds": round(time.monotonic() - started, 1),
        "executions": executions,
        "coverage": int(coverage[-1]) if coverage else 0,
        "peak_rss_mb": _stat(output, "peak_rss_mb"),
        "slowest_input_seconds": _stat(output, "slowest_unit_time_sec"),
        "crashes": 1 if crashed else 0,
        "exit_status": process.returncode,
        "log": os.path.relpath(log_path, ROOT),
        "excerpt": excerpt,
    }


HYPOTHESIS_SUITES = (
    "lpbuildd.ociimage.tests.test_fuzz",
    "lpoci.tests.test_gather_fuzz",
    "lp.oci.tests.test_ociupload_fuzz",
    "lp.oci.tests.test_ociregistry_fuzz",
)


def _hypothesis_env(scale):
    return dict(_env(), LP_OCI_FUZZ_SCALE=str(scale), LP_OCI_FUZZ_RANDOM="1")


def count_examples(scale):
    """{suite: examples} from the hypothesis tests' settings at `scale`."""
    code = (
        "import importlib, inspect, json, sys, unittest\n"
        "counts = {}\n"
        "for name in sys.argv[1:]:\n"
        "    module = importlib.import_module(name)\n"
        "    total = 0\n"
        "    for _, cls in inspect.getmembers(module, inspect.isclass):\n"
        "        if cls.__module__ != name or not issubclass(\n"
        "            cls, unittest.TestCase\n"
        "        ):\n"
        "            continue\n"
        "        for _, f in inspect.getmembers(cls, callable):\n"
        "            s = getattr(f, '_hypothesis_internal_use_settings', 0)\n"
        "            if getattr(f, 'is_hypothesis_test', False) and s:\n"
        "                total += s.max_examples\n"
        "    counts[name] = total\n"
        "print(json.dumps(counts))\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", code, *HYPOTHESIS_SUITES],
        env=_hypothesis_env(scale),
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.splitlines()[-1])


def run_hypothesis(scale):
    counts = count_examples(scale)
    log_path = os.path.join(STATE, "hypothesis.log")
    started = time.monotonic()
    pattern = "|".join(name.rsplit(".", 1)[1] for name in HYPOTHESIS_SUITES)
    with open(log_path, "w") as log:
        process = subprocess.run(
            [os.path.join(ROOT, "bin", "test"), "-t", pattern],
            cwd=ROOT,
            env=_hypothesis_env(scale),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    with open(log_path) as f:
        output = f.read()
    failed = re.findall(r"^(?:Failure|Error) in test (\S+)", output, re.M)
    return {
        "scale": scale,
        "examples": counts,
        "seconds": round(time.monotonic() - started, 1),
        "failed_tests": failed,
        "exit_status": process.returncode,
        "log": os.path.relpath(log_path, ROOT),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fuzz")
    parser.add_argument(
        "--seconds",
        type=int,
        default=int(os.environ.get("FUZZ_SECONDS") or 180),
        help="total time for all targets (default $FUZZ_SECONDS or 180)",
    )
    parser.add_argument(
        "--hypothesis-scale",
        type=float,
        default=float(os.environ.get("FUZZ_SCALE") or 20),
        help="examples of the hypothesis suites, in multiples of their CI "
        "budget (default $FUZZ_SCALE or 20; 0 skips them)",
    )
    parser.add_argument("targets", nargs="*", metavar="TARGET")
    args = parser.parse_args(argv)
    targets = args.targets or list(TARGETS)
    unknown = set(targets) - set(TARGETS)
    if unknown:
        parser.error(
            f"unknown targets {sorted(unknown)}; choose from {TARGETS}"
        )
    each = max(1, args.seconds // len(targets))
    results = []
    for target in targets:
        print(f"fuzz: {target} for {each} s ...", flush=True)
        result = run_target(target, each)
        results.append(result)
        for line in result["excerpt"]:
            print(f"  {line}")
        print(
            f"fuzz: {target}: {result['executions']} executions "
            f"({result['executions'] / max(result['seconds'], 1):.0f}/s), "
            f"coverage {result['coverage']}, peak RSS "
            f"{result['peak_rss_mb']} MB, slowest input "
            f"{result['slowest_input_seconds']} s, "
            f"crashes {result['crashes']}"
            + (f" (see {result['log']})" if result["crashes"] else ""),
            flush=True,
        )
    total = sum(r["executions"] for r in results)
    crashes = sum(r["crashes"] for r in results)
    print(f"fuzz: atheris total: {total} executions, {crashes} crashes")
    hypothesis = None
    if args.hypothesis_scale > 0:
        print(
            f"fuzz: hypothesis suites at {args.hypothesis_scale:g}x ...",
            flush=True,
        )
        hypothesis = run_hypothesis(args.hypothesis_scale)
        for suite, examples in hypothesis["examples"].items():
            print(f"fuzz: hypothesis: {suite}: {examples} examples")
        print(
            f"fuzz: hypothesis total: "
            f"{sum(hypothesis['examples'].values())} examples in "
            f"{hypothesis['seconds']:.0f} s, "
            f"{len(hypothesis['failed_tests'])} failing tests"
            + (
                f" ({', '.join(hypothesis['failed_tests'])}; see "
                f"{hypothesis['log']})"
                if hypothesis["exit_status"]
                else ""
            )
        )
    os.makedirs(STATE, exist_ok=True)
    with open(os.path.join(STATE, "results.json"), "w") as f:
        json.dump(
            {
                "date": datetime.now(timezone.utc).isoformat(
                    timespec="seconds"
                ),
                "targets": results,
                "executions": total,
                "crashes": crashes,
                "hypothesis": hypothesis,
            },
            f,
            indent=2,
        )
    return 1 if crashes or (hypothesis and hypothesis["exit_status"]) else 0


if __name__ == "__main__":
    sys.exit(main())
