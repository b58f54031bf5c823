# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Image names, parsed and normalised as Docker does.

Names come from the archive (`RepoTags`, `io.containerd.image.name`,
`org.opencontainers.image.ref.name`) and end up in `index.json` and in
the summary we print, so they are checked against the distribution
reference grammar (github.com/distribution/reference) and refused, with
one line, when they do not match: no control characters, no path-like
names, nothing that could forge a line of the summary.
"""

__all__ = [
    "is_registry_host",
    "is_repository_path",
    "is_tag",
    "parse_reference",
    "parse_ref_name",
]

import re

from lpbuildd.ociimage.errors import CorruptArchive

MAX_NAME_LENGTH = 255
DEFAULT_DOMAIN = "docker.io"
OFFICIAL_PREFIX = "library/"

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[_.]|__|-+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = (
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
    r"|\[(?:[a-fA-F0-9:]+)\])"
)
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_PATH = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = (
    r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
)

_REFERENCE = re.compile(
    rf"(?P<name>(?:{_DOMAIN}/)?{_PATH})"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?",
    re.ASCII,
)
_TAG_ONLY = re.compile(_TAG, re.ASCII)
_PATH_ONLY = re.compile(_PATH, re.ASCII)
_DOMAIN_ONLY = re.compile(_DOMAIN, re.ASCII)


def is_registry_host(text):
    """Whether ``text`` is a registry's ``host[:port]``, as in a reference."""
    return (
        isinstance(text, str)
        and len(text) <= MAX_NAME_LENGTH
        and _DOMAIN_ONLY.fullmatch(text) is not None
    )


def is_repository_path(text):
    """Whether ``text`` names a repository within a registry.

    Lower-case path components (``team/image``), as ``docker push``
    takes after the registry's host: no host, tag or digest, at most
    `MAX_NAME_LENGTH` characters.
    """
    return (
        isinstance(text, str)
        and len(text) <= MAX_NAME_LENGTH
        and _PATH_ONLY.fullmatch(text) is not None
    )


def is_tag(text):
    """Whether ``text`` is a tag: ``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``."""
    return isinstance(text, str) and _TAG_ONLY.fullmatch(text) is not None


def _invalid(text, what):
    return CorruptArchive(
        f"{what} {text[:100]!r} is not a valid image reference"
    )


def _normalise_name(name):
    """docker.io/library/x for x, docker.io/a/b for a/b (as Docker)."""
    first, slash, rest = name.partition("/")
    if not slash or (
        not any(c in first for c in ".:")
        and first != "localhost"
        and first.lower() == first
    ):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, rest
    if domain == "index.docker.io":
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    return f"{domain}/{remainder}"


def parse_reference(text, what, implied_tag="latest"):
    """(repository, tag or None) for a full image reference.

    The repository is normalised (``ubuntu`` is
    ``docker.io/library/ubuntu``); a reference with neither tag nor
    digest gets `implied_tag`, as Docker gives ``:latest``.  A digest,
    if any, is checked but not kept.

    :raises CorruptArchive: if `text` is not a valid reference.
    """
    if not isinstance(text, str):
        raise CorruptArchive(f"{what} is not a string")
    match = _REFERENCE.fullmatch(text)
    if match is None:
        raise _invalid(text, what)
    name = match.group("name")
    repository = _normalise_name(name)
    # The remote name must be lower case, whatever the domain.
    if repository.split("/", 1)[1] != repository.split("/", 1)[1].lower():
        raise _invalid(text, what)
    if len(repository) > MAX_NAME_LENGTH:
        raise CorruptArchive(
            f"{what} {text[:100]!r} is longer than {MAX_NAME_LENGTH} "
            f"characters"
        )
    tag = match.group("tag")
    if tag is None and match.group("digest") is None:
        tag = implied_tag
    return repository, tag


def parse_ref_name(text, what):
    """(repository or None, tag or None) for an OCI ref.name annotation.

    It may be a bare tag (``24.04``) or a full reference.
    """
    if not isinstance(text, str):
        raise CorruptArchive(f"{what} is not a string")
    if _TAG_ONLY.fullmatch(text):
        return None, text
    return parse_reference(text, what)
