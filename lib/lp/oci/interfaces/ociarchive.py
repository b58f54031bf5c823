# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Interfaces for the image archives a build's files can be downloaded as."""

__all__ = [
    "CannotExportOCIArchive",
    "IOCIArchive",
    "IOCIArchiveSet",
    "OCIArchiveError",
    "OCIArchiveFormat",
]

import http.client

from lazr.enum import EnumeratedType, Item
from lazr.restful.declarations import error_status
from zope.interface import Attribute, Interface
from zope.schema import Choice, Int, TextLine

from ocitypes.errors import OCIContentError


@error_status(http.client.BAD_REQUEST)
class CannotExportOCIArchive(OCIContentError):
    """This build has no image to download (it is not FULLYBUILT)."""


class OCIArchiveError(OCIContentError):
    """The build's stored files do not make the archive they should.

    Raised when the archive is planned (a blob missing, or recorded
    with another digest or size) or, while it is streamed, when a
    librarian file turns out shorter than recorded.
    """


class OCIArchiveFormat(EnumeratedType):
    """The kind of archive a build's images are downloaded as."""

    OCI = Item("""
        OCI archive

        An OCI image layout in a tar: oci-layout, index.json and
        blobs/sha256/<hex>, as ``skopeo copy ... oci-archive:`` and
        BuildKit write it.
        """)

    DOCKER = Item("""
        Docker archive

        What ``docker save`` of Docker 25 and later writes: the OCI image
        layout plus a manifest.json (Config, RepoTags, Layers) pointing
        into blobs/sha256/, which ``docker load`` of every version since
        1.10 reads.
        """)


class IOCIArchive(Interface):
    """A build's images as one tar archive, generated on demand.

    The archive is made of the build's stored blobs, byte-exact, plus a
    few small generated documents; its members, headers and order are
    fixed, so the same build always gives the same bytes and the size
    is known before anything is read.
    """

    build = Attribute("The `IOCIRecipeBuild` whose images these are.")
    format = Choice(title="Format", vocabulary=OCIArchiveFormat, readonly=True)
    filename = TextLine(title="A file name for the download", readonly=True)
    content_type = TextLine(title="The MIME type", readonly=True)
    size = Int(title="The exact size of the archive in bytes", readonly=True)
    images = Attribute(
        "The images in the archive, as a tuple of `OCIArchiveImage` "
        "(manifest, config and layer descriptors, platform, names)."
    )
    member_names = Attribute("The tar member names, in archive order.")

    def iterBytes(start=0, stop=None):
        """Generate the archive's bytes from ``start`` up to ``stop``.

        Members before ``start`` are skipped by arithmetic, and a
        librarian file is read from the offset needed, so any range
        costs only what it returns.  Memory use does not depend on the
        image's size.

        :param start: The first byte (0-based).
        :param stop: The byte after the last one; by default the end.
        :raises ValueError: unless ``0 <= start <= stop <= size``.
        :raises OCIArchiveError: if a stored file is shorter than
            recorded.
        :return: An iterator of non-empty `bytes`.
        """


class IOCIArchiveSet(Interface):
    """Making the archives of builds."""

    def getArchive(build, format):
        """The archive of ``build``'s images in ``format``.

        Everything the archive is made of is found and checked against
        what the build recorded (digests, sizes), without reading any
        layer.

        :param build: An `IOCIRecipeBuild`.
        :param format: An `OCIArchiveFormat` item.
        :raises CannotExportOCIArchive: if the build is not FULLYBUILT.
        :raises OCIArchiveError: if its files do not make a complete
            image.
        :return: An `IOCIArchive`.
        """
