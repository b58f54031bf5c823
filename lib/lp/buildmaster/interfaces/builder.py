# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Errors raised while dealing with builders.

Only what the job behaviours need so far; Launchpad's module also holds
`IBuilder` and friends.
"""

__all__ = [
    "BuildDaemonError",
]


class BuildDaemonError(Exception):
    """The builder sent something the build farm master cannot accept."""
