# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The boundaries between the deployables hold.

- ``ocitypes`` (the types both sides share) imports only the standard
  library, and its tests only the test stack.
- ``lpbuildd`` (launchpad-buildd) never imports ``lp``, tests included.
- ``lp`` (Launchpad) never imports ``lpbuildd`` at run time; its tests
  may run a real builder.
- Nothing that runs in production imports a test package, nor the test
  stack (testtools, fixtures, zope.testrunner).

Imports are read from the source with `ast`, so an import inside a
function counts as much as one at the top.
"""

__all__ = []

import ast
import os
import sys

from testtools import TestCase

ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)
LIB = os.path.join(ROOT, "lib")
TEST_STACK = {"testtools", "fixtures", "zope.testrunner"}


def iter_modules(package):
    """Yield ``(dotted name, path, is_test_code)`` under ``lib/package``."""
    top = os.path.join(LIB, package)
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        rel = os.path.relpath(dirpath, LIB).split(os.sep)
        for filename in sorted(filenames):
            if not filename.endswith(".py"):
                continue
            parts = rel + [filename[:-3]]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            is_test = any(p in ("tests", "testing") for p in parts)
            yield ".".join(parts), os.path.join(dirpath, filename), is_test


def imported_names(path):
    """Every module name an import statement in ``path`` names."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def top(name):
    return name.split(".")[0]


def is_test_package(name):
    return any(p in ("tests", "testing") for p in name.split("."))


class TestBoundaries(TestCase):
    def assertNoImports(self, package, refused, include_tests=True):
        offences = []
        for module, path, is_test in iter_modules(package):
            if is_test and not include_tests:
                continue
            for name in sorted(imported_names(path)):
                reason = refused(name, is_test)
                if reason:
                    offences.append(f"{module} imports {name}: {reason}")
        self.assertEqual([], offences)

    def test_ocitypes_imports_only_the_standard_library(self):
        def refused(name, is_test):
            if top(name) in sys.stdlib_module_names or top(name) == "ocitypes":
                return None
            if is_test and any(
                name == t or name.startswith(t + ".") for t in TEST_STACK
            ):
                return None
            return "not the standard library"

        self.assertNoImports("ocitypes", refused)

    def test_lpbuildd_never_imports_launchpad(self):
        self.assertNoImports(
            "lpbuildd",
            lambda name, is_test: top(name) in ("lp", "lpoci")
            and "the builder must not depend on Launchpad",
        )

    def test_launchpad_never_imports_lpbuildd_at_run_time(self):
        self.assertNoImports(
            "lp",
            lambda name, is_test: top(name) == "lpbuildd"
            and "Launchpad must not depend on the builder",
            include_tests=False,
        )

    def test_run_time_code_imports_no_test_code(self):
        def refused(name, is_test):
            if is_test_package(name):
                return "a test package"
            if any(name == t or name.startswith(t + ".") for t in TEST_STACK):
                return "the test stack"
            return None

        for package in ("ocitypes", "lpbuildd", "lp", "lpoci"):
            self.assertNoImports(package, refused, include_tests=False)

    def test_the_checks_see_imports(self):
        # The scanner itself: a check that reads nothing cannot fail.
        modules = {m: p for m, p, _ in iter_modules("lpbuildd")}
        self.assertIn("lpbuildd.oci", modules)
        self.assertIn(
            "ocitypes.digest", imported_names(modules["lpbuildd.oci"])
        )
        test_modules = [m for m, _, t in iter_modules("lp") if t]
        self.assertIn("lp.testing.factory", test_modules)
