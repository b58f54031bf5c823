# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for OCI registry credentials and push rules, on every backend."""

__all__ = []

import base64
import json
import os

import transaction
from fixtures import EnvironmentVariable, TempDir
from nacl.public import PrivateKey
from zope.component import getUtility

from lp.oci.interfaces.ocipushedblob import IOCIPushedBlobSet
from lp.oci.interfaces.ocipushrule import (
    IOCIPushRule,
    IOCIPushRuleSet,
    OCIPushRuleAlreadyExists,
)
from lp.oci.interfaces.ociregistrycredentials import (
    IOCIRegistryCredentials,
    IOCIRegistryCredentialsSet,
    OCIRegistryCredentialsNotOwner,
    OCIRegistryCredentialsURLError,
)
from lp.oci.model.ociregistrycredentials import (
    PRIVATE_KEY_ENV,
    PRIVATE_KEY_FILE_ENV,
    PUBLIC_KEY_ENV,
    OCIRegistryCredentials,
)
from lp.services.crypto.interfaces import CryptoError
from lp.services.database.interfaces import IStore
from lp.services.database.migration import backend_name
from lp.testing import TestCaseWithFactory
from lp.testing.layers import (
    LaunchpadZopelessLayer,
    SQLiteLaunchpadZopelessLayer,
)
from ocitypes.digest import Digest


class TestOCIRegistryCredentials(TestCaseWithFactory):
    layer = LaunchpadZopelessLayer
    expected_backend = "postgres"

    def test_backend(self):
        self.assertEqual(
            self.expected_backend, backend_name(IStore(OCIRegistryCredentials))
        )

    def test_new(self):
        owner = self.factory.makePerson()
        credentials = getUtility(IOCIRegistryCredentialsSet).new(
            owner,
            owner,
            "https://registry.example/",
            {"username": "alice", "password": "s3cret-pw"},
        )
        transaction.commit()
        self.assertTrue(IOCIRegistryCredentials.providedBy(credentials))
        self.assertEqual(owner, credentials.owner)
        self.assertEqual("https://registry.example", credentials.url)
        self.assertEqual("alice", credentials.username)
        self.assertEqual(
            {"username": "alice", "password": "s3cret-pw"},
            credentials.getCredentials(),
        )

    def test_secret_never_in_clear(self):
        credentials = self.factory.makeOCIRegistryCredentials(
            credentials={"username": "alice", "password": "s3cret-pw"}
        )
        transaction.commit()
        (raw,) = (
            IStore(OCIRegistryCredentials)
            .execute(
                "SELECT credentials FROM OCIRegistryCredentials "
                "WHERE id = %d" % credentials.id
            )
            .get_one()
        )
        text = raw if isinstance(raw, str) else json.dumps(raw)
        self.assertIn("alice", text)
        self.assertNotIn("s3cret-pw", text)
        self.assertNotIn("s3cret-pw", repr(credentials))

    def test_decrypt_needs_private_key(self):
        credentials = self.factory.makeOCIRegistryCredentials()
        other = base64.b64encode(bytes(PrivateKey.generate())).decode()
        self.useFixture(EnvironmentVariable(PRIVATE_KEY_ENV, other))
        e = self.assertRaises(CryptoError, credentials.getCredentials)
        self.assertNotIn("password", str(e))

    def test_private_key_file(self):
        key = os.environ[PRIVATE_KEY_ENV]
        path = os.path.join(self.useFixture(TempDir()).path, "key")
        with open(path, "w") as f:
            f.write(key + "\n")
        self.useFixture(EnvironmentVariable(PRIVATE_KEY_ENV, None))
        self.useFixture(EnvironmentVariable(PRIVATE_KEY_FILE_ENV, path))
        credentials = self.factory.makeOCIRegistryCredentials(
            credentials={"username": "u", "password": "p"}
        )
        self.assertEqual(
            {"username": "u", "password": "p"}, credentials.getCredentials()
        )

    def test_public_key_only_stores(self):
        private = base64.b64decode(os.environ[PRIVATE_KEY_ENV])
        public = bytes(PrivateKey(private).public_key)
        self.useFixture(EnvironmentVariable(PRIVATE_KEY_ENV, None))
        self.useFixture(
            EnvironmentVariable(
                PUBLIC_KEY_ENV, base64.b64encode(public).decode()
            )
        )
        credentials = self.factory.makeOCIRegistryCredentials(
            credentials={"username": "u", "password": "p"}
        )
        self.assertRaises(CryptoError, credentials.getCredentials)

    def test_anonymous(self):
        credentials = self.factory.makeOCIRegistryCredentials(credentials={})
        self.assertIsNone(credentials.username)
        self.assertEqual({}, credentials.getCredentials())

    def test_url_with_credentials_refused(self):
        self.assertRaises(
            OCIRegistryCredentialsURLError,
            self.factory.makeOCIRegistryCredentials,
            url="https://alice:pw@registry.example",
        )
        self.assertRaises(
            OCIRegistryCredentialsURLError,
            self.factory.makeOCIRegistryCredentials,
            url="ftp://registry.example",
        )

    def test_not_owner(self):
        registrant = self.factory.makePerson()
        owner = self.factory.makePerson()
        self.assertRaises(
            OCIRegistryCredentialsNotOwner,
            getUtility(IOCIRegistryCredentialsSet).new,
            registrant,
            owner,
            "https://registry.example",
            {},
        )

    def test_getOrCreate_and_findByOwner(self):
        owner = self.factory.makePerson()
        credentials_set = getUtility(IOCIRegistryCredentialsSet)
        first = credentials_set.getOrCreate(
            owner,
            owner,
            "https://r.example",
            {"username": "a", "password": "b"},
        )
        again = credentials_set.getOrCreate(
            owner,
            owner,
            "https://r.example",
            {"username": "a", "password": "b"},
        )
        other = credentials_set.getOrCreate(
            owner,
            owner,
            "https://r.example",
            {"username": "a", "password": "c"},
        )
        self.assertEqual(first, again)
        self.assertNotEqual(first, other)
        self.assertEqual(
            [first, other], list(credentials_set.findByOwner(owner))
        )
        self.assertEqual(first, credentials_set.getByID(first.id))


