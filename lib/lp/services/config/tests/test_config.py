# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The lazr.config configuration and its selection."""

import io
import os

from fixtures import EnvironmentVariable, TempDir

from lp.services.config import (
    CONFIG_ROOT,
    ConfigError,
    config,
    config_path,
    load_config,
)
from lp.testing import TestCase
from lpoci.cli import main


class TestConfig(TestCase):
    def writeConfig(self, text):
        path = os.path.join(self.useFixture(TempDir()).path, "test.conf")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_shipped_configurations_are_valid(self):
        for instance in ("development", "testrunner", "production-example"):
            load_config(instance)
        production = load_config("production-example")
        self.assertEqual(
            "https://launchpad.example.com/", production.webservice.root_url
        )
        self.assertEqual(4, production.webservice.workers)
        self.assertTrue(production.database.url.startswith("postgres:"))

    def test_development_is_the_embedded_defaults(self):
        development = load_config("development")
        self.assertIsNone(development.database.url)
        self.assertIsNone(development.librarian.root)
        self.assertEqual("127.0.0.1", development.webservice.host)
        self.assertEqual(8085, development.webservice.port)

    def test_selected_by_LPCONFIG(self):
        self.useFixture(EnvironmentVariable("LPCONFIG", "production-example"))
        self.assertEqual(
            os.path.join(
                CONFIG_ROOT, "production-example", "launchpad-lazr.conf"
            ),
            config_path(),
        )
        self.assertEqual(4, config.webservice.workers)
        path = self.writeConfig("[webservice]\nworkers: 7\n")
        self.useFixture(EnvironmentVariable("LPCONFIG", path))
        self.assertEqual(7, config.webservice.workers)

    def test_bad_value_names_the_key(self):
        path = self.writeConfig("[webservice]\nport: http\n")
        error = self.assertRaises(ConfigError, load_config, path)
        self.assertIn("[webservice] port: 'http'", str(error))
        self.assertEqual(1, len(str(error).splitlines()))

    def test_unknown_key_names_the_key(self):
        path = self.writeConfig("[webservice]\nprot: 1\n")
        error = self.assertRaises(ConfigError, load_config, path)
        self.assertIn("webservice does not have a prot key", str(error))

    def test_bad_database_url(self):
        path = self.writeConfig("[database]\nurl: mysql://db\n")
        error = self.assertRaises(ConfigError, load_config, path)
        self.assertIn("[database] url", str(error))

    def test_lp_oci_reports_one_line(self):
        path = self.writeConfig("[webservice]\nworkers: 0\n")
        # lp-oci --config sets LPCONFIG for its children; restore it.
        self.useFixture(EnvironmentVariable("LPCONFIG"))
        stderr = io.StringIO()
        status = main(
            ["--config", path, "serve", "--state", "/nonexistent"],
            stderr=stderr,
        )
        self.assertEqual(1, status)
        self.assertEqual(
            f"lp-oci: error: {path}: [webservice] workers: 0: expected an "
            "integer of at least 1\n",
            stderr.getvalue(),
        )
