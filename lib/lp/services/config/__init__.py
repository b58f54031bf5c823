# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The lazr.config configuration, selected as Launchpad selects it.

``configs/schema-lazr.conf`` declares every key; an instance is
``configs/<instance>/launchpad-lazr.conf``.  The instance is named by
the ``LPCONFIG`` environment variable (an instance name, or the path of
a ``.conf`` file), by default ``development``.  ``lp-oci --config``
sets ``LPCONFIG``, so that child processes (gunicorn workers) read the
same configuration.

    from lp.services.config import config
    config.webservice.port

A bad configuration raises `ConfigError`, whose text is one line naming
the key.
"""

__all__ = [
    "CONFIG_ROOT",
    "ConfigError",
    "config",
    "config_path",
    "load_config",
]

import os
from urllib.parse import urlsplit

from lazr.config import ImplicitTypeSchema
from lazr.config.interfaces import ConfigErrors, ConfigSchemaError

CONFIG_ROOT = os.path.join(
    os.path.dirname(
        os.path.dirname(
            os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
        )
    ),
    "configs",
)
SCHEMA = os.path.join(CONFIG_ROOT, "schema-lazr.conf")
DEFAULT_INSTANCE = "development"


class ConfigError(Exception):
    """The configuration is unusable; the message names the key."""


def config_path(instance=None):
    """The file of ``instance`` (a name or a path), or of ``LPCONFIG``."""
    instance = instance or os.environ.get("LPCONFIG") or DEFAULT_INSTANCE
    if instance.endswith(".conf") or os.sep in instance:
        return os.path.abspath(instance)
    return os.path.join(CONFIG_ROOT, instance, "launchpad-lazr.conf")


def _optional(check):
    def checker(value):
        return None if value is None else check(value)

    return checker


def _text(value):
    if not isinstance(value, str) or not value:
        raise ValueError("expected a non-empty string")
    return value


def _positive(value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("expected an integer of at least 1")
    return value


def _port(value):
    if _positive(value) > 65535:
        raise ValueError("expected a port number (1-65535)")
    return value


def _database_url(value):
    if not isinstance(value, str) or not value.startswith(
        ("sqlite:", "postgres:")
    ):
        raise ValueError("expected a sqlite: or postgres: URI")
    return value


def _http_url(value):
    parts = urlsplit(value) if isinstance(value, str) else None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or (not parts.hostname)
    ):
        raise ValueError("expected an http: or https: URL")
    return value


# section -> key -> checker of the (implicitly typed) value.
CHECKS = {
    "database": {"url": _optional(_database_url)},
    "librarian": {"root": _optional(_text)},
    "oci": {
        "registry_secrets_private_key_file": _optional(_text),
        "registry_push_parallelism": _optional(_positive),
        "registry_max_retry_after": _positive,
    },
    "webservice": {
        "host": _text,
        "port": _port,
        "root_url": _optional(_http_url),
        "workers": _positive,
        "threads": _positive,
        "keepalive": _positive,
        "timeout": _positive,
        "max_request_body": _positive,
        "accounts_file": _optional(_text),
    },
}


def _first_error(error):
    while isinstance(error, ConfigErrors) and error.errors:
        error = error.errors[0]
    return str(error).strip().splitlines()[0]


def load_config(instance=None):
    """Load, validate and check the configuration of ``instance``.

    :raises ConfigError: naming the file, and the key where there is one.
    """
    path = config_path(instance)
    if not os.path.isfile(path):
        raise ConfigError(f"no configuration at {path} (LPCONFIG)")
    try:
        loaded = ImplicitTypeSchema(SCHEMA).load(path)
        loaded.validate()
    except ConfigSchemaError as e:
        raise ConfigError(f"{path}: {_first_error(e)}") from None
    except Exception as e:
        # lazr.config's parser errors (e.g. a line that is no key).
        first = str(e).strip().splitlines()[0] if str(e).strip() else e
        raise ConfigError(f"{path}: {first}") from None
    for section, checks in CHECKS.items():
        for key, check in checks.items():
            value = loaded[section][key]
            try:
                check(value)
            except ValueError as e:
                raise ConfigError(
                    f"{path}: [{section}] {key}: {value!r}: {e}"
                ) from None
    return loaded


class _LazyConfig:
    """The configuration of ``LPCONFIG``, loaded on first use."""

    _loaded = None
    _instance = None

    def _get(self):
        instance = config_path()
        if self._loaded is None or self._instance != instance:
            self._loaded = load_config(instance)
            self._instance = instance
        return self._loaded

    def __getattr__(self, name):
        return self._get()[name]

    def __getitem__(self, name):
        return self._get()[name]


config = _LazyConfig()