class TestOCIRegistryCredentialsSQLite(TestOCIRegistryCredentials):
    layer = SQLiteLaunchpadZopelessLayer
    expected_backend = "sqlite"


class TestOCIPushRule(TestCaseWithFactory):
    layer = LaunchpadZopelessLayer

    def test_new(self):
        recipe = self.factory.makeOCIRecipe()
        credentials = self.factory.makeOCIRegistryCredentials(
            url="https://registry.example",
            credentials={"username": "alice", "password": "pw"},
        )
        self.assertFalse(recipe.can_upload_to_registry)
        rule = getUtility(IOCIPushRuleSet).new(recipe, credentials, "org/img")
        transaction.commit()
        self.assertTrue(IOCIPushRule.providedBy(rule))
        self.assertEqual("https://registry.example", rule.registry_url)
        self.assertEqual("alice", rule.username)
        self.assertEqual("org/img", rule.image_name)
        self.assertEqual([rule], recipe.push_rules)
        self.assertTrue(recipe.can_upload_to_registry)
        self.assertEqual(
            [rule],
            list(getUtility(IOCIPushRuleSet).findByRecipe(recipe)),
        )
        self.assertEqual(
            [rule],
            list(
                getUtility(IOCIPushRuleSet).findByRegistryCredentials(
                    credentials
                )
            ),
        )

    def test_duplicate(self):
        rule = self.factory.makeOCIPushRule(image_name="a")
        self.assertRaises(
            OCIPushRuleAlreadyExists,
            getUtility(IOCIPushRuleSet).new,
            rule.recipe,
            rule.registry_credentials,
            "a",
        )
        other = self.factory.makeOCIPushRule(
            recipe=rule.recipe,
            registry_credentials=rule.registry_credentials,
            image_name="b",
        )
        self.assertRaises(OCIPushRuleAlreadyExists, other.setNewImageName, "a")
        other.setNewImageName("c")
        self.assertEqual("c", other.image_name)

    def test_destroySelf(self):
        rule = self.factory.makeOCIPushRule()
        recipe = rule.recipe
        rule.destroySelf()
        self.assertEqual([], recipe.push_rules)


class TestOCIPushRuleSQLite(TestOCIPushRule):
    layer = SQLiteLaunchpadZopelessLayer


class TestOCIPushedBlobSet(TestCaseWithFactory):
    layer = LaunchpadZopelessLayer

    def test_record_and_find(self):
        blobs = getUtility(IOCIPushedBlobSet)
        digest = Digest.of_bytes(b"layer")
        url = "https://registry.example"
        self.assertEqual([], blobs.findRepositories(url, digest))
        blobs.record(url, "a/one", digest, 5)
        blobs.record(url, "a/two", digest, 5)
        blobs.record("https://other.example", "a/three", digest, 5)
        again = blobs.record(url, "a/one", digest, 5)
        transaction.commit()
        self.assertEqual(digest, again.digest)
        self.assertEqual(
            ["a/one", "a/two"], blobs.findRepositories(url, digest)
        )
        self.assertEqual(
            ["a/two"], blobs.findRepositories(url, digest, exclude="a/one")
        )
        blobs.forget(url, "a/two", digest)
        self.assertEqual(["a/one"], blobs.findRepositories(url, digest))


class TestOCIPushedBlobSetSQLite(TestOCIPushedBlobSet):
    layer = SQLiteLaunchpadZopelessLayer
