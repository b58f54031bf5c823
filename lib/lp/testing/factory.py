# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Make objects for tests, with sensible defaults for everything."""

__all__ = [
    "LaunchpadObjectFactory",
    "OCILayoutFiles",
    "LegacyOCIFiles",
]

import gzip
import hashlib
import io
import itertools
import json
from typing import Any, NamedTuple

from zope.component import getUtility

from lp.buildmaster.enums import BuildStatus
from lp.buildmaster.interfaces.builder import IBuilderSet
from lp.buildmaster.interfaces.processor import (
    IProcessorSet,
    ProcessorNotFound,
)
from lp.oci.enums import OCIFileKind
from lp.oci.interfaces.ocipushrule import IOCIPushRuleSet
from lp.oci.interfaces.ocirecipe import IOCIRecipeSet
from lp.oci.interfaces.ocirecipebuild import IOCIRecipeBuildSet
from lp.oci.interfaces.ociregistrycredentials import (
    IOCIRegistryCredentialsSet,
)
from lp.oci.model.ocilayout import SOURCES_ANNOTATION
from lp.registry.interfaces.distribution import IDistributionSet
from lp.registry.interfaces.person import IPersonSet
from lp.services.librarian.interfaces import ILibraryFileAliasSet
from ocitypes.digest import Digest

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


class OCILayoutFiles(NamedTuple):
    """The `OCIFile`s of an OCI-layout build made by the factory."""

    index: Any
    manifest: Any
    config: Any
    layers: list


class LegacyOCIFiles(NamedTuple):
    """The `OCIFile`s of a legacy docker-save build made by the factory."""

    manifest: Any
    digests: Any
    config: Any
    layers: list


def _json_bytes(value):
    return json.dumps(value, sort_keys=True).encode("utf-8")


