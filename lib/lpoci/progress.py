# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The progress of ``lp-oci run``: one line per phase, on stderr.

A run has up to four phases, ``gather`` (the builder reads the
archive), ``fetch`` (the build farm downloads what the librarian lacks),
``processing`` (upload processing stores it) and, with ``--registry``,
``push`` (the registry upload job).  Each shows its bytes, its rate and
its elapsed time (while it runs, ``of N MB`` when its total is known):

- on a terminal, the phase's line is rewritten in place (``\\r``) at
  most every `INTERVAL` seconds while it runs, and left in place, final,
  when it ends;
- elsewhere (a log, a pipe), one line per phase when it ends, so that
  logs say where the time went without being flooded;
- with ``--quiet`` (or ``--json``), nothing.

``--verbose`` adds the log of the build farm and upload processing
(retries, warnings, each file grabbed) through `ProgressLogHandler`,
which clears a running phase's line before writing a record.

`Phase.update` may be called from any thread (gathering runs in one).
Every phase records its ``seconds`` and ``bytes``, which ``--json``
reports as ``"phases"``.
"""

__all__ = [
    "INTERVAL",
    "Phase",
    "ProgressLogHandler",
    "RunProgress",
]

import logging
import threading
import time

# Seconds between two redraws of a running phase's line on a terminal.
INTERVAL = 0.2


def _mb(n):
    return f"{n / 1e6:.1f} MB"


class Phase:
    """One phase of a run; see the module docstring."""

    def __init__(self, progress, name, total=None):
        self._progress = progress
        self.name = name
        self.total = total
        self.bytes = 0
        self.note = None
        self.started = progress.clock()
        self.seconds = None
        self._drawn = None

    @property
    def elapsed(self):
        if self.seconds is not None:
            return self.seconds
        return self._progress.clock() - self.started

    def line(self):
        """The phase's line, as it stands."""
        elapsed = self.elapsed
        rate = self.bytes / elapsed / 1e6 if elapsed > 0 else 0.0
        if self.total and self.seconds is None:
            amount = f"{_mb(self.bytes)} of {_mb(self.total)}"
        else:
            amount = _mb(self.bytes)
        line = f"{self.name}: {amount}, {rate:.0f} MB/s, {elapsed:.1f} s"
        if self.note:
            line += f" ({self.note})"
        return line

    def update(self, done):
        """``done`` bytes so far (thread-safe)."""
        self.bytes = done
        self._progress._draw(self)

    def add(self, count):
        """``count`` more bytes done (thread-safe)."""
        with self._progress._lock:
            self.bytes += count
        self._progress._draw(self)

    def finish(self, done=None, note=None):
        """End the phase; its final line is shown."""
        if done is not None:
            self.bytes = done
        if note is not None:
            self.note = note
        self.seconds = self._progress.clock() - self.started
        self._progress._end(self)
        return self

    def asdict(self):
        return {"seconds": self.elapsed, "bytes": self.bytes}


class RunProgress:
    """The phases of a run, shown on ``stream``.

    :param mode: ``"tty"`` (lines rewritten in place), ``"lines"`` (one
        line per phase end) or ``"off"``; by default ``"tty"`` if
        ``stream`` is a terminal, else ``"lines"``.
    """

    def __init__(self, stream, mode=None, clock=time.monotonic):
        if mode is None:
            isatty = getattr(stream, "isatty", None)
            mode = "tty" if isatty is not None and isatty() else "lines"
        if mode not in ("tty", "lines", "off"):
            raise ValueError(f"Unknown progress mode {mode!r}")
        self.stream = stream
        self.mode = mode
        self.clock = clock
        self.phases = {}
        self._lock = threading.Lock()
        self._last_draw = None

    def phase(self, name, total=None):
        """Start the phase ``name``."""
        phase = Phase(self, name, total)
        self.phases[name] = phase
        self._draw(phase, force=True)
        return phase

    def asdict(self):
        """``{name: {"seconds": s, "bytes": n}}`` for every phase."""
        return {name: phase.asdict() for name, phase in self.phases.items()}

    def _draw(self, phase, force=False):
        if self.mode != "tty" or phase.seconds is not None:
            return
        now = self.clock()
        with self._lock:
            if (
                not force
                and self._last_draw is not None
                and now - self._last_draw < INTERVAL
            ):
                return
            self._last_draw = now
            self._write("\r" + phase.line() + "\033[K")

    def _end(self, phase):
        if self.mode == "off":
            return
        with self._lock:
            prefix = "\r" if self.mode == "tty" else ""
            suffix = "\033[K\n" if self.mode == "tty" else "\n"
            self._write(prefix + phase.line() + suffix)
            self._last_draw = None

    def log(self, text):
        """Write a line of its own, above a running phase's line."""
        with self._lock:
            if self.mode == "tty" and self._last_draw is not None:
                self._write("\r\033[K" + text + "\n")
                self._last_draw = None
            else:
                self._write(text + "\n")

    def _write(self, text):
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            # A closed terminal must not fail the build.
            pass


class ProgressLogHandler(logging.Handler):
    """Log records as ``lp-oci: <level>: <message>`` lines, via `log`."""

    def __init__(self, progress, level=logging.INFO):
        super().__init__(level)
        self.progress = progress
        self.setFormatter(
            logging.Formatter("lp-oci: %(levelname)s: %(message)s")
        )

    def emit(self, record):
        try:
            text = " ".join(self.format(record).split())
        except Exception:
            self.handleError(record)
            return
        self.progress.log(text)
