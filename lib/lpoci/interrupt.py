# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""SIGTERM and SIGINT end a command the way Ctrl-C does.

`handle_signals` makes both signals raise `Interrupted` (a
`KeyboardInterrupt`, so code that already cleans up after Ctrl-C does
the same for SIGTERM) in the main thread.  While a Twisted reactor runs
in the main thread (`lpoci.run.run_reactor`), raising there would be
swallowed by the reactor's loop: `reactor_interrupts` makes the handler
*crash* the reactor instead (no shutdown triggers, so no waiting for
threads), after which the caller raises `Interrupted`.

The command then ends with one line on stderr, ``lp-oci: error:
interrupted (SIGTERM)``, and exit status 128 + the signal number (130
for SIGINT, 143 for SIGTERM), as a shell reports a process killed by
that signal.
"""

__all__ = [
    "Interrupted",
    "handle_signals",
    "raise_if_interrupted",
    "reactor_interrupts",
]

import contextlib
import signal
import threading


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGINT arrived."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self):
        return signal.Signals(self.signum).name

    @property
    def exit_status(self):
        return 128 + self.signum

    def __str__(self):
        return f"interrupted ({self.name})"


_state = threading.local()
_pending = []


def _handler(signum, frame):
    reactor = getattr(_state, "reactor", None)
    if reactor is not None:
        _pending.append(signum)
        reactor.crash()
        # Wake the reactor from its poll so that it sees the crash.
        wake = getattr(reactor, "wakeUp", None)
        if wake is not None:
            wake()
        return
    raise Interrupted(signum)


def handle_signals():
    """Route SIGTERM and SIGINT to `Interrupted` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _handler)


@contextlib.contextmanager
def reactor_interrupts(reactor):
    """While the reactor runs, a signal crashes it (see module doc)."""
    _state.reactor = reactor
    try:
        yield
    finally:
        _state.reactor = None


def raise_if_interrupted():
    """Raise `Interrupted` for a signal that crashed the reactor."""
    if _pending:
        raise Interrupted(_pending.pop())
