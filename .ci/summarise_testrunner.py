# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Reduce zope.testrunner output to one line: "N passed, M failed".

Usage: summarise_testrunner.py LOG RUNNER_EXIT_STATUS [UPSTREAM_LOG STATUS]

The counts come from the runner's own summary: the last "Total: N tests,
F failures, E errors and S skipped" line when several layers ran, otherwise
the sum of the per-layer "Ran N tests with F failures, E errors and S
skipped" lines.

Modules that failed to import ("Test-module import failures", listed again
under "Test-modules with import problems") are counted by zope.testrunner in
the errors of the Total line and of every layer's Ran line, but not in the
tests; so each counts as one failure here and is not subtracted from passed:

  passed = tests - failures - (errors - import failures) - skipped
  failed = failures + errors
The line is printed last; the exit status is 1 if anything failed, no test
ran, or the runner itself exited non-zero (then at least "1 failed" is
shown, so that a broken run can never look green).

With UPSTREAM_LOG, the output of "make upstream-check" and its exit status,
the counts of its last "upstream-check: N passed, M failed" line are added
in (its "upstream-check: skipped: ..." line adds nothing); a log with
neither line, or a non-zero status, counts as at least one failure and
makes the exit status 1.
"""

import re
import sys

__all__ = ["summarise", "summarise_upstream"]

ANSI = re.compile(r"\x1b\[[0-9;]*m")
COUNTS = (
    r"(?P<tests>\d+) tests?(?:,| with) (?P<failures>\d+) failures?,"
    r" (?P<errors>\d+) errors?(?:(?:,| and) (?P<skipped>\d+) skipped)?"
)
TOTAL = re.compile(r"^Total: " + COUNTS)
RAN = re.compile(r"^\s*Ran " + COUNTS)
IMPORT_PROBLEMS = "Test-modules with import problems:"
IMPORT_FAILURE = re.compile(r"^Module: (\S+)")
UPSTREAM_COUNTS = re.compile(
    r"^upstream-check: (?P<passed>\d+) passed, (?P<failed>\d+) failed$"
)
UPSTREAM_SKIPPED = re.compile(r"^upstream-check: skipped: .+ not found$")


def _counts(match):
    return [
        int(match.group(name) or 0)
        for name in ("tests", "failures", "errors", "skipped")
    ]


def summarise(lines, status, upstream=(0, 0, False)):
    """Return (summary line, exit status) for the runner's output lines.

    ``upstream`` is what `summarise_upstream` returns, added in.
    """
    total = None
    ran = [0, 0, 0, 0]
    ran_lines = 0
    import_failures = set()
    listed = set()
    in_problem_list = False
    for line in lines:
        line = ANSI.sub("", line.rstrip("\n"))
        match = TOTAL.match(line)
        if match:
            total = _counts(match)
        match = RAN.match(line)
        if match:
            ran = [a + b for a, b in zip(ran, _counts(match))]
            ran_lines += 1
        match = IMPORT_FAILURE.match(line)
        if match:
            import_failures.add(match.group(1))
        if line.strip() == IMPORT_PROBLEMS:
            in_problem_list = True
        elif in_problem_list:
            if line.startswith("  ") and line.strip():
                listed.add(line.strip())
            else:
                in_problem_list = False
    # The closing list is the reliable source; "Module:" headers are the
    # fallback should the list be missing.
    imports = len(listed or import_failures)
    if total is not None:
        tests, failures, errors, skipped = total
    else:
        # Each layer's Ran line repeats the import failures in its errors.
        tests, failures, errors, skipped = ran
        errors = max(errors - imports * ran_lines, 0) + imports
    errors = max(errors, imports)
    failed = failures + errors
    passed = max(tests - (failed - imports) - skipped, 0)
    bad = status != 0 or failed > 0 or tests == 0
    if bad:
        failed = max(failed, 1)
    upstream_passed, upstream_failed, upstream_bad = upstream
    passed += upstream_passed
    failed += upstream_failed
    bad = bad or upstream_bad
    line = "%d passed, %d failed" % (passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    return line, 1 if bad else 0


def summarise_upstream(lines, status):
    """(passed, failed, bad) out of "make upstream-check"'s output lines.

    The last counts line (or the skip line) is the check's own verdict;
    without either, or with a non-zero status, at least one failed.
    """
    counts = None
    for line in lines:
        line = ANSI.sub("", line.rstrip("\n"))
        match = UPSTREAM_COUNTS.match(line)
        if match:
            counts = [int(match.group("passed")), int(match.group("failed"))]
        elif UPSTREAM_SKIPPED.match(line):
            counts = [0, 0]
    bad = counts is None or status != 0 or counts[1] > 0
    passed, failed = counts or (0, 0)
    if bad:
        failed = max(failed, 1)
    return passed, failed, bad


def main():
    log, status = sys.argv[1], int(sys.argv[2])
    upstream = (0, 0, False)
    if len(sys.argv) > 3:
        upstream_status = int(sys.argv[4])
        try:
            with open(sys.argv[3], errors="replace") as f:
                upstream = summarise_upstream(f, upstream_status)
        except OSError:
            upstream = summarise_upstream([], upstream_status)
    with open(log, errors="replace") as f:
        line, exit_status = summarise(f, status, upstream)
    print(line)
    return exit_status


if __name__ == "__main__":
    sys.exit(main())
