# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Loggers that keep what they are told."""

__all__ = [
    "BufferLogger",
]

import io
import logging
from itertools import count

_serial = count(1)


class BufferLogger(logging.Logger):
    """A logger that keeps its messages for `getLogBuffer`.

    Messages also go to ``parent`` (a `logging.Logger`) when given, so
    that a script's own log sees them too.
    """

    def __init__(self, parent=None, level=logging.DEBUG):
        super().__init__(f"buffer-logger-{next(_serial)}", level)
        self._buffer = io.StringIO()
        handler = logging.StreamHandler(self._buffer)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        self.addHandler(handler)
        if parent is not None:
            self.parent = parent
        else:
            self.propagate = False

    def getLogBuffer(self):
        """Everything logged so far, one message a line."""
        return self._buffer.getvalue()