class LaunchpadObjectFactory:
    """Makes model objects; every argument is optional."""

    _unique = itertools.count(1)

    def getUniqueInteger(self):
        return next(self._unique)

    def getUniqueString(self, prefix="generic-string"):
        return "%s%d" % (prefix, self.getUniqueInteger())

    def getUniqueUnicode(self, prefix="generic-string"):
        return self.getUniqueString(prefix)

    def makeLibraryFileAlias(
        self,
        filename=None,
        content=None,
        content_type="application/octet-stream",
        expires=None,
        restricted=False,
    ):
        """Store ``content`` (bytes; unique by default) in the librarian."""
        if filename is None:
            filename = self.getUniqueString("file") + ".bin"
        if content is None:
            content = self.getUniqueString("content").encode("ascii")
        return getUtility(ILibraryFileAliasSet).create(
            filename,
            len(content),
            io.BytesIO(content),
            content_type,
            expires=expires,
            restricted=restricted,
            allow_zero_length=True,
        )

    def makePerson(self, name=None, display_name=None):
        return getUtility(IPersonSet).new(
            name or self.getUniqueString("person"), display_name=display_name
        )

    def makeProcessor(self, name=None, title=None):
        """The processor with this name, made if there is none."""
        name = name or self.getUniqueString("proc")
        try:
            return getUtility(IProcessorSet).getByName(name)
        except ProcessorNotFound:
            return getUtility(IProcessorSet).new(name, title or name)

    def makeDistribution(self, name=None, display_name=None, private=False):
        """A distribution and its primary archive."""
        name = name or self.getUniqueString("distribution")
        distribution = getUtility(IDistributionSet).new(
            name, display_name or name
        )
        distribution.main_archive.private = private
        return distribution

    def makeDistroSeries(self, distribution=None, name=None):
        if distribution is None:
            distribution = self.makeDistribution()
        return distribution.newSeries(name or self.getUniqueString("series"))

    def makeDistroArchSeries(
        self, distroseries=None, architecturetag=None, processor=None
    ):
        if distroseries is None:
            distroseries = self.makeDistroSeries()
        if processor is None:
            processor = self.makeProcessor(name=architecturetag)
        return distroseries.newArch(
            architecturetag or processor.name, processor
        )

    def makeBuilder(
        self,
        processor=None,
        url=None,
        name=None,
        virtualized=True,
        vm_host=None,
    ):
        return getUtility(IBuilderSet).new(
            processor or self.makeProcessor(),
            url or "http://%s.example:8221/" % self.getUniqueString("b"),
            name or self.getUniqueString("builder"),
            virtualized=virtualized,
            vm_host=vm_host,
        )

    def makeOCIRecipe(
        self,
        name=None,
        owner_name=None,
        description=None,
        registry_url=None,
        image_name=None,
        private=False,
    ):
        return getUtility(IOCIRecipeSet).new(
            name or self.getUniqueString("recipe"),
            owner_name or self.getUniqueString("owner"),
            description=description,
            registry_url=registry_url,
            image_name=image_name,
            private=private,
        )

    def makeOCIRegistryCredentials(
        self, registrant=None, owner=None, url=None, credentials=None
    ):
        """Credentials; by default a username and password, sealed."""
        if owner is None:
            owner = registrant or self.makePerson()
        if registrant is None:
            registrant = owner
        if url is None:
            url = "https://%s.example" % self.getUniqueString("registry")
        if credentials is None:
            credentials = {
                "username": self.getUniqueString("user"),
                "password": self.getUniqueString("password"),
            }
        return getUtility(IOCIRegistryCredentialsSet).new(
            registrant, owner, url, credentials
        )

    def makeOCIPushRule(
        self, recipe=None, registry_credentials=None, image_name=None
    ):
        if recipe is None:
            recipe = self.makeOCIRecipe()
        if registry_credentials is None:
            registry_credentials = self.makeOCIRegistryCredentials()
        if image_name is None:
            image_name = self.getUniqueString("image")
        return getUtility(IOCIPushRuleSet).new(
            recipe, registry_credentials, image_name
        )

    def makeOCIRecipeBuild(
        self,
        requester=None,
        recipe=None,
        distro_arch_series=None,
        status=None,
        date_created=None,
        builder=None,
        **recipe_kwargs,
    ):
        """A build, with whatever it needs.

        :param distro_arch_series: An `IDistroArchSeries`, or an
            architecture tag for a new one (by default, "amd64" of a new
            series).
        """
        if recipe is None:
            recipe = self.makeOCIRecipe(**recipe_kwargs)
        if requester is None:
            requester = self.makePerson()
        if distro_arch_series is None or isinstance(distro_arch_series, str):
            distro_arch_series = self.makeDistroArchSeries(
                architecturetag=distro_arch_series or "amd64"
            )
        build = getUtility(IOCIRecipeBuildSet).new(
            requester, recipe, distro_arch_series, date_created=date_created
        )
        if builder is not None:
            build.updateStatus(BuildStatus.BUILDING, builder=builder)
        if status is not None:
            build.updateStatus(status, builder=builder)
        return build

    def makeBuildQueue(self, build=None, builder=None):
        """Queue ``build`` (by default a new OCI recipe build).

        With ``builder``, the job is running on it.
        """
        if build is None:
            build = self.makeOCIRecipeBuild()
        bq = build.queueBuild()
        if builder is not None:
            bq.markAsBuilding(builder)
        return bq

    def makeOCIFile(
        self,
        build=None,
        library_file=None,
        layer_file_digest=None,
        content=None,
        filename=None,
        **kwargs,
    ):
        """Add a file to ``build``.

        Without ``library_file``, ``content`` is stored; without an
        explicit ``layer_file_digest`` the file gets its content's digest.
        """
        if build is None:
            build = self.makeOCIRecipeBuild()
        if library_file is None:
            library_file = self.makeLibraryFileAlias(
                filename=filename, content=content
            )
        if layer_file_digest is None:
            layer_file_digest = Digest("sha256", library_file.content.sha256)
        return build.addFile(
            library_file, layer_file_digest=layer_file_digest, **kwargs
        )

    def _addBlob(self, build, content, kind, media_type, diff_id=None):
        digest = Digest.of_bytes(content)
        lfa = self.makeLibraryFileAlias(filename=digest.hex, content=content)
        return build.addFile(
            lfa,
            layer_file_digest=digest,
            diff_id=diff_id,
            media_type=media_type,
            kind=kind,
        )

    def makeOCILayoutFiles(
        self, build=None, layer_contents=None, layer_sources=None
    ):
        """Give ``build`` the files of a Docker 25+ OCI-layout image.

        Layers are stored uncompressed, as docker writes them, so each
        layer's diff_id is its digest.

        :param layer_sources: {layer position: repository the builder
            recorded it was pulled from}, annotated as the builder does.
        """
        layer_sources = layer_sources or {}
        if build is None:
            build = self.makeOCIRecipeBuild()
        if layer_contents is None:
            layer_contents = [
                self.getUniqueString("layer").encode("ascii") for _ in range(2)
            ]
        layers = [
            self._addBlob(
                build,
                content,
                OCIFileKind.LAYER,
                OCI_LAYER,
                diff_id=Digest.of_bytes(content),
            )
            for content in layer_contents
        ]
        config_content = _json_bytes(
            {
                "architecture": build.arch_tag,
                "os": "linux",
                "rootfs": {
                    "type": "layers",
                    "diff_ids": [str(layer.diff_id) for layer in layers],
                },
            }
        )
        config = self._addBlob(
            build, config_content, OCIFileKind.CONFIG, OCI_CONFIG
        )

        def descriptor(oci_file):
            return {
                "mediaType": oci_file.media_type,
                "digest": str(oci_file.layer_file_digest),
                "size": oci_file.size,
            }

        manifest_content = _json_bytes(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": descriptor(config),
                "layers": [descriptor(layer) for layer in layers],
            }
        )
        manifest = self._addBlob(
            build, manifest_content, OCIFileKind.MANIFEST, OCI_MANIFEST
        )
        entry = descriptor(manifest)
        if layer_sources:
            # As the builder records them (see `lp.oci.model.ocilayout`).
            entry["annotations"] = {
                SOURCES_ANNOTATION: json.dumps(
                    {
                        str(layers[position].layer_file_digest): source
                        for position, source in layer_sources.items()
                    }
                )
            }
        index_content = _json_bytes(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [entry],
            }
        )
        index = build.addFile(
            self.makeLibraryFileAlias(
                filename="index.json", content=index_content
            ),
            media_type=OCI_INDEX,
            kind=OCIFileKind.INDEX,
        )
        return OCILayoutFiles(index, manifest, config, layers)

    def makeLegacyOCIFiles(
        self, build=None, layer_contents=None, layer_sources=None
    ):
        """Give ``build`` the files of a legacy docker-save upload.

        As Launchpad's builders did: gzipped layers named after their
        layer directory, a config, manifest.json and digests.json whose
        digests are bare hex.

        :param layer_sources: {layer position: repository the builder
            recorded it was pulled from}, in digests.json's "source".
        """
        layer_sources = layer_sources or {}
        if build is None:
            build = self.makeOCIRecipeBuild()
        if layer_contents is None:
            layer_contents = [
                self.getUniqueString("layer").encode("ascii") for _ in range(2)
            ]
        # As a real config: the push and the export list the layers in
        # the order of its rootfs.diff_ids.
        config_content = _json_bytes(
            {
                "architecture": build.arch_tag,
                "os": "linux",
                "rootfs": {
                    "type": "layers",
                    "diff_ids": [
                        str(Digest.of_bytes(content))
                        for content in layer_contents
                    ],
                },
            }
        )
        config_name = hashlib.sha256(config_content).hexdigest() + ".json"
        config = build.addFile(
            self.makeLibraryFileAlias(
                filename=config_name, content=config_content
            )
        )
        layers = []
        layer_digests = {}
        layer_paths = []
        for position, content in enumerate(layer_contents):
            layer_id = self.getUniqueString("layer")
            compressed = gzip.compress(content, mtime=0)
            digest = hashlib.sha256(compressed).hexdigest()
            layers.append(
                build.addFile(
                    self.makeLibraryFileAlias(
                        filename=layer_id + ".tar.gz", content=compressed
                    ),
                    layer_file_digest=digest,
                    diff_id=Digest.of_bytes(content),
                )
            )
            layer_digests[str(Digest.of_bytes(content))] = {
                "digest": digest,
                "source": layer_sources.get(position, ""),
                "layer_id": layer_id,
            }
            layer_paths.append(layer_id + "/layer.tar")
        manifest = build.addFile(
            self.makeLibraryFileAlias(
                filename="manifest.json",
                content=_json_bytes(
                    [
                        {
                            "Config": config_name,
                            "RepoTags": None,
                            "Layers": layer_paths,
                        }
                    ]
                ),
            )
        )
        digests = build.addFile(
            self.makeLibraryFileAlias(
                filename="digests.json",
                content=_json_bytes([layer_digests]),
            )
        )
        return LegacyOCIFiles(manifest, digests, config, layers)
