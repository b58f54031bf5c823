# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""A pipeline stage: a function applied to chunks in its own thread.

Hashing (hashlib), inflating (ISA-L, zstd) and compressing release the
GIL on large buffers, so chaining them through stages spreads one
stream's work over the cores: reading and hashing the raw bytes in one
thread, inflating in a second, hashing the inflated bytes in a third.
Each stage is fed through a short queue, so memory stays bounded by
`DEPTH` chunks per stage whatever the stream's size.
"""

__all__ = [
    "Cancelled",
    "Stage",
]

import queue
import threading

# Chunks waiting for a stage (each at most ~1 MiB in gather).
DEPTH = 2


class Cancelled(Exception):
    """Raised in a worker when the gather it works for was stopped."""


class Stage:
    """Apply `function` to every chunk `put`, in a thread, in order.

    The first exception raised by `function` (a corrupt stream, a
    decompression bomb, MemoryError) is raised again in the feeding
    thread, by the next `put` or by `close`; the stage's thread then
    only drains its queue, so the feeder never blocks on a dead stage.
    """

    def __init__(self, function, name="stage", depth=DEPTH):
        self._function = function
        self._queue = queue.Queue(maxsize=depth)
        self._error = None
        self._closed = False
        self._thread = threading.Thread(
            target=self._run, name=name, daemon=True
        )
        self._thread.start()

    def _run(self):
        while True:
            data = self._queue.get()
            if data is None:
                return
            if self._error is None:
                try:
                    self._function(data)
                except BaseException as e:
                    self._error = e

    def put(self, data):
        """Queue `data` (bytes that nobody will modify) for the stage."""
        if self._error is not None:
            raise self._error
        self._queue.put(data)

    def close(self):
        """Wait for the queued chunks; raise the stage's error, if any.

        Safe to call more than once, and from a `finally` clause.
        """
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()
        if self._error is not None:
            raise self._error
