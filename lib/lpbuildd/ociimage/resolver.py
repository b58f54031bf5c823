# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Find and verify the images in an archive once all members are known.

Images come from `index.json` (OCI layouts, Docker 25+) and from
`manifest.json` (every docker-save since 1.10); an archive that has both
yields the union, matched by config digest and diff_ids, because each
list has known gaps (moby #51389: one index entry for several saved
references; Docker 25.0.0: `"manifests": null`).  Every blob reached is
checked against its descriptor's digest and size, every layer against
the config's `rootfs.diff_ids`.
"""

__all__ = [
    "Resolver",
]

import dataclasses
import json
import re
from dataclasses import dataclass

from lpbuildd.ociimage.blobstore import DocumentBlob, LayerBlob
from lpbuildd.ociimage.errors import (
    CorruptArchive,
    DigestMismatch,
    UnsafeArchive,
    UnsupportedArchive,
)
from lpbuildd.ociimage.image import (
    IMAGE_NAME,
    LAYER_SOURCE,
    REF_NAME,
    CheckedDocument,
    ForeignLayer,
    Image,
    Layer,
    SourceManifest,
)
from lpbuildd.ociimage.reference import parse_ref_name, parse_reference
from lpbuildd.ociimage.tarstream import normalise_name
from ocitypes.descriptor import (
    MAX_INDEX_DEPTH,
    Descriptor,
    MediaType,
    Platform,
)
from ocitypes.digest import Digest
from ocitypes.safejson import load_json

# Index entries read, plus images and names handed up from nested
# indexes (which bounds the memory of a walk too): a
# multi-platform image has a few dozen.
MAX_DESCRIPTORS = 20000
ATTESTATION = "attestation-manifest"
_NAMED_DIGEST = re.compile(
    r"(?:^|/)(?:sha256:)?([0-9a-f]{64})(?:\.json|\.tar|\.tar\.gz)?$"
)
_LAYER_KINDS = ("tar", "gzip", "zstd")
_BLOB_PATH = re.compile(r"^blobs/([^/]+)/([^/]+)$")


def _short(digest):
    return str(digest)[:19]


def _document_bytes(blob):
    """The bytes of a blob that must be a JSON document."""
    if isinstance(blob, LayerBlob):
        raise CorruptArchive(
            f"{blob.name!r} is not a JSON document ({blob.size} bytes)"
        )
    return blob.read_bytes()


@dataclass(frozen=True)
class _Config:
    """What the resolver needs of an image's config."""

    data: CheckedDocument
    diff_ids: tuple
    platform: Platform


class _ImageSet:
    """Images merged by key, in first-seen order, with their names.

    Names are accumulated in a dict per image and images are built with
    them only once, in `images`: merging stays linear in the names.
    """

    def __init__(self):
        self._entries = {}  # key -> [image, {name: None}]
        self.name_count = 0

    def add(self, image, names=()):
        entry = self._entries.get(image.key)
        if entry is None:
            entry = self._entries[image.key] = [image, {}]
        known = entry[1]
        before = len(known)
        for name in names:
            known.setdefault(name)
        for name in image.names:
            known.setdefault(name)
        self.name_count += len(known) - before

    def update(self, other, names=()):
        """Add every image of another set, `names` first."""
        for image, known in other._entries.values():
            self.add(image, tuple(names) + tuple(known))

    def __len__(self):
        return len(self._entries)

    def images(self):
        return tuple(
            (
                image
                if tuple(names) == image.names
                else dataclasses.replace(image, names=tuple(names))
            )
            for image, names in self._entries.values()
        )


