# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Builders and the errors raised while dealing with them."""

__all__ = [
    "BuildDaemonError",
    "IBuilder",
    "IBuilderSet",
]

from lazr.restful.declarations import exported, exported_as_webservice_entry
from zope.interface import Attribute, Interface
from zope.schema import Bool, Int, Text, TextLine


class BuildDaemonError(Exception):
    """The builder sent something the build farm master cannot accept."""


@exported_as_webservice_entry(as_of="beta", publish_web_link=False)
class IBuilder(Interface):
    """A builder: a machine that runs build farm jobs.

    In the web service at ``builders/<name>``, as Launchpad's.
    Deviation from Launchpad: a builder has one processor rather than a
    list (`processors` gives it as one).
    """

    id = Int(title="ID", required=True, readonly=True)
    name = exported(TextLine(title="Name", required=True, readonly=True))
    title = exported(TextLine(title="Title", required=True, readonly=True))
    url = TextLine(title="URL of the builder's XML-RPC service")
    processor = Attribute("The `IProcessor` of this builder.")
    processors = Attribute("A list holding the builder's `IProcessor`.")
    virtualized = exported(
        Bool(title="Virtualized", required=True, readonly=True)
    )
    vm_host = TextLine(title="VM host", required=False)
    builderok = exported(
        Bool(
            title="Whether the builder is usable",
            required=True,
            readonly=True,
        )
    )
    failnotes = exported(
        Text(title="Why the builder failed", required=False, readonly=True)
    )
    failure_count = Int(title="Consecutive failures", required=True)
    currentjob = Attribute("The `IBuildQueue` the builder runs, or None.")

    def gotFailure():
        """Count a failure of this builder."""

    def resetFailureCount():
        """Forget the builder's failures."""

    def failBuilder(reason):
        """Mark the builder as not usable, with ``reason`` in failnotes."""


class IBuilderSet(Interface):
    """Creating and finding `IBuilder`s."""

    def get(builder_id):
        """The `IBuilder` with this id, or None."""

    def getByName(name):
        """The `IBuilder` with this name, or None."""

    def __getitem__(name):
        """The `IBuilder` with this name; `NotFoundError` if none."""

    def getBuilders():
        """Every `IBuilder`, by name."""

    def new(processor, url, name, virtualized=True, vm_host=None):
        """Create an `IBuilder`."""
