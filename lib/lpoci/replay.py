# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""A build backend that answers ``docker save`` with an archive file.

What `lp-oci run` gives `OCIBuildManager` instead of a build container:
``docker save NAME`` streams the archive through a real subprocess and a
pipe, as docker would; ``ctr ... content ls`` fails as on a builder
without the containerd store.
"""

__all__ = [
    "ReplayBackend",
]

import subprocess


class ReplayBackend:
    """Answers ``docker save NAME`` with the bytes of ``archive_path``."""

    def __init__(self, archive_path):
        self.archive_path = archive_path

    def run(self, args, get_output=False, return_process=False, **kwargs):
        if args[:1] == ["ctr"]:
            raise subprocess.CalledProcessError(127, args)
        if args[:2] != ["docker", "save"]:
            raise ValueError(f"Cannot replay {args!r}")
        proc = subprocess.Popen(
            ["cat", "--", self.archive_path],
            stdout=subprocess.PIPE if get_output else None,
        )
        if return_process:
            return proc
        out, _ = proc.communicate()
        if proc.returncode:
            raise subprocess.CalledProcessError(proc.returncode, args)
        return out
