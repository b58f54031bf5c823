# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Run launchpad-buildd's whole unittest suite and write each outcome.

Usage (from the root of a launchpad-buildd tree, with the interpreter of
the suite's virtualenv):

    python run_unittest.py RESULTS.json

This is what upstream runs (``python -m unittest discover -s lpbuildd -t
.``), through unittest's API so that every test id comes with its outcome:
RESULTS.json is a list of ``{"id": ..., "outcome": ...}``, the outcome one
of passed, skipped, expected_failure, failed, error, unexpected_success.
A module that fails to import is unittest's ``_FailedTest`` and counts as
an error, as do errors in class or module fixtures.  Progress goes to
stderr, verbose, as ``unittest -v`` prints it.

One shim, for both trees alike: lpbuildd's ``BuilddTestSetup`` starts
Debian's ``/usr/bin/twistd3`` (python3-twisted) under the suite's own
interpreter.  Where that file is absent, txfixtures' ``TacTestFixture`` is
given the ``twistd`` script of the interpreter's own virtualenv instead,
the same program from the Twisted the suite imports.
"""

import json
import os
import sys
import unittest

__all__ = ["main"]

DEBIAN_TWISTD = "/usr/bin/twistd3"

# Worst first: a test with several results (subtests) keeps the worst.
SEVERITY = [
    "error",
    "failed",
    "unexpected_success",
    "passed",
    "expected_failure",
    "skipped",
]


class RecordingResult(unittest.TextTestResult):
    """A verbose text result that also records one outcome per test id."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.outcomes = {}

    def _record(self, test, outcome):
        test_id = test.id()
        previous = self.outcomes.get(test_id)
        if previous is None or SEVERITY.index(outcome) < SEVERITY.index(
            previous
        ):
            self.outcomes[test_id] = outcome

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            failed = issubclass(err[0], test.failureException)
            self._record(test, "failed" if failed else "error")


def _recorder(method, outcome):
    """A TestResult method that also records ``outcome`` for the test."""
    base = getattr(unittest.TextTestResult, method)

    def record(self, test, *args):
        base(self, test, *args)
        self._record(test, outcome)

    record.__name__ = method
    return record


for _method, _outcome in (
    ("addSuccess", "passed"),
    ("addError", "error"),
    ("addFailure", "failed"),
    ("addSkip", "skipped"),
    ("addExpectedFailure", "expected_failure"),
    ("addUnexpectedSuccess", "unexpected_success"),
):
    setattr(RecordingResult, _method, _recorder(_method, _outcome))


def use_virtualenv_twistd():
    """Give TacTestFixture this interpreter's twistd for Debian's twistd3."""
    if os.path.exists(DEBIAN_TWISTD):
        return
    twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
    from txfixtures.tachandler import TacTestFixture

    set_up = TacTestFixture.setUp

    def setUp(self, *args, **kwargs):
        if kwargs.get("twistd_script") == DEBIAN_TWISTD:
            kwargs["twistd_script"] = twistd
        return set_up(self, *args, **kwargs)

    TacTestFixture.setUp = setUp


def main():
    results_path = sys.argv[1]
    root = os.getcwd()
    if root not in sys.path:
        sys.path.insert(0, root)
    use_virtualenv_twistd()
    suite = unittest.defaultTestLoader.discover("lpbuildd", top_level_dir=".")
    runner = unittest.TextTestRunner(
        stream=sys.stderr, verbosity=2, resultclass=RecordingResult
    )
    result = runner.run(suite)
    outcomes = [
        {"id": test_id, "outcome": outcome}
        for test_id, outcome in sorted(result.outcomes.items())
    ]
    with open(results_path, "w") as f:
        json.dump(outcomes, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
