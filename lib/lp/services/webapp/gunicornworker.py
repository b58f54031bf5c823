# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The gunicorn worker class of ``lp-oci serve``.

gunicorn's threaded worker (``gthread``), whose own answers to requests
it cannot parse (a request line that is not ASCII, an invalid header, a
request line or headers over the limits) are one line of plain text,
like the application's, instead of an HTML page quoting the request.
"""

__all__ = [
    "ThreadWorker",
]

import re

from gunicorn import util
from gunicorn.workers import gthread

_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


def write_error(sock, status_int, reason, mesg):
    """gunicorn's `util.write_error`, answering one line of text."""
    mesg = _UNPRINTABLE.sub("?", mesg)[:200]
    body = (f"{reason}: {mesg}" if mesg else reason).encode("ascii") + b"\n"
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


class ThreadWorker(gthread.ThreadWorker):
    """See the module docstring."""

    def init_process(self):
        # In this worker process only.
        util.write_error = write_error
        super().init_process()
