# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Fault injection over the real pipeline, on loopback.

Processes killed at seeded checkpoints and rerun, a librarian on a full
file system, a read-only state, a database connection terminated during
upload processing, a builder that dies mid-transfer or serves wrong
bytes.  After each fault `tests.faults.invariants` checks what must
hold.  Set ``LP_OCI_FAULTS_REPORT=FILE`` to have the suites append
their figures (JSON lines) to FILE.
"""