class Resolver:
    """Turn a filled `BlobStore` into verified `Image` values."""

    def __init__(self, store, sources=None):
        self.store = store
        # diff_id -> repository the layer was pulled from, if known.
        self.sources = sources or {}
        self.dropped = []
        self.format = None
        # Every document is read once: indexes and manifests by digest,
        # configs by digest.
        self._indexes = {}
        self._walking = set()
        self._manifests = {}
        self._configs = {}
        self._visits = 0

    # -- blobs ---------------------------------------------------------

    def _blob(self, descriptor, what):
        """The verified blob for a descriptor, or None if absent."""
        digest = descriptor.digest
        blob = self.store.lookup(f"blobs/{digest.algorithm}/{digest.hex}")
        if blob is None:
            return None
        if digest.algorithm != "sha256":
            raise UnsupportedArchive(
                f"{what} uses {digest.algorithm} digests, which are not "
                f"supported"
            )
        if blob.digest != digest:
            raise DigestMismatch(
                f"{what} {blob.name!r} does not match its digest: content "
                f"is {blob.digest}, expected {digest}"
            )
        if blob.size != descriptor.size:
            raise DigestMismatch(
                f"{what} {blob.name!r} has {blob.size} bytes, its "
                f"descriptor says {descriptor.size}"
            )
        return blob

    def _as_layer(self, blob):
        """A referenced layer's blob, made a `LayerBlob` if it can be."""
        return self.store.as_layer(blob) or blob

    def _path_blob(self, path, what):
        """The blob at a path named by manifest.json (must exist)."""
        if not isinstance(path, str):
            raise CorruptArchive(f"{what} is not a path")
        name = normalise_name(path, what)
        blob = self.store.lookup(name)
        if blob is not None:
            self._check_named_digest(blob, name, what)
        return blob

    def _check_named_digest(self, blob, name, what):
        match = _BLOB_PATH.match(name)
        if match:
            try:
                named = Digest(match.group(1), match.group(2))
            except ValueError as e:
                raise CorruptArchive(f"{what} {name!r}: {e}")
        else:
            match = _NAMED_DIGEST.search(name)
            if (
                not match
                or not isinstance(blob, DocumentBlob)
                or blob.kind in _LAYER_KINDS
            ):
                return
            named = Digest("sha256", match.group(1))
        if named.algorithm != "sha256":
            raise UnsupportedArchive(f"{what} {name!r}: unsupported digest")
        if blob.digest != named:
            raise DigestMismatch(
                f"{what} {name!r} does not match its digest: content is "
                f"{blob.digest}"
            )

    # -- configs and layers ---------------------------------------------

    def _config(self, blob, what):
        config = self._configs.get(blob.digest)
        if config is None:
            config = self._read_config(blob, what)
            self._configs[blob.digest] = config
        return config

    def _read_config(self, blob, what):
        data = _document_bytes(blob)
        doc = load_json(data, what)
        if not isinstance(doc, dict):
            raise CorruptArchive(f"{what} is not a JSON object")
        rootfs = doc.get("rootfs")
        diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        if not isinstance(diff_ids, list):
            raise CorruptArchive(f"{what} has no rootfs.diff_ids list")
        try:
            diff_ids = [Digest.parse(d) for d in diff_ids]
        except ValueError as e:
            raise CorruptArchive(f"{what} rootfs.diff_ids: {e}")
        platform = Platform.from_json(doc, what)
        # Not the bytes: the images hold their configs, read when written.
        return _Config(
            CheckedDocument.in_blob(blob), tuple(diff_ids), platform
        )

    def _layer(self, blob, diff_id, what):
        if not isinstance(blob, LayerBlob):
            raise CorruptArchive(
                f"{what} {blob.name!r} is neither a tar archive nor gzip "
                f"or zstd compressed"
            )
        if blob.diff_id != diff_id:
            raise DigestMismatch(
                f"{what} {blob.name!r} does not match its diff_id: "
                f"uncompressed content is {blob.diff_id}, the config says "
                f"{diff_id}"
            )
        annotations = {}
        # Docker's metadata names layers by diff_id, containerd's labels
        # by the (compressed) blob digest.
        source = self.sources.get(diff_id) or self.sources.get(blob.digest)
        if source:
            annotations[LAYER_SOURCE] = source
        descriptor = Descriptor(
            MediaType.layer_for(blob.compression),
            blob.out_digest,
            blob.out_size,
            annotations,
        )
        return Layer(diff_id, descriptor, blob)

    def _check_layer_count(self, count, diff_ids, what):
        if count != len(diff_ids):
            raise CorruptArchive(
                f"{what} has {count} layers but its config lists "
                f"{len(diff_ids)} diff_ids"
            )

    # -- index.json -----------------------------------------------------

    def _images_from_index(self, blob):
        images, _ = self._walk_index(blob, "index.json", None, 0)
        return images

    def _count_visits(self, n):
        self._visits += n
        if self._visits > MAX_DESCRIPTORS:
            raise UnsafeArchive(
                f"the archive's indexes refer to more than "
                f"{MAX_DESCRIPTORS} descriptors"
            )

    def _walk_index(self, blob, what, digest, depth, expected_type=None):
        """The images below an index, and how deep indexes nest there.

        Each index is walked once (memoised by digest); a shared index
        reached again costs one look-up, and its images come back merged
        by key, so no path through the graph multiplies the work.
        :return: (`_ImageSet`, nesting height below this index).
        """
        if depth > MAX_INDEX_DEPTH:
            raise UnsafeArchive(
                f"{what} nests indexes more than {MAX_INDEX_DEPTH} deep"
            )
        if digest is not None:
            if digest in self._walking:
                raise UnsafeArchive(f"index cycle through {digest}")
            cached = self._indexes.get(digest)
            if cached is not None:
                images, height = cached
                if depth + height > MAX_INDEX_DEPTH:
                    raise UnsafeArchive(
                        f"{what} nests indexes more than {MAX_INDEX_DEPTH} "
                        f"deep"
                    )
                return images, height
            self._walking.add(digest)
        doc = load_json(_document_bytes(blob), what)
        if not isinstance(doc, dict):
            raise CorruptArchive(f"{what} is not a JSON object")
        own_type = _document_media_type(doc, what)
        if own_type and expected_type and own_type != expected_type:
            raise CorruptArchive(
                f"{what} says its mediaType is {own_type!r}, its descriptor "
                f"says {expected_type!r}"
            )
        entries = doc.get("manifests")
        if entries is None:
            # Docker 25.0.0 wrote null for untagged images.
            entries = []
        if not isinstance(entries, list):
            raise CorruptArchive(f"{what} manifests is not a list")
        self._count_visits(len(entries))
        # What the walk needs of each entry, so that the parsed document
        # (whatever else it holds) is not kept while nested indexes are
        # walked: memory stays bounded by the descriptors visited.
        records = []
        for i, entry in enumerate(entries):
            entries[i] = None  # each parsed entry freed as it is read
            entry_what = f"{what} manifests[{i}]"
            desc = Descriptor.from_json(entry, entry_what)
            records.append(
                (
                    entry_what,
                    dataclasses.replace(desc, annotations={}, urls=()),
                    _names_from_annotations(desc.annotations, entry_what),
                    desc.annotations.get("vnd.docker.reference.type"),
                )
            )
        del doc, entries
        images = _ImageSet()
        height = 0
        for entry_what, desc, entry_names, reference_type in records:
            child = self._blob(desc, entry_what)
            if child is None:
                self.dropped.append(
                    f"{_short(desc.digest)} ({desc.platform or 'no platform'}"
                    f"): not in the archive"
                )
                continue
            media_type = desc.media_type or _sniff_media_type(
                child, entry_what
            )
            if media_type in MediaType.INDEXES:
                child_images, child_height = self._walk_index(
                    child,
                    f"index {_short(desc.digest)}",
                    desc.digest,
                    depth + 1,
                    desc.media_type,
                )
                # Handing images up costs a step per image and per name.
                self._count_visits(len(child_images) + child_images.name_count)
                height = max(height, child_height + 1)
                images.update(child_images, entry_names)
            elif media_type in MediaType.MANIFESTS:
                if reference_type == ATTESTATION or (
                    desc.platform is not None and desc.platform.is_unknown
                ):
                    self.dropped.append(
                        f"{_short(desc.digest)}: attestation manifest"
                    )
                    continue
                images.add(self._manifest_image(child, desc), entry_names)
            else:
                self.dropped.append(
                    f"{_short(desc.digest)}: unknown media type "
                    f"{ascii(media_type[:100])}"
                )
        result = (images, height)
        if digest is not None:
            self._walking.discard(digest)
            self._indexes[digest] = result
        return result

    def _manifest_image(self, blob, desc):
        """The image of a manifest, read once per descriptor."""
        key = (desc.digest, desc.media_type, desc.platform)
        image = self._manifests.get(key)
        if image is None:
            image = self._image_from_manifest(blob, desc, ())
            self._manifests[key] = image
        return image

    def _image_from_manifest(self, blob, desc, names):
        what = f"manifest {_short(desc.digest)}"
        raw = _document_bytes(blob)
        doc = load_json(raw, what)
        if not isinstance(doc, dict) or doc.get("schemaVersion") != 2:
            raise CorruptArchive(f"{what} is not a schema 2 image manifest")
        own_type = _document_media_type(doc, what)
        if own_type and desc.media_type and own_type != desc.media_type:
            raise CorruptArchive(
                f"{what} says its mediaType is {own_type!r}, its descriptor "
                f"says {desc.media_type!r}"
            )
        config_desc = Descriptor.from_json(doc.get("config"), f"{what} config")
        layer_descs = doc.get("layers")
        if not isinstance(layer_descs, list):
            raise CorruptArchive(f"{what} has no layers list")
        layer_descs = [
            Descriptor.from_json(l, f"{what} layers[{i}]")
            for i, l in enumerate(layer_descs)
        ]
        config_blob = self._blob(config_desc, f"{what} config")
        if config_blob is None:
            raise CorruptArchive(
                f"config {config_desc.digest} of {what} is missing"
            )
        config = self._config(
            config_blob, f"config {_short(config_desc.digest)}"
        )
        diff_ids = config.diff_ids
        expanded = self._expand_distinct_layers(layer_descs, diff_ids, what)
        self._check_layer_count(len(expanded), diff_ids, what)
        blobs = {}
        for i, ldesc in enumerate(expanded):
            if ldesc.is_foreign:
                continue
            lwhat = f"{what} layer {i}"
            lblob = self._blob(ldesc, lwhat)
            if lblob is None:
                raise CorruptArchive(f"{lwhat} ({ldesc.digest}) is missing")
            blobs[i] = self._as_layer(lblob)
        layers, in_order = self._match_layers(expanded, blobs, diff_ids, what)
        # Keep the source manifest byte-exact (and so its digest) when
        # it is an OCI manifest and every layer blob is output as it
        # came; layer sources then go on the index entry (see
        # `SourceManifest`).  Docker schema 2 manifests (what the
        # containerd store keeps for images pulled from Docker Hub) are
        # rewritten as OCI manifests over the same blobs: an OCI
        # layout's readers (skopeo's oci: transport among them) skip
        # index entries of other media types.
        manifest_type = desc.media_type or own_type
        keep = (
            manifest_type == MediaType.OCI_MANIFEST
            and in_order
            and expanded is layer_descs
            and all(
                layer.is_foreign
                or (
                    not layer.recompressed
                    and _compression_of(ldesc.media_type)
                    == layer.blob.compression
                )
                for layer, ldesc in zip(layers, layer_descs)
            )
        )
        source_manifest = None
        if keep:
            source_manifest = SourceManifest(
                CheckedDocument.in_blob(blob),
                manifest_type,
                {
                    layer.descriptor.digest: layer.descriptor.annotations[
                        LAYER_SOURCE
                    ]
                    for layer in layers
                    if LAYER_SOURCE in layer.descriptor.annotations
                },
            )
            layers = [
                (
                    layer
                    if layer.is_foreign
                    else Layer(layer.diff_id, ldesc, layer.blob)
                )
                for layer, ldesc in zip(layers, layer_descs)
            ]
        return Image(
            config=config.data,
            config_digest=config_desc.digest,
            platform=_platform(desc.platform, config.platform, what),
            layers=layers,
            names=names,
            source_manifest=source_manifest,
        )

    def _expand_distinct_layers(self, layer_descs, diff_ids, what):
        """Undo Docker 25.0.0's listing of each distinct layer once.

        Its OCI manifest was built from a map, so a layer repeated in
        the image appears once there.  If the manifest lists exactly
        the config's distinct diff_ids, return the descriptors in the
        config's order; otherwise return `layer_descs` unchanged.
        """
        distinct = set(diff_ids)
        if len(layer_descs) == len(diff_ids) or len(layer_descs) != len(
            distinct
        ):
            return layer_descs
        by_diff_id = {}
        all_layers = True
        for i, ldesc in enumerate(layer_descs):
            lwhat = f"{what} layer {i}"
            lblob = None if ldesc.is_foreign else self._blob(ldesc, lwhat)
            if lblob is None:
                return layer_descs
            lblob = self._as_layer(lblob)
            if isinstance(lblob, LayerBlob):
                by_diff_id[lblob.diff_id] = ldesc
            else:
                all_layers = False
        if not all_layers or set(by_diff_id) != distinct:
            return layer_descs
        return [by_diff_id[diff_id] for diff_id in diff_ids]

    def _match_layers(self, layer_descs, blobs, diff_ids, what):
        """Check layers against diff_ids, in the config's order.

        :param blobs: {position: blob} for the layers that are not
            foreign.
        :return: the `Layer` and `ForeignLayer` values, and whether the
            layers were listed in the config's order.

        Docker 25.0.0 wrote an OCI manifest's layers in random order;
        the config (whose digest is the image ID) is authoritative, so a
        permutation is put back in order rather than refused.
        """
        by_diff_id = {}
        for blob in blobs.values():
            if isinstance(blob, LayerBlob):
                by_diff_id.setdefault(blob.diff_id, blob)
        ordered = []
        in_order = True
        for i, ldesc in enumerate(layer_descs):
            if ldesc.is_foreign:
                ordered.append(ForeignLayer(diff_ids[i], ldesc))
                continue
            lblob = blobs[i]
            listed = lblob.diff_id if isinstance(lblob, LayerBlob) else None
            if listed != diff_ids[i] and diff_ids[i] in by_diff_id:
                lblob = by_diff_id[diff_ids[i]]
                in_order = False
            ordered.append(
                self._layer(lblob, diff_ids[i], f"{what} layer {i}")
            )
        return ordered, in_order

    # -- manifest.json --------------------------------------------------

    def _images_from_docker_manifest(self, blob):
        doc = load_json(_document_bytes(blob), "manifest.json")
        if doc is None:
            raise CorruptArchive("manifest.json is null: it lists no images")
        if not isinstance(doc, list):
            raise CorruptArchive("manifest.json is not a list")
        images = _ImageSet()
        built = {}
        for i, entry in enumerate(doc):
            what = f"manifest.json[{i}]"
            if not isinstance(entry, dict):
                raise CorruptArchive(f"{what} is not an object")
            tags = entry.get("RepoTags") or []
            if not isinstance(tags, list) or not all(
                isinstance(t, str) for t in tags
            ):
                raise CorruptArchive(f"{what} RepoTags is not a string list")
            names = [parse_reference(t, f"{what} RepoTags") for t in tags]
            # Entries that differ only in their tags are one image,
            # verified once.
            shape = json.dumps(
                [entry.get(k) for k in ("Config", "Layers", "LayerSources")],
                sort_keys=True,
            )
            image = built.get(shape)
            if image is None:
                image = built[shape] = self._docker_manifest_image(entry, what)
            images.add(image, names)
        return images

    def _docker_manifest_image(self, entry, what):
        """The image of one manifest.json entry, without its names."""
        config_blob = self._path_blob(entry.get("Config"), f"{what} Config")
        if config_blob is None:
            raise CorruptArchive(
                f"{what} Config {entry.get('Config')!r} is missing"
            )
        config = self._config(config_blob, f"{what} config")
        diff_ids = config.diff_ids
        paths = entry.get("Layers")
        if not isinstance(paths, list):
            raise CorruptArchive(f"{what} Layers is not a list")
        self._check_layer_count(len(paths), diff_ids, what)
        sources = entry.get("LayerSources") or {}
        if not isinstance(sources, dict):
            raise CorruptArchive(f"{what} LayerSources is not an object")
        layers = []
        for j, path in enumerate(paths):
            lwhat = f"{what} layer {j}"
            lblob = self._path_blob(path, lwhat)
            if lblob is None:
                source = sources.get(str(diff_ids[j]))
                if source is not None:
                    ldesc = Descriptor.from_json(
                        source, f"{what} LayerSources"
                    )
                    if ldesc.is_foreign:
                        layers.append(ForeignLayer(diff_ids[j], ldesc))
                        continue
                raise CorruptArchive(f"{lwhat} {path!r} is missing")
            layers.append(
                self._layer(self._as_layer(lblob), diff_ids[j], lwhat)
            )
        return Image(
            config=config.data,
            config_digest=config_blob.digest,
            platform=config.platform,
            layers=layers,
        )

    # -- the whole archive ------------------------------------------------

    def resolve(self):
        """Return the verified `Image` values; set `format` and `dropped`."""
        index = self.store.lookup("index.json")
        docker = self.store.lookup("manifest.json")
        if index is None and docker is None:
            if self.store.lookup("repositories") is not None:
                raise UnsupportedArchive(
                    "pre-1.10 docker save archive (a 'repositories' file "
                    "but no manifest.json) is not supported"
                )
            raise CorruptArchive(
                "not an image archive: no manifest.json or index.json"
            )
        # One image per key: index.json has an entry per tag, and the
        # two lists overlap.  Merge their names.
        found = _ImageSet()
        if index is not None:
            found.update(self._images_from_index(index))
        if docker is not None:
            found.update(self._images_from_docker_manifest(docker))
        images = found.images()
        if not images:
            raise CorruptArchive("the archive holds no complete image")
        self.format = self._detect_format(index, docker, images)
        return tuple(images)

    def _detect_format(self, index, docker, images):
        layers = [
            layer
            for image in images
            for layer in image.layers
            if not layer.is_foreign
        ]
        compressed = any(not layer.recompressed for layer in layers)
        if index is not None and docker is None:
            return "oci"
        if index is not None:
            return "docker25-containerd" if compressed else "docker25-classic"
        names = [layer.blob.name for layer in layers]
        if any(n.endswith("/layer.tar") for n in names):
            return "docker-save"
        if self.store.lookup(docker.name) and any(
            n.startswith("sha256:") for n in self.store.blobs
        ):
            return "kaniko"
        return "docker-archive"


