# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Who may see and change OCI recipes and their builds.

Deviation from Launchpad: there are no `IPerson`s with team membership
behind the web service, only the accounts of the configuration (an
`IWebServiceAccount`, or None for an anonymous user).  Launchpad's
``launchpad.View`` becomes `can_view` (public, or the owner's, or an
administrator's) and ``launchpad.Edit`` becomes `can_edit` (the owner's
or an administrator's).
"""

__all__ = [
    "can_edit",
    "can_view",
]

from lp.oci.interfaces.ocirecipe import IOCIRecipe
from lp.oci.interfaces.ocirecipebuild import IOCIRecipeBuild


def _recipe_of(obj):
    if IOCIRecipe.providedBy(obj):
        return obj
    if IOCIRecipeBuild.providedBy(obj):
        return obj.recipe
    raise TypeError(f"No access rules for {obj!r}")


def _is_private(obj):
    if IOCIRecipeBuild.providedBy(obj):
        return obj.is_private
    return obj.private


def can_edit(obj, user):
    """Whether ``user`` may change ``obj`` (launchpad.Edit)."""
    if user is None:
        return False
    return bool(user.admin) or user.name == _recipe_of(obj).owner_name


def can_view(obj, user):
    """Whether ``user`` may see ``obj`` (launchpad.View)."""
    return not _is_private(obj) or can_edit(obj, user)
