# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Named points where the fault-injection suite may kill the process.

`checkpoint` does nothing unless ``$LP_OCI_FAULTPOINT`` is set when
this module is imported.  ``LP_OCI_FAULTPOINT=NAME:N`` makes the
process SIGKILL itself the N-th time (1-based) it reaches the
checkpoint ``NAME``; ``*:N`` the N-th time it reaches any checkpoint;
``NAME:N:TERM`` (or ``INT``) sends that signal instead of SIGKILL.
``$LP_OCI_FAULTPOINT_TRACE=FILE`` appends each checkpoint's name to
FILE as it is reached, so a test can count the points of a clean run
and choose seeded kill points among them (tests/faults).
"""

__all__ = [
    "checkpoint",
]

import os
import signal
import threading

_SPEC = os.environ.get("LP_OCI_FAULTPOINT")
_TRACE = os.environ.get("LP_OCI_FAULTPOINT_TRACE")
_lock = threading.Lock()
_hits = {}


def _parse(spec):
    parts = (spec or "").split(":")
    signum = signal.SIGKILL
    if len(parts) == 3:
        signum = getattr(signal, f"SIG{parts.pop()}", None)
    try:
        name, n = parts
        return name, int(n), signum
    except ValueError:
        return None, None, None


_NAME, _COUNT, _SIGNAL = _parse(_SPEC)


def checkpoint(name):
    """Maybe die here; see the module docstring.  A no-op normally."""
    if _NAME is None and _TRACE is None:
        return
    with _lock:
        if _TRACE is not None:
            with open(_TRACE, "a") as f:
                f.write(name + "\n")
        if _NAME is None or _NAME not in ("*", name):
            return
        _hits[_NAME] = n = _hits.get(_NAME, 0) + 1
        if n == _COUNT and _SIGNAL is not None:
            os.kill(os.getpid(), _SIGNAL)
