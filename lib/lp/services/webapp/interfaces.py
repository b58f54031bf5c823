# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Interfaces of the web application (only URLs so far)."""

__all__ = [
    "ICanonicalUrlData",
]

from zope.interface import Attribute, Interface


class ICanonicalUrlData(Interface):
    """Where an object sits in Launchpad's URL space."""

    inside = Attribute("The object this one is inside, or None at the root.")
    path = Attribute("This object's path below `inside`, without slashes.")
