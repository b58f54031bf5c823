# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The project's patch series against upstream, read without upstream.

Used by ``upstream/check`` (which applies the series to upstream's trees)
and by ``tests/architecture/test_upstream_series.py`` (which needs no
upstream tree).  Standard library only.

A series lives in ``upstream/<project>/``: ``0000-cover-letter.patch`` and
``0001-*.patch``, ``0002-*.patch``, ... as ``git format-patch
--cover-letter`` writes them.
"""

import email.parser
import email.policy
import os
import re
from dataclasses import dataclass

__all__ = [
    "COVER_LETTER",
    "PROJECTS",
    "Project",
    "added_paths",
    "check_series",
    "read_series",
]

COVER_LETTER = "0000-cover-letter.patch"
PLACEHOLDERS = ("*** SUBJECT HERE ***", "*** BLURB HERE ***")
# The first line of every file git format-patch writes.
MBOX_FROM = re.compile(rb"^From [0-9a-f]{40} Mon Sep 17 00:00:00 2001$")
PATCH_NAME = re.compile(r"^(\d{4})-.+\.patch$")
NUMBERED = re.compile(r"\[PATCH[^\]]*?\b(\d+)/(\d+)\]")
DIFF_GIT = re.compile(r"^diff --git a/(.+) b/(.+)$")


@dataclass(frozen=True)
class Project:
    """One upstream project the project carries a patch series against."""

    name: str
    # The tarball in the upstream directory: "<name>-<short commit>.tar.gz".
    tarball: re.Pattern
    # The folder at the top of the tarball.
    top: str
    # Where upstream keeps the modules the project also carries, and where
    # the project keeps its copies of them.
    upstream_prefix: str
    project_prefix: str
    # The top-level package whose imports are checked against the tree.
    package: str
    # Where that package's top folder is, relative to the tree's root.
    package_root: str

    def project_path(self, path):
        """The project's copy of an upstream module the series adds, or None.

        Only Python modules outside ``tests`` directories are copies.
        """
        if not path.startswith(self.upstream_prefix):
            return None
        if not path.endswith(".py") or "tests" in path.split("/")[:-1]:
            return None
        return self.project_prefix + path[len(self.upstream_prefix) :]


PROJECTS = [
    Project(
        name="launchpad-buildd",
        tarball=re.compile(r"^launchpad-buildd-[0-9a-f]+\.tar\.gz$"),
        top="launchpad-buildd",
        upstream_prefix="lpbuildd/",
        project_prefix="lib/lpbuildd/",
        package="lpbuildd",
        package_root="",
    ),
    Project(
        name="launchpad",
        tarball=re.compile(r"^launchpad-[0-9a-f]+\.tar\.gz$"),
        top="launchpad",
        upstream_prefix="lib/lp/",
        project_prefix="lib/lp/",
        package="lp",
        package_root="lib",
    ),
]


def read_series(series_dir):
    """Return (cover letter path or None, [patch paths in name order]).

    A missing directory is an empty series.
    """
    try:
        names = sorted(
            n for n in os.listdir(series_dir) if n.endswith(".patch")
        )
    except FileNotFoundError:
        return None, []
    cover = None
    patches = []
    for name in names:
        path = os.path.join(series_dir, name)
        if name == COVER_LETTER:
            cover = path
        else:
            patches.append(path)
    return cover, patches


def _headers(path):
    """The first line and the mail headers of a format-patch file."""
    with open(path, "rb") as f:
        first = f.readline().rstrip(b"\n")
        parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
        headers = parser.parse(f)
    return first, headers


def _subject(headers):
    # Folded subjects come back with their line breaks; unfold them.
    return re.sub(r"\s*\n\s*", " ", str(headers.get("Subject", "")))


def check_series(cover, patches):
    """Problems with a series' files as ``git format-patch`` files.

    Each patch must be a format-patch file (the "From <sha>" line, From and
    Subject headers, a diff), numbered 0001 on without gaps; the cover
    letter must be there when patches are, filled in, and count as many
    patches as there are.
    """
    problems = []
    if not patches:
        if cover:
            problems.append(f"{os.path.basename(cover)}: no patches follow it")
        return problems
    if cover is None:
        problems.append(f"{COVER_LETTER} is missing")
    counts = set()
    for number, path in enumerate(patches, 1):
        name = os.path.basename(path)
        match = PATCH_NAME.match(name)
        if not match or int(match.group(1)) != number:
            problems.append(f"{name}: expected a name starting {number:04d}-")
        first, headers = _headers(path)
        if not MBOX_FROM.match(first):
            problems.append(f"{name}: not a git format-patch file")
            continue
        for header in ("From", "Subject"):
            if not headers.get(header):
                problems.append(f"{name}: no {header} header")
        counted = NUMBERED.search(_subject(headers))
        if counted:
            counts.add(int(counted.group(2)))
            if int(counted.group(1)) != number:
                problems.append(
                    f"{name}: Subject numbers it {counted.group(1)},"
                    f" not {number}"
                )
        with open(path, "rb") as f:
            if not any(line.startswith(b"diff --git ") for line in f):
                problems.append(f"{name}: no diff in it")
    if cover is not None:
        first, headers = _headers(cover)
        if not MBOX_FROM.match(first):
            problems.append(f"{COVER_LETTER}: not a git format-patch file")
        else:
            counted = NUMBERED.search(_subject(headers))
            if counted:
                counts.add(int(counted.group(2)))
        with open(cover, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for placeholder in PLACEHOLDERS:
            if placeholder in text:
                problems.append(f"{COVER_LETTER}: still says {placeholder}")
    if counts - {len(patches)}:
        problems.append(
            f"the Subject lines count {'/'.join(map(str, sorted(counts)))}"
            f" patches, the directory holds {len(patches)}"
        )
    return problems


def added_paths(patches):
    """Paths the series adds (and does not delete again), in order."""
    added = {}
    for path in patches:
        current = None
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                line = line.rstrip("\n")
                match = DIFF_GIT.match(line)
                if match:
                    current = match.group(2)
                elif current and line.startswith("new file mode "):
                    added[current] = None
                elif current and line.startswith("deleted file mode "):
                    added.pop(current, None)
                elif line.startswith("@@") or line.startswith("GIT binary"):
                    current = None
    return list(added)
