# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Interface for communication with an OCI registry."""

__all__ = [
    "BlobUploadFailed",
    "IOCIRegistryClient",
    "ManifestListUploadFailed",
    "ManifestUploadFailed",
    "MultipleOCIRegistryError",
    "OCIRegistryAuthenticationError",
    "OCIRegistryError",
]

from zope.interface import Interface


class OCIRegistryError(Exception):
    """An error returned by an OCI registry.

    :ivar errors: the registry's errors from its error body (a list of
        dicts with ``code``, ``message`` and perhaps ``detail``), or [].
    :ivar transient: whether trying again later may succeed (the
        registry was unreachable or answered 408, 429 or 5xx until the
        retries ran out), as opposed to a definite refusal.
    :ivar retry_after: for a transient error, the seconds the registry
        asked to be left alone for (``Retry-After``), or None.
    """

    def __init__(
        self, summary, errors=None, transient=False, retry_after=None
    ):
        super().__init__(summary)
        self.errors = list(errors or [])
        self.transient = transient
        self.retry_after = retry_after


class MultipleOCIRegistryError(OCIRegistryError):
    """Several push rules failed."""

    def __init__(self, exceptions):
        self.exceptions = exceptions
        super().__init__(
            str(self),
            self.errors,
            transient=all(getattr(e, "transient", False) for e in exceptions),
            retry_after=max(
                (
                    e.retry_after
                    for e in exceptions
                    if getattr(e, "retry_after", None) is not None
                ),
                default=None,
            ),
        )

    def __str__(self):
        return " / ".join(str(i) for i in self.exceptions)

    @property
    def errors(self):
        return [
            error
            for i in self.exceptions
            if isinstance(i, OCIRegistryError)
            for error in i.errors
        ]

    @errors.setter
    def errors(self, value):
        # Derived from the exceptions.
        pass


class BlobUploadFailed(OCIRegistryError):
    """A blob could not be pushed."""


class ManifestUploadFailed(OCIRegistryError):
    """A manifest could not be pushed."""


class ManifestListUploadFailed(ManifestUploadFailed):
    """The manifest list (image index) could not be updated."""


class OCIRegistryAuthenticationError(OCIRegistryError):
    """The registry refused our credentials, or its challenge is unknown."""


class IOCIRegistryClient(Interface):
    """Interface for the API provided by an OCI registry."""

    def upload(build):
        """Upload an OCI image to every registry of its push rules.

        Blobs, then configs, then manifests, by digest; the tag is set
        by `uploadManifestList`.

        :param build: The `IOCIRecipeBuild` to upload.
        :return: A dict mapping each push rule's id to what was pushed
            (`RegistryUploadResult`).
        :raises OCIRegistryError: if any push rule failed.
        """

    def uploadManifestList(build_request, uploaded_builds):
        """Merge the builds' manifests into the tag's image index.

        :param build_request: Unused here (Launchpad's build requests do
            not exist in this tree); the recipe is that of the builds.
        :param uploaded_builds: builds pushed by `upload`.
        """
