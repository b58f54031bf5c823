# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""A hash whose updates run in a helper thread.

hashlib releases the GIL on large buffers, so while the helper hashes
one chunk the caller can receive, write or hash the next with another
algorithm: one stream of chunks then uses two CPUs.
"""

__all__ = [
    "HashInThread",
]

import hashlib
from concurrent.futures import ThreadPoolExecutor


class HashInThread:
    """A hashlib hash (`hash`) fed chunk by chunk from a helper thread.

    The first chunk is hashed in the caller's thread: content of one
    chunk never starts a thread.  Each chunk must stay unmodified until
    the next `update` (or `wait`) returns.  Call `close` when done, even
    after an error; `hexdigest` waits for the pending chunk.
    """

    def __init__(self, name):
        self.hash = hashlib.new(name)
        self._executor = None
        self._pending = None
        self._started = False

    def update(self, chunk):
        if not self._started:
            self._started = True
            self.hash.update(chunk)
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                1, thread_name_prefix=f"hash-{self.hash.name}"
            )
        self.wait()
        self._pending = self._executor.submit(self.hash.update, chunk)

    def wait(self):
        """Wait until every chunk given so far is hashed."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def hexdigest(self):
        self.wait()
        return self.hash.hexdigest()

    def close(self):
        """Wait for the pending chunk and stop the helper thread."""
        try:
            self.wait()
        finally:
            if self._executor is not None:
                self._executor.shutdown()
                self._executor = None
