# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The web application: the lazr.restful web service and the website.

``/api/<version>/...`` goes to the web service; everything else to the
website (`lp.oci.browser.website`: recipe and build pages and build
files).  Both see the same user: HTTP basic authentication against the
configured accounts.  A request with wrong credentials gets 401 whatever
it asks for; an anonymous one is served what anonymous users may see.

`make_app` is the gunicorn application factory::

    gunicorn 'lp.services.webapp.wsgi:make_app(state_dir="var")'
"""

__all__ = [
    "PASSWORD_SCHEME",
    "WebApplication",
    "hash_password",
    "load_accounts",
    "make_app",
]

import base64
import binascii
import hashlib
import hmac
import importlib
import os
import pkgutil
import re
from collections import OrderedDict
from dataclasses import dataclass

import transaction
from zope.component import getUtility
from zope.configuration import xmlconfig
from zope.interface import implementer
from zope.publisher.publish import publish

from lp.services.webapp.guards import (
    DEFAULT_MAX_REQUEST_BODY,
    RequestRefused,
    check_request,
    nosniff,
)
from lp.services.webservice.interfaces import IWebServiceAccount
from lp.services.webservice.publication import ENVIRON_USER_KEY, SAFE_METHODS

REALM = "Launchpad"

# A stored password is either the password itself (development) or
# ``pbkdf2-sha256$ITERATIONS$SALT$HASH``, salt and hash in unpadded
# URL-safe base64, as `hash_password` (``lp-oci hash-password``) writes
# it.
PASSWORD_SCHEME = "pbkdf2-sha256"
PASSWORD_ITERATIONS = 600_000
# PBKDF2 is slow on purpose and HTTP basic authentication sends the
# password with every request: each worker remembers the credentials it
# has verified (as a keyed hash, never the password), a bounded number.
_VERIFIED_MAX = 1024


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text):
    return base64.b64decode(
        text + "=" * (-len(text) % 4), altchars=b"-_", validate=True
    )


def hash_password(password, salt=None, iterations=PASSWORD_ITERATIONS):
    """The stored form of `password`, for an accounts file."""
    salt = os.urandom(16) if salt is None else salt
    derived = hashlib.pbkdf2_hmac(
        "sha256", password.encode("utf-8"), salt, iterations
    )
    return f"{PASSWORD_SCHEME}${iterations}${_b64(salt)}${_b64(derived)}"


def _parse_hashed(stored):
    """(iterations, salt, hash) of a hashed password; ValueError if it
    is not one that can be checked."""
    parts = stored.split("$")
    if len(parts) != 4:
        raise ValueError(f"expected {PASSWORD_SCHEME}$ITERATIONS$SALT$HASH")
    _, iterations, salt, derived = parts
    if not iterations.isdigit() or not 1000 <= int(iterations) <= 10**8:
        raise ValueError(f"bad iteration count {iterations!r}")
    try:
        salt, derived = _unb64(salt), _unb64(derived)
    except (binascii.Error, ValueError):
        raise ValueError("salt and hash must be URL-safe base64")
    if len(salt) < 8 or len(derived) != 32:
        raise ValueError("salt too short or hash not 32 bytes")
    return int(iterations), salt, derived


@implementer(IWebServiceAccount)
@dataclass(frozen=True)
class Account:
    """See `IWebServiceAccount`.

    `password` is as stored in the accounts file: plain, or hashed (see
    `PASSWORD_SCHEME`).
    """

    name: str
    password: str
    admin: bool = False

    def __repr__(self):
        return f"<Account {self.name}>"

    @property
    def hashed(self):
        return self.password.startswith(PASSWORD_SCHEME + "$")

    def checkPassword(self, password):
        """Whether `password` is this account's (constant time)."""
        if not self.hashed:
            return hmac.compare_digest(
                self.password.encode(), password.encode()
            )
        iterations, salt, expected = _parse_hashed(self.password)
        derived = hashlib.pbkdf2_hmac(
            "sha256", password.encode("utf-8"), salt, iterations
        )
        return hmac.compare_digest(derived, expected)


def load_accounts(path):
    """{name: `Account`} from a file of ``name:password[:admin]`` lines.

    The password may be hashed (see `PASSWORD_SCHEME`); plain passwords
    are for development.  Blank lines and lines starting with ``#`` are
    ignored.
    """
    accounts = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(":")
            if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
                raise ValueError(
                    f"{path}:{number}: expected name:password[:admin]"
                )
            if len(parts) == 3 and parts[2] != "admin":
                raise ValueError(f"{path}:{number}: unknown flag {parts[2]}")
            if parts[1].startswith(PASSWORD_SCHEME + "$"):
                try:
                    _parse_hashed(parts[1])
                except ValueError as e:
                    raise ValueError(f"{path}:{number}: {e}")
            accounts[parts[0]] = Account(parts[0], parts[1], len(parts) == 3)
    return accounts


_OAUTH_PARAM = re.compile(r'\s*([A-Za-z_]+)="([^"]*)"\s*(?:,|$)')


def _is_anonymous_oauth(value):
    """Whether an ``OAuth`` Authorization value carries no token."""
    params = dict(_OAUTH_PARAM.findall(value))
    return "oauth_consumer_key" in params and not params.get("oauth_token")


def _refused(start_response, refusal):
    body = f"{refusal}\n".encode("utf-8")
    start_response(
        {400: "400 Bad Request", 413: "413 Content Too Large"}.get(
            refusal.status, f"{refusal.status} Refused"
        ),
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
        ],
    )
    return [body]


