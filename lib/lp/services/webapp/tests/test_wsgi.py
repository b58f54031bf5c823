# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for the accounts of the web application."""

__all__ = []

import base64
import os
import tempfile

from testtools import TestCase

from lp.services.webapp.wsgi import (
    PASSWORD_SCHEME,
    WebApplication,
    hash_password,
    load_accounts,
)


def basic(name, password):
    token = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


class TestAccounts(TestCase):
    def writeAccounts(self, text):
        fd, path = tempfile.mkstemp()
        self.addCleanup(os.unlink, path)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return path

    def test_hash_password(self):
        hashed = hash_password("s3cret:with colon", iterations=1000)
        scheme, iterations, salt, derived = hashed.split("$")
        self.assertEqual((PASSWORD_SCHEME, "1000"), (scheme, iterations))
        self.assertNotIn("s3cret", hashed)
        self.assertNotIn(":", hashed)
        # A fresh salt each time.
        self.assertNotEqual(hashed, hash_password("s3cret", iterations=1000))

    def test_load_plain_and_hashed(self):
        path = self.writeAccounts(
            "# comment\n\n"
            "alice:plain\n"
            f"bob:{hash_password('b:pw', iterations=1000)}:admin\n"
        )
        accounts = load_accounts(path)
        self.assertFalse(accounts["alice"].hashed)
        self.assertTrue(accounts["bob"].hashed)
        self.assertTrue(accounts["bob"].admin)
        self.assertTrue(accounts["alice"].checkPassword("plain"))
        self.assertFalse(accounts["alice"].checkPassword("plai"))
        self.assertTrue(accounts["bob"].checkPassword("b:pw"))
        self.assertFalse(accounts["bob"].checkPassword("b:pW"))

    def test_bad_hash_names_the_line(self):
        for stored, message in (
            ("pbkdf2-sha256$1000$c2FsdHNhbHQ", "expected pbkdf2-sha256$"),
            ("pbkdf2-sha256$10$c2FsdHNhbHQ$" + "A" * 43, "iteration"),
            ("pbkdf2-sha256$1000$c2FsdHNhbHQ$AAAA", "32 bytes"),
            ("pbkdf2-sha256$1000$!!!!$" + "A" * 43, "base64"),
        ):
            path = self.writeAccounts(f"alice:x\nbob:{stored}\n")
            e = self.assertRaises(ValueError, load_accounts, path)
            self.assertIn(f"{path}:2: ", str(e))
            self.assertIn(message, str(e))

    def test_authenticate_hashed_remembers_only_what_it_verified(self):
        hashed = hash_password("right", iterations=1000)
        path = self.writeAccounts(f"bob:{hashed}\n")
        app = WebApplication(load_accounts(path))
        ok, account = app.authenticate(basic("bob", "right"))
        self.assertTrue(ok)
        self.assertEqual("bob", account.name)
        self.assertEqual(1, len(app._verified))
        self.assertTrue(app.authenticate(basic("bob", "right"))[0])
        self.assertEqual((False, None), app.authenticate(basic("bob", "wr")))
        self.assertEqual((False, None), app.authenticate(basic("bob", hashed)))
        self.assertEqual(
            (False, None), app.authenticate(basic("carol", "right"))
        )
        self.assertEqual(1, len(app._verified))
