# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Canonical URLs of objects.

Deviation from Launchpad: there is no publisher yet, only the URLs; the
root is ``LP_ROOT_URL`` from the environment, by default
`DEFAULT_ROOT_URL`.
"""

__all__ = [
    "DEFAULT_ROOT_URL",
    "canonical_path",
    "canonical_url",
    "root_url",
]

import os

from lp.services.webapp.interfaces import ICanonicalUrlData

DEFAULT_ROOT_URL = "https://launchpad.test/"


def root_url():
    """The URL of Launchpad's root, ending with a slash."""
    url = os.environ.get("LP_ROOT_URL") or DEFAULT_ROOT_URL
    return url if url.endswith("/") else url + "/"


def canonical_path(obj):
    """The path of ``obj`` below the root, without leading slash.

    ``obj`` must adapt to `ICanonicalUrlData`.
    """
    parts = []
    while obj is not None:
        data = ICanonicalUrlData(obj)
        parts.append(data.path)
        obj = data.inside
    return "/".join(reversed(parts))


def canonical_url(obj):
    """The URL of ``obj``, which must adapt to `ICanonicalUrlData`."""
    return root_url() + canonical_path(obj)