def _unauthorized(start_response, message="Authentication required.\n"):
    body = message.encode()
    start_response(
        "401 Unauthorized",
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("WWW-Authenticate", f'Basic realm="{REALM}"'),
        ],
    )
    return [body]


class WebApplication:
    """The WSGI application."""

    def __init__(self, accounts=None, max_request_body=None):
        self.accounts = accounts or {}
        self.max_request_body = max_request_body or DEFAULT_MAX_REQUEST_BODY
        self._verified = OrderedDict()
        self._verified_key = os.urandom(32)

    def _checkPassword(self, account, password):
        if not account.hashed:
            return account.checkPassword(password)
        token = hmac.digest(
            self._verified_key,
            f"{account.name}:{password}".encode("utf-8"),
            "sha256",
        )
        if token in self._verified:
            self._verified.move_to_end(token)
            return True
        if not account.checkPassword(password):
            return False
        self._verified[token] = True
        if len(self._verified) > _VERIFIED_MAX:
            self._verified.popitem(last=False)
        return True

    def authenticate(self, environ):
        """(ok, account or None) from the Authorization header."""
        header = environ.get("HTTP_AUTHORIZATION")
        if not header:
            return True, None
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "oauth":
            # launchpadlib's anonymous access (``login_anonymously``):
            # OAuth with an empty token, as Launchpad accepts it.  No
            # OAuth token is issued here, so any other is refused.
            return _is_anonymous_oauth(value), None
        if scheme.lower() != "basic":
            return False, None
        try:
            decoded = base64.b64decode(value.strip(), validate=True)
            name, _, password = decoded.decode("utf-8").partition(":")
        except (binascii.Error, ValueError):
            # Not base64 (a non-ASCII value is a ValueError), or not
            # UTF-8 once decoded (UnicodeDecodeError is a ValueError).
            return False, None
        account = self.accounts.get(name)
        if account is None or not self._checkPassword(account, password):
            return False, None
        return True, account

    def __call__(self, environ, start_response):
        start_response = nosniff(start_response)
        try:
            check_request(environ, self.max_request_body)
        except RequestRefused as refusal:
            return _refused(start_response, refusal)
        ok, account = self.authenticate(environ)
        if not ok:
            return _unauthorized(start_response, "Bad credentials.\n")
        environ[ENVIRON_USER_KEY] = account
        path = environ.get("PATH_INFO") or "/"
        if path == "/api" or path.startswith("/api/"):
            return self.webservice(environ, start_response)
        # Circular import: the website uses the models.
        from lp.oci.browser.website import website

        return website(environ, start_response)

    def webservice(self, environ, start_response):
        # Circular import: the configuration module imports the models.
        from lazr.restful.interfaces import IWebServiceConfiguration

        config = getUtility(IWebServiceConfiguration)
        request = config.createRequest(environ["wsgi.input"], environ)
        try:
            request = publish(request, handle_errors=True)
            response = request.response
            status = response.getStatus()
            body = b"".join(response.consumeBodyIter())
            if request.method not in SAFE_METHODS and status < 400:
                transaction.commit()
        finally:
            transaction.abort()
        headers = list(response.getHeaders())
        if status == 401:
            headers.append(("WWW-Authenticate", f'Basic realm="{REALM}"'))
        start_response(response.getStatusString(), headers)
        return [body]


def import_models():
    """Import every ``lp.<app>.model`` module.

    Storm resolves string references (``"DistroArchSeries.id"``) among
    the classes imported so far; a web server must have them all, not
    only those its utilities happen to import.
    """
    import lp

    for app in pkgutil.iter_modules(lp.__path__, "lp."):
        try:
            package = importlib.import_module(app.name + ".model")
        except ModuleNotFoundError:
            continue
        for module in pkgutil.iter_modules(
            package.__path__, package.__name__ + "."
        ):
            importlib.import_module(module.name)


def configure_webservice(root_url):
    """Load the web service's registrations and point it at ``root_url``.

    :param root_url: The site's root URL, e.g. ``http://127.0.0.1:8085/``:
        the web service is below ``<root_url>api/``, and pages and
        files (``web_link``, `getFileUrls`) are below it too.
    """
    # Circular import.
    from urllib.parse import urlsplit

    from lazr.restful.interfaces import IWebServiceConfiguration

    import lp.services.webservice

    xmlconfig.file("webservice.zcml", package=lp.services.webservice)
    parts = urlsplit(root_url)
    config = getUtility(IWebServiceConfiguration)
    config.hostname = parts.hostname
    config.port = parts.port
    config.use_https = parts.scheme == "https"
    os.environ["LP_ROOT_URL"] = root_url


def make_app(
    state_dir="var",
    root_url=None,
    accounts_file=None,
    database_uri=None,
    librarian_root=None,
):
    """The gunicorn application factory.

    :param root_url: By default ``LP_ROOT_URL``, else
        ``http://127.0.0.1:8085/``.
    :param accounts_file: By default ``LP_WEBSERVICE_ACCOUNTS``; without
        one, every request is anonymous.
    """
    # Circular import.
    from lp.services.scripts import setup_services

    setup_services(
        state_dir, database_uri=database_uri, librarian_root=librarian_root
    )
    import_models()
    root_url = (
        root_url or os.environ.get("LP_ROOT_URL") or "http://127.0.0.1:8085/"
    )
    if not root_url.endswith("/"):
        root_url += "/"
    configure_webservice(root_url)
    transaction.commit()
    accounts_file = accounts_file or os.environ.get("LP_WEBSERVICE_ACCOUNTS")
    accounts = load_accounts(accounts_file) if accounts_file else {}
    # Circular import.
    from lp.services.config import config

    return WebApplication(
        accounts, max_request_body=config.webservice.max_request_body
    )
