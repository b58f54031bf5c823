# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The patch series in upstream/ add the project's modules byte for byte.

Where a patch of ``upstream/launchpad-buildd/`` adds a module under
``lpbuildd/`` (or one of ``upstream/launchpad/`` adds one under
``lib/lp/``), tests/ directories and non-Python files aside, the project's
``lib/lpbuildd/...`` (``lib/lp/...``) is that module.  Each such module is
rebuilt from the series alone: ``git apply --include=<path>`` of every
patch in order onto an empty repository, so no upstream tree is needed
(``make upstream-check`` does the same after a full ``git am`` on
upstream's snapshot).  The series' files must also be ``git format-patch``
files with a filled-in cover letter.

The tests run on a small series made here too, so that a mismatch, a
missing copy and a bad cover letter are seen to fail.
"""

__all__ = []

import importlib.util
import os
import subprocess
import sys

from fixtures import TempDir
from testtools import TestCase

ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)
SERIES_DIR = os.path.join(ROOT, "upstream")


def load_series():
    """upstream/series.py, which is not a package's module."""
    name = "upstream_series"
    if name not in sys.modules:
        path = os.path.join(SERIES_DIR, "series.py")
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        # Registered first: dataclasses looks its module up while it runs.
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


series = load_series()
GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@invalid",
}


def git(cwd, *args):
    env = dict(os.environ, **GIT_ENV)
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def copy_mismatches(project, series_dir, project_root, scratch):
    """What is wrong with the project's copies of the modules a series adds.

    Returns a list of one-line problems, empty when every copy matches.
    """
    cover, patches = series.read_series(os.path.join(series_dir, project.name))
    added = [
        path
        for path in series.added_paths(patches)
        if project.project_path(path)
    ]
    if not added:
        return []
    git(scratch, "init", "-q")
    includes = [f"--include={path}" for path in added]
    for patch in patches:
        git(scratch, "apply", *includes, patch)
    problems = []
    for path in added:
        ours = project.project_path(path)
        with open(os.path.join(scratch, path), "rb") as f:
            theirs = f.read()
        try:
            with open(os.path.join(project_root, ours), "rb") as f:
                same = f.read() == theirs
        except FileNotFoundError:
            problems.append(f"{path}: the project has no {ours}")
            continue
        if not same:
            problems.append(f"{path}: differs from the project's {ours}")
    return problems


class TestUpstreamSeries(TestCase):
    """The series in the checkout."""

    def assertSeriesHolds(self, project):
        directory = os.path.join(SERIES_DIR, project.name)
        cover, patches = series.read_series(directory)
        self.assertEqual([], series.check_series(cover, patches))
        if not patches:
            self.skipTest(f"no patches in upstream/{project.name}")
        scratch = self.useFixture(TempDir()).path
        self.assertEqual(
            [], copy_mismatches(project, SERIES_DIR, ROOT, scratch)
        )

    def test_launchpad_buildd(self):
        self.assertSeriesHolds(series.PROJECTS[0])

    def test_launchpad(self):
        self.assertSeriesHolds(series.PROJECTS[1])


class TestCopyMismatches(TestCase):
    """copy_mismatches and check_series on a series made here."""

    def setUp(self):
        super().setUp()
        self.project = series.PROJECTS[0]
        tmp = self.useFixture(TempDir()).path
        self.upstream = os.path.join(tmp, "upstream-tree")
        self.series_dir = os.path.join(tmp, "series")
        self.project_root = os.path.join(tmp, "project")
        self.scratch = os.path.join(tmp, "scratch")
        for path in (self.upstream, self.project_root, self.scratch):
            os.makedirs(path)
        self.write(self.upstream, "lpbuildd/builder.py", "old = 1\n")
        git(self.upstream, "init", "-q")
        git(self.upstream, "add", "-A")
        git(self.upstream, "commit", "-qm", "upstream")
        git(self.upstream, "tag", "upstream")
        # Added, then changed by a later patch: the copy is the final file.
        self.write(self.upstream, "lpbuildd/ociimage/layout.py", "a = 1\n")
        self.write(self.upstream, "lpbuildd/tests/test_layout.py", "t = 1\n")
        self.write(self.upstream, "lpbuildd/builder.py", "old = 2\n")
        self.commit("Add the layout reader")
        self.write(self.upstream, "lpbuildd/ociimage/layout.py", "a = 2\n")
        self.write(self.upstream, "lpbuildd/README.txt", "not Python\n")
        self.commit("Change the layout reader")
        git(
            self.upstream,
            "format-patch",
            "-q",
            "--cover-letter",
            "-o",
            os.path.join(self.series_dir, self.project.name),
            "upstream",
        )

    def write(self, root, path, text):
        path = os.path.join(root, path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)

    def commit(self, message):
        git(self.upstream, "add", "-A")
        git(self.upstream, "commit", "-qm", message)

    def mismatches(self):
        return copy_mismatches(
            self.project, self.series_dir, self.project_root, self.scratch
        )

    def test_matching_copy(self):
        self.write(
            self.project_root, "lib/lpbuildd/ociimage/layout.py", "a = 2\n"
        )
        self.assertEqual([], self.mismatches())

    def test_differing_copy(self):
        self.write(
            self.project_root, "lib/lpbuildd/ociimage/layout.py", "a = 1\n"
        )
        self.assertEqual(
            [
                "lpbuildd/ociimage/layout.py: differs from the project's"
                " lib/lpbuildd/ociimage/layout.py"
            ],
            self.mismatches(),
        )

    def test_missing_copy(self):
        self.assertEqual(
            [
                "lpbuildd/ociimage/layout.py: the project has no"
                " lib/lpbuildd/ociimage/layout.py"
            ],
            self.mismatches(),
        )

    def test_cover_letter_placeholders(self):
        cover, patches = series.read_series(
            os.path.join(self.series_dir, self.project.name)
        )
        self.assertEqual(2, len(patches))
        self.assertEqual(
            [
                "0000-cover-letter.patch: still says *** SUBJECT HERE ***",
                "0000-cover-letter.patch: still says *** BLURB HERE ***",
            ],
            series.check_series(cover, patches),
        )
        self.assertEqual(
            ["0000-cover-letter.patch is missing"],
            series.check_series(None, patches),
        )
