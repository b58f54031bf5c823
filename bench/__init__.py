# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Benchmarks (reports, not tests); never installed.

Run from the top of the tree: ``python -m bench.gather`` and
``python -m bench.ingest`` (``make bench``).
"""
