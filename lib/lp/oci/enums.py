# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Enumerations used by OCI recipes and builds."""

__all__ = [
    "OCIFileKind",
]

from lazr.enum import DBEnumeratedType, DBItem


class OCIFileKind(DBEnumeratedType):
    """What an `OCIFile` holds."""

    OTHER = DBItem(
        0,
        """
        Other

        A file with no particular role in the image.
        """,
    )

    INDEX = DBItem(
        1,
        """
        Image index

        The OCI image layout's index.json, or an image index blob.
        """,
    )

    MANIFEST = DBItem(
        2,
        """
        Image manifest

        An OCI or Docker schema 2 image manifest blob.
        """,
    )

    CONFIG = DBItem(
        3,
        """
        Image configuration

        The image configuration blob.
        """,
    )

    LAYER = DBItem(
        4,
        """
        Layer

        An image layer.
        """,
    )

    LEGACY_MANIFEST = DBItem(
        5,
        """
        Legacy manifest

        The manifest.json written by docker save.
        """,
    )

    LEGACY_DIGESTS = DBItem(
        6,
        """
        Legacy digests

        The digests.json written by older builders, mapping each layer's
        diff_id to the digest of its compressed file.
        """,
    )