def _names_from_annotations(annotations, what):
    if IMAGE_NAME in annotations:
        return [parse_reference(annotations[IMAGE_NAME], f"{what} name")]
    if REF_NAME in annotations:
        return [parse_ref_name(annotations[REF_NAME], f"{what} ref.name")]
    return []


def _compression_of(media_type):
    if media_type.endswith("gzip"):
        return "gzip"
    if media_type.endswith("zstd"):
        return "zstd"
    return None


def _document_media_type(doc, what):
    """A document's own `mediaType`, checked; None if it has none."""
    media_type = doc.get("mediaType")
    if media_type is None or media_type == "":
        return None
    if not isinstance(media_type, str) or len(media_type) > 255:
        raise CorruptArchive(f"{what} has an invalid mediaType")
    return media_type


def _platform(listed, config, what):
    """The platform of an image: the config's, which an index entry's
    must agree with (os, architecture, and variant where both say)."""
    if listed is None:
        return config
    mismatch = (
        (config.os and listed.os != config.os)
        or (config.architecture and listed.architecture != config.architecture)
        or (
            config.variant
            and listed.variant
            and listed.variant != config.variant
        )
    )
    if mismatch:
        raise CorruptArchive(
            f"{what} is listed for platform {listed} but its config says "
            f"{config}"
        )
    return listed


def _sniff_media_type(blob, what):
    doc = load_json(_document_bytes(blob), what)
    if isinstance(doc, dict):
        media_type = _document_media_type(doc, what)
        if media_type:
            return media_type
        if "manifests" in doc:
            return MediaType.OCI_INDEX
        if "layers" in doc:
            return MediaType.OCI_MANIFEST
    return None
