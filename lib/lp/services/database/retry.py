# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Which database errors mean "run the transaction again".

Launchpad's publication retries a request on the same conditions
(`lp.services.webapp.publication`'s ``RETRY_ERRORS``): another
transaction won a race that this one can only lose, and the whole
transaction, run again from the start, will see the winner's work.

- PostgreSQL: serialization failures (``40001``: under repeatable read,
  e.g. inserting content another transaction committed after this
  one's snapshot), deadlocks (``40P01``) and unique violations
  (``23505``: the other side of an insert-or-get race).
- SQLite: ``database is locked`` once the busy timeout has expired.
- `RetryTransaction`, raised by code that detects such a race itself.
"""

__all__ = [
    "RETRY_ATTEMPTS",
    "RetryTransaction",
    "is_retryable_error",
    "retry_delay",
]

import random
import sqlite3

# Attempts in all, with a short growing, jittered pause between them
# (`retry_delay`).
RETRY_ATTEMPTS = 8
_RETRY_PGCODES = frozenset({"40001", "40P01", "23505"})


class RetryTransaction(Exception):
    """Raised by code that knows its transaction must be run again."""


def is_retryable_error(error):
    """Whether ``error`` means the transaction should be run again.

    Storm re-raises driver errors as its own, chained to the driver's
    (``__cause__``), so the chain is followed.
    """
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, RetryTransaction):
            return True
        if getattr(error, "pgcode", None) in _RETRY_PGCODES:
            return True
        if isinstance(error, sqlite3.OperationalError) and (
            "database is locked" in str(error)
        ):
            return True
        error = error.__cause__
    return False


def retry_delay(attempt):
    """Seconds to wait before attempt ``attempt + 1`` (from 1)."""
    return random.uniform(0.5, 1.5) * 0.05 * 2 ** min(attempt, 6)
