# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Running one harness under atheris."""

__all__ = [
    "fuzz_main",
]

import importlib
import sys


def fuzz_main(module_name):
    """Instrument the harness' readers, then hand over to libFuzzer.

    The harness imports what it runs (`prepare`) inside
    `atheris.instrument_imports`, so that the readers' modules (those
    under `INSTRUMENT`) are instrumented for coverage; arguments are
    libFuzzer's (corpus directories, ``-max_total_time=N``, ...).
    """
    import atheris

    module = importlib.import_module(module_name)
    with atheris.instrument_imports(include=list(module.INSTRUMENT)):
        module.prepare()
    atheris.Setup(sys.argv, module.test_one_input)
    atheris.Fuzz()
