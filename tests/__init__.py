# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""End-to-end and conformance test suites that span lib/'s packages.

Each suite is a sub-package (``tests/<suite>/__init__.py``) whose
``test_*.py`` modules bin/test imports as ``tests.<suite>.test_*``.  This
file makes ``tests`` a regular package, so that it cannot be shadowed by a
stray ``tests`` package in site-packages.
"""

__all__ = []
