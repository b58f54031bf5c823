# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for stores, transactions and column types, on every backend."""

__all__ = []

from datetime import datetime, timedelta, timezone

import transaction
from storm.store import Store

from lp.oci.model.ocirecipe import OCIRecipe
from lp.services.database.connection import default_database_uri
from lp.services.database.interfaces import (
    IMasterStore,
    IPrimaryStore,
    IStandbyStore,
    IStore,
)
from lp.testing import TestCase, TestCaseWithFactory
from lp.testing.layers import DatabaseLayer, SQLiteDatabaseLayer


class TestDefaultURI(TestCase):
    def test_default_database_uri(self):
        self.assertEqual(
            "sqlite:/srv/state/launchpad.db",
            default_database_uri("/srv/state"),
        )


class TestStores(TestCaseWithFactory):
    layer = DatabaseLayer

    def test_adapters_give_the_main_store(self):
        store = IStore(OCIRecipe)
        self.assertIsInstance(store, Store)
        self.assertIs(store, IPrimaryStore(OCIRecipe))
        self.assertIs(store, IMasterStore(OCIRecipe))
        self.assertIs(store, IStandbyStore(OCIRecipe))

    def test_instance_adapts_to_its_store(self):
        recipe = self.factory.makeOCIRecipe()
        self.assertIs(Store.of(recipe), IStore(recipe))

    def test_commit_persists(self):
        recipe = self.factory.makeOCIRecipe(name="kept")
        transaction.commit()
        recipe_id = recipe.id
        transaction.abort()
        self.assertEqual(
            "kept", IStore(OCIRecipe).get(OCIRecipe, recipe_id).name
        )

    def test_abort_leaves_no_rows(self):
        self.factory.makeOCIRecipe()
        IStore(OCIRecipe).flush()
        self.assertEqual(1, IStore(OCIRecipe).find(OCIRecipe).count())
        transaction.abort()
        self.assertEqual(0, IStore(OCIRecipe).find(OCIRecipe).count())

    def test_datetimes_round_trip_as_aware_utc(self):
        recipe = self.factory.makeOCIRecipe()
        when = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
        # A non-UTC value is stored as the same instant.
        recipe.date_created = when.astimezone(timezone(timedelta(hours=5)))
        transaction.commit()
        store = IStore(OCIRecipe)
        store.invalidate()
        loaded = store.get(OCIRecipe, recipe.id)
        self.assertEqual(when, loaded.date_created)
        self.assertEqual(timezone.utc, loaded.date_created.tzinfo)
        # Comparisons in queries work with aware values.
        self.assertEqual(
            1,
            store.find(
                OCIRecipe, OCIRecipe.date_created > when - timedelta(1)
            ).count(),
        )
        self.assertEqual(
            0,
            store.find(OCIRecipe, OCIRecipe.date_created > when).count(),
        )


class TestStoresSQLite(TestStores):
    layer = SQLiteDatabaseLayer
