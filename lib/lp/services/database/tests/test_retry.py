# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for `lp.services.database.retry`."""

__all__ = []

import sqlite3

from lp.services.database.retry import RetryTransaction, is_retryable_error
from lp.testing import TestCase


class PgError(Exception):
    def __init__(self, pgcode):
        super().__init__(pgcode)
        self.pgcode = pgcode


class TestIsRetryableError(TestCase):
    def test_retryable(self):
        for error in (
            PgError("40001"),
            PgError("40P01"),
            PgError("23505"),
            sqlite3.OperationalError("database is locked"),
            RetryTransaction("race"),
        ):
            self.assertTrue(is_retryable_error(error), error)

    def test_not_retryable(self):
        for error in (
            PgError("23503"),
            sqlite3.OperationalError("no such table: x"),
            ValueError("database is locked"),
        ):
            self.assertFalse(is_retryable_error(error), error)

    def test_follows_the_cause(self):
        # Storm re-raises driver errors as its own, from the driver's.
        try:
            try:
                raise PgError("40001")
            except PgError as e:
                raise RuntimeError("wrapped") from e
        except RuntimeError as e:
            self.assertTrue(is_retryable_error(e))
