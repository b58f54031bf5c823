# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Coverage-guided fuzzing (atheris) of every reader of hostile input.

One harness per reader, each a module with `test_one_input(data)`, the
seeds of its corpus (`seeds()`) and the modules atheris instruments
(`INSTRUMENT`):

* `fuzz.gather`: `lp-oci gather` (the builder's archive reader);
* `fuzz.ociupload`: the Launchpad-side reader of an upload directory;
* `fuzz.registry`: what the registry client reads from a registry.

``python -m fuzz`` (``make fuzz``) runs them; see `fuzz.__main__`.
Like ``bench/``, this directory is not installed and its harnesses are
not tests: ``tests/fuzz`` runs each harness on a few fixed inputs so
that they cannot rot, and the hypothesis suites (``test_*fuzz*``) are
the bounded fuzzing CI runs.
"""

__all__ = [
    "TARGETS",
]

TARGETS = ("gather", "ociupload", "registry")
