# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Parse untrusted JSON documents with bounds on size and depth."""

__all__ = [
    "MAX_JSON_CONTAINERS",
    "MAX_JSON_DEPTH",
    "MAX_JSON_ELEMENTS",
    "MAX_JSON_SIZE",
    "canonical_json",
    "load_json",
]

import json
import re

from ocitypes.errors import MalformedContent

# Registries must accept manifests of at least 4 MiB and distribution
# refuses larger ones; configs with long histories stay far below this.
MAX_JSON_SIZE = 4 * 1024 * 1024
MAX_JSON_DEPTH = 64
# Parsed JSON costs up to twenty times its size in objects ("{}," is 3
# bytes, an empty dict 64).  These bound what a document may hold (an
# upper bound, counting brackets and separators inside strings too) so
# that parsing one stays well under 100 MB; real manifests, indexes and
# configs hold a few thousand.
MAX_JSON_CONTAINERS = 100000
MAX_JSON_ELEMENTS = 250000


def _depth(value):
    """The nesting depth of a parsed JSON value, iteratively.

    Walks with one iterator per level, so it allocates nothing per
    value (a 4 MiB document can hold over a million).

    :raises _InvalidString: for a string that is not valid Unicode (a
        lone surrogate, valid JSON but not encodable).
    """
    deepest = 0
    stack = [iter((value,))]
    while stack:
        for item in stack[-1]:
            if isinstance(item, dict):
                stack.append(iter(item.values()))
            elif isinstance(item, list):
                stack.append(iter(item))
            else:
                if isinstance(item, str):
                    _check_unicode(item)
                continue
            deepest = max(deepest, len(stack) - 1)
            if deepest > MAX_JSON_DEPTH:
                return deepest
            break
        else:
            stack.pop()
    return deepest


_SURROGATE = re.compile("[\ud800-\udfff]")


class _InvalidString(Exception):
    pass


class _DuplicateKey(Exception):
    pass


def _check_unicode(text):
    if not text.isascii() and _SURROGATE.search(text):
        raise _InvalidString(text)


def _object(pairs):
    """A JSON object, refusing duplicate and non-Unicode keys."""
    value = dict(pairs)
    if len(value) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    for key in value:
        _check_unicode(key)
    return value


def _refuse_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")


def load_json(data, what):
    """Parse `data` (bytes) as JSON, naming `what` in any error.

    :raises MalformedContent: if the document is too large, too deep, not
        UTF-8 or not valid JSON, has an object with a duplicate key (which
        readers resolve differently), or a string that is not valid
        Unicode (a lone surrogate escape).
    """
    if len(data) > MAX_JSON_SIZE:
        raise MalformedContent(
            f"{what} is too large ({len(data)} bytes; the limit is "
            f"{MAX_JSON_SIZE})"
        )
    containers = data.count(b"{") + data.count(b"[")
    if containers > MAX_JSON_CONTAINERS:
        raise MalformedContent(
            f"{what} has too many objects and arrays (over "
            f"{MAX_JSON_CONTAINERS})"
        )
    elements = data.count(b",") + data.count(b":")
    if elements > MAX_JSON_ELEMENTS:
        raise MalformedContent(
            f"{what} has too many elements (over {MAX_JSON_ELEMENTS})"
        )
    try:
        value = json.loads(
            data.decode("utf-8"),
            parse_constant=_refuse_constant,
            object_pairs_hook=_object,
        )
        depth = _depth(value)
    except _DuplicateKey as e:
        raise MalformedContent(
            f"{what} has a duplicate key {str(e.args[0])[:80]!r}"
        )
    except _InvalidString as e:
        raise MalformedContent(
            f"{what} has a string that is not valid Unicode: "
            f"{e.args[0][:80]!r}"
        )
    except RecursionError:
        raise MalformedContent(f"{what} is too deeply nested")
    except (UnicodeDecodeError, ValueError) as e:
        raise MalformedContent(f"{what} is not valid JSON: {e}")
    if depth > MAX_JSON_DEPTH:
        raise MalformedContent(
            f"{what} is too deeply nested (more than {MAX_JSON_DEPTH} "
            f"levels)"
        )
    return value


def canonical_json(value):
    """Serialise JSON we write ourselves: compact, sorted, stable."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode(
        "utf-8"
    )
