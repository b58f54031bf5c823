# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Adapters that let lazr.restful publish Launchpad's values."""

__all__ = [
    "NullJSONSerializer",
    "ResultSetFiniteSequence",
    "StrJSONSerializer",
]

from lazr.restful.interfaces import IJSONPublishable
from zope.interface import implementer
from zope.interface.common.sequence import IFiniteSequence


@implementer(IJSONPublishable)
class StrJSONSerializer:
    """Serialize an object (e.g. a `timedelta`) as its string."""

    def __init__(self, context):
        self.context = context

    def toDataForJSON(self, media_type):
        """See `IJSONPublishable`."""
        return str(self.context)


@implementer(IFiniteSequence)
class ResultSetFiniteSequence:
    """A Storm result set as lazr.restful batches it (as Launchpad's
    `lp.services.database.sqlbase` adapter does)."""

    def __init__(self, context):
        self.context = context

    def __getitem__(self, index):
        return self.context[index]

    def __iter__(self):
        return iter(self.context)

    def __len__(self):
        return self.context.count()


@implementer(IJSONPublishable)
class NullJSONSerializer:
    """Serialize an object the web service does not export as null.

    `IOCIRecipeBuild.scheduleRegistryUpload` returns the new job to
    Python callers; Launchpad's web service answers null.
    """

    def __init__(self, context):
        self.context = context

    def toDataForJSON(self, media_type):
        """See `IJSONPublishable`."""
        return None
