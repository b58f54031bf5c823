# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Harness: what the registry client reads from a registry.

The input drives `FuzzRegistryAdapter` (through `BytesRandom`), which
answers the client's requests at the wire: the tag's manifest list,
index or manifest, a config, digest headers, error bodies, a token
challenge and the token server's answer, each valid or damaged.  The
first byte chooses the manifest-list merge or the token exchange.
Property: the client returns, or raises what its callers handle
(`OCIRegistryError`, `requests.RequestException`); anything else is a
crash.
"""

__all__ = [
    "INSTRUMENT",
    "prepare",
    "seeds",
    "test_one_input",
]

INSTRUMENT = (
    "lp.oci.model.ociregistryclient",
    "lp.oci.model.ociregistryhttp",
    "ocitypes",
)


def prepare():
    import lp.oci.tests.registryfuzzing  # noqa: F401


def seeds():
    return [bytes([0]) + bytes(range(64)), bytes([1]) + bytes(range(64))]


def test_one_input(data):
    from lp.oci.tests.registryfuzzing import (
        ALLOWED_ERRORS,
        run_manifest_list_update,
        run_token_exchange,
    )
    from lpbuildd.tests.fuzzing import BytesRandom

    if not data:
        return
    run = run_token_exchange if data[0] & 1 else run_manifest_list_update
    try:
        run(BytesRandom(data[1:]))
    except ALLOWED_ERRORS:
        pass


if __name__ == "__main__":
    from fuzz.common import fuzz_main

    fuzz_main("fuzz.registry")
