# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Reduce zope.testrunner output to one line: "N passed, M failed".

Usage: summarise_testrunner.py LOG RUNNER_EXIT_STATUS

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
"""

import re
import sys

__all__ = ["summarise"]

ANSI = re.compile(r"\x1b\[[0-9;]*m")
COUNTS = (
    r"(?P<tests>\d+) tests?(?:,| with) (?P<failures>\d+) failures?,"
    r" (?P<errors>\d+) errors?(?:(?:,| and) (?P<skipped>\d+) skipped)?"
)
TOTAL = re.compile(r"^Total: " + COUNTS)
RAN = re.compile(r"^\s*Ran " + COUNTS)
IMPORT_PROBLEMS = "Test-modules with import problems:"
IMPORT_FAILURE = re.compile(r"^Module: (\S+)")


def _counts(match):
    return [
        int(match.group(name) or 0)
        for name in ("tests", "failures", "errors", "skipped")
    ]


def summarise(lines, status):
    """Return (summary line, exit status) for the runner's output lines."""
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
    line = "%d passed, %d failed" % (passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    return line, 1 if bad else 0


def main():
    log, status = sys.argv[1], int(sys.argv[2])
    with open(log, errors="replace") as f:
        line, exit_status = summarise(f, status)
    print(line)
    return exit_status


if __name__ == "__main__":
    sys.exit(main())
