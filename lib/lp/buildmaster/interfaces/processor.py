# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Processor interfaces."""

__all__ = [
    "IProcessor",
    "IProcessorSet",
    "ProcessorNotFound",
]

from zope.interface import Interface
from zope.schema import Int, TextLine

from lp.app.errors import NotFoundError


class ProcessorNotFound(NotFoundError):
    """No processor has this name."""


class IProcessor(Interface):
    """A processor builds run on (amd64, arm64, ...)."""

    id = Int(title="The Processor ID", required=True, readonly=True)
    name = TextLine(title="Name", required=True, readonly=True)
    title = TextLine(title="Title", required=True, readonly=True)


class IProcessorSet(Interface):
    """Creating and finding `IProcessor`s."""

    def getByName(name):
        """The `IProcessor` with this name.

        :raises ProcessorNotFound: if there is none.
        """

    def getAll():
        """Every `IProcessor`, by name."""

    def new(name, title):
        """Create an `IProcessor`."""
