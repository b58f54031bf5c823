# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""``lp-oci run --registry`` SIGKILLed at seeded checkpoints, then rerun.

A clean traced run lists the checkpoints a run reaches
(`ocitypes.faultpoint`, ``$LP_OCI_FAULTPOINT_TRACE``) in four phases:
gather (the builder writing its upload), fetch (the build farm
collecting it), upload (the librarian storing, upload processing) and
push (the registry upload).  Each scenario takes a new image (one layer
shared with every other, two of its own), picks a phase in turn and a
checkpoint occurrence within it with a seeded RNG, runs ``lp-oci run``
with ``LP_OCI_FAULTPOINT=NAME:N`` so that the process SIGKILLs itself
there, then reruns without the fault.  After every rerun: it succeeded,
no traceback anywhere, the state holds (`state_problems`: no stuck
build, no FULLYBUILT build with a missing or corrupt blob, no debris),
``lp-oci verify --json`` finds nothing, and the registry's tag points at
nothing missing (`registry_problems`).

``LP_OCI_FAULTS_SEED`` and ``LP_OCI_FAULTS_KILLS`` change the seed
(default 20261130) and the number of scenarios (default 22).
"""

__all__ = []

import json
import os
import random
import signal
import subprocess
import sys

from fixtures import TempDir

from lp.testing import TestCase
from lp.testing.layers import RegistryLayer
from lpbuildd.tests.archivebuilder import (
    docker25_classic,
    make_image,
    make_layer,
)
from ocitypes.testing import tool_missing
from tests.faults.invariants import (
    append_report,
    registry_problems,
    state_problems,
    verify_problems,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))

PHASES = {
    "gather": ("gather.",),
    "fetch": ("fetch.", "run."),
    "upload": ("librarian.", "upload."),
    "push": ("push.",),
}
IMAGE = "faults/killed"
TAG = "edge"


def child_env(**extra):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LP_DATABASE", "LP_LIBRARIAN", "LP_OCI_"))
    }
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [os.path.join(ROOT, "lib"), env.get("PYTHONPATH")])
    )
    env.update(extra)
    return env


def phase_of(name):
    for phase, prefixes in PHASES.items():
        if name.startswith(prefixes):
            return phase
    return None


def occurrences(trace):
    """``[(phase, name, n)]``: the n-th time ``name`` was reached."""
    counts = {}
    points = []
    for name in trace:
        counts[name] = counts.get(name, 0) + 1
        points.append((phase_of(name), name, counts[name]))
    return points


class TestKillPoints(TestCase):
    layer = RegistryLayer

    def setUp(self):
        super().setUp()
        if RegistryLayer.anonymous is None:
            tool_missing(self, "docker-registry is not installed")
        self.registry = RegistryLayer.anonymous
        self.tmp = self.useFixture(TempDir()).path
        self.state = os.path.join(self.tmp, "var")

    def archive(self, seed):
        path = os.path.join(self.tmp, f"image-{seed}.tar")
        image = make_image(
            layers=[
                make_layer(seed=7000),
                make_layer(seed=seed),
                make_layer(seed=seed + 50000),
            ],
            tags=("faults/app:1",),
        )
        docker25_classic([image]).write(path)
        return path

    def run_lp_oci(self, archive, **env):
        return subprocess.run(
            [sys.executable, "-m", "lpoci.cli", "run", archive]
            + ["--state", self.state, "--json"]
            + ["--registry", self.registry.url, "--image", IMAGE],
            capture_output=True,
            text=True,
            env=child_env(**env),
            timeout=180,
        )

    def test_killed_at_seeded_points_then_rerun(self):
        seed = int(os.environ.get("LP_OCI_FAULTS_SEED", "20261130"))
        kills = int(os.environ.get("LP_OCI_FAULTS_KILLS", "22"))
        rng = random.Random(seed)
        trace_path = os.path.join(self.tmp, "trace")
        # The second run is the reference: its shared layer is stored,
        # as it is for every scenario.
        for i, env in enumerate(({}, {"LP_OCI_FAULTPOINT_TRACE": trace_path})):
            clean = self.run_lp_oci(self.archive(1 + i), **env)
            self.assertEqual(0, clean.returncode, clean.stderr)
        with open(trace_path) as f:
            points = occurrences(f.read().split())
        by_phase = {
            phase: [p for p in points if p[0] == phase] for phase in PHASES
        }
        for phase, found in by_phase.items():
            self.assertNotEqual([], found, f"no {phase} checkpoint reached")
        figures = {
            "suite": "kill-points",
            "seed": seed,
            "kills": 0,
            "not_reached": 0,
            "reruns_ok": 0,
            "unhandled_exceptions": 0,
            "problems": [],
            "points": [],
        }
        phases = list(PHASES)
        for i in range(kills):
            phase = phases[i % len(phases)]
            _, name, n = rng.choice(by_phase[phase])
            archive = self.archive(100 + i)
            killed = self.run_lp_oci(archive, LP_OCI_FAULTPOINT=f"{name}:{n}")
            figures["points"].append(f"{name}:{n}")
            if killed.returncode == -signal.SIGKILL:
                figures["kills"] += 1
            else:
                # Not reached this time (timing, reuse): a clean run.
                figures["not_reached"] += 1
                self.assertEqual(0, killed.returncode, killed.stderr)
            rerun = self.run_lp_oci(archive)
            for result in (killed, rerun):
                if "Traceback" in result.stderr or (
                    "internal error" in result.stderr
                ):
                    figures["unhandled_exceptions"] += 1
            problems = []
            if rerun.returncode != 0:
                problems.append(f"rerun failed: {rerun.stderr.strip()}")
            else:
                figures["reruns_ok"] += 1
                report = json.loads(rerun.stdout)
                self.assertIn("registry", report)
            problems += state_problems(self.state)
            problems += verify_problems(self.state, child_env())
            problems += registry_problems(self.registry.url, IMAGE, TAG)
            figures["problems"] += [f"{name}:{n}: {p}" for p in problems]
        append_report(figures)
        self.assertEqual([], figures["problems"])
        self.assertEqual(0, figures["unhandled_exceptions"])
        self.assertGreaterEqual(figures["kills"], 20, figures["points"])

    def test_killed_push_resumed_by_run_jobs(self):
        # Killed while pushing: the job was RUNNING; run-jobs queues it
        # again and completes it.
        archive = self.archive(1)
        killed = self.run_lp_oci(archive, LP_OCI_FAULTPOINT="push.blob:2")
        self.assertEqual(-signal.SIGKILL, killed.returncode)
        jobs = subprocess.run(
            [sys.executable, "-m", "lpoci.cli", "run-jobs", "--json"]
            + ["--state", self.state],
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=180,
        )
        self.assertEqual(0, jobs.returncode, jobs.stderr)
        ((job),) = json.loads(jobs.stdout)["jobs"]
        self.assertEqual("COMPLETED", job["status"])
        self.assertEqual([], registry_problems(self.registry.url, IMAGE, TAG))
        # The build the killed run left UPLOADING-complete stays
        # FULLYBUILT: only its push was interrupted.
        problems = state_problems(self.state)
        self.assertEqual([], problems)
