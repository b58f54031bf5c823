# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The HTTP side of talking to an OCI registry.

`RegistryHTTPClient` (anonymous or HTTP basic) and
`BearerTokenRegistryClient` (the ``WWW-Authenticate: Bearer``
challenge), as upstream, plus retries of every request with exponential
backoff on 408, 429 (honouring ``Retry-After``), 5xx and connection
errors, never on other 4xx (upstream retries only a blob upload, on
connection errors and incomplete reads, 5 times, 3 s apart, with
tenacity); one `requests.Session` per thread, so that one client serves
a pool of pushing threads; and the registry's error body parsed into
the errors a job reports.

Credentials are read once, in the thread that makes the client (they
come from the database), and never appear in an error or a log line.
They go only to the registry's own origin (scheme, host and port: the
host that answered ``/v2/`` with the challenge), as docker and
containerd send them: a ``Location`` on another host or port (an upload
session, a redirect) gets neither the basic credentials nor a bearer
token, and a 401 from there fetches no token.  The token realm the
challenge names gets the basic credentials, as docker's token flow
sends them, when it is ``https`` or on the registry's own host name; a
realm elsewhere over plain HTTP is asked for a token without them.

Every answer's body is read up to a bound and no further
(`MAX_RESPONSE_BODY`, or what the caller allows: a manifest up to
`MAX_DOCUMENT_SIZE`, a token up to `MAX_TOKEN_BODY`); redirects are
followed here, a bounded number of times, without reading their bodies.
A body over its bound fails the request in one line naming the URL,
transient if the answer's status is.  ``Retry-After`` is waited for up
to `RetryPolicy.max_retry_after` (``[oci] registry_max_retry_after``);
a registry asking for longer fails the request as transient, with the
delay it asked for (at most `MAX_RETRY_AFTER`) for the job to be queued
again then.
"""

__all__ = [
    "BearerTokenRegistryClient",
    "MAX_REDIRECTS",
    "MAX_RESPONSE_BODY",
    "MAX_RETRY_AFTER",
    "MAX_TOKEN_BODY",
    "RegistryHTTPClient",
    "RetryPolicy",
    "TRANSIENT_ERRORS",
    "is_retryable_status",
    "parse_registry_errors",
    "read_bounded",
    "retry_after_of",
]

import email.utils
import logging
import random
import threading
import time
from datetime import datetime, timezone
from urllib.parse import urljoin, urlsplit, urlunsplit
from urllib.request import parse_http_list

import requests

from lp.oci.interfaces.ociregistryclient import (
    OCIRegistryAuthenticationError,
    OCIRegistryError,
)

log = logging.getLogger(__name__)

# The most of an answer's body read when it is not a document the client
# wants (error bodies, ``/v2/``, upload sessions' answers).
MAX_RESPONSE_BODY = 64 * 1024
# The most of a token server's answer read (tokens are a few kB).
MAX_TOKEN_BODY = 1024 * 1024
# How many redirects a request follows.
MAX_REDIRECTS = 5
# The latest a registry's ``Retry-After`` queues a job again (a day).
MAX_RETRY_AFTER = 24 * 60 * 60
_REDIRECTS = (301, 302, 303, 307, 308)

TRANSIENT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url):
    """(scheme, host, port) of a URL; ports spelt out."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    scheme = parts.scheme.lower()
    return (
        scheme,
        (parts.hostname or "").lower(),
        port or _DEFAULT_PORTS.get(scheme),
    )


class _Session(requests.Session):
    """A session that never follows a redirect, nor reads its body.

    (`requests.Session.send` reads a redirect's whole body to prepare
    the next request even when told not to follow it.)  `request`
    follows redirects itself.
    """

    def get_redirect_target(self, response):
        return None


def describe_url(url):
    """A URL for messages: without its query (upload state, digests)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query="", fragment=""))


def read_bounded(response, limit, what=None):
    """Read a streamed answer's body, ``limit`` bytes at most.

    The body is then the response's ``content`` (``json()`` reads it).

    :param what: what the body is, for the error (default: the
        request's method and URL).
    :raises OCIRegistryError: if the body is longer; transient if the
        answer's status is.
    """
    if response._content is not False:
        # Read already.
        return response.content
    received = bytearray()
    try:
        for chunk in response.iter_content(64 * 1024):
            received += chunk
            if len(received) > limit:
                break
    finally:
        too_big = len(received) > limit
        if too_big:
            # Not read to its end: the connection cannot be used again.
            response.close()
    if too_big:
        if what is None:
            request = response.request
            what = "{} {}".format(
                request.method if request is not None else "GET",
                describe_url(response.url or ""),
            )
        raise OCIRegistryError(
            f"{what} answered with a body over {limit} bytes "
            f"(status {response.status_code})",
            transient=is_retryable_status(response.status_code),
        )
    response._content = bytes(received)
    return response._content


def retry_after_of(response):
    """The seconds a transient answer's ``Retry-After`` asks for (at
    most `MAX_RETRY_AFTER`), or None."""
    if not is_retryable_status(response.status_code):
        return None
    retry_after = RetryPolicy._retryAfter(response)
    if retry_after is None:
        return None
    return min(retry_after, MAX_RETRY_AFTER)


def is_retryable_status(status):
    """408, 429 and 5xx are worth trying again; other answers are final."""
    return status in (408, 429) or 500 <= status < 600


def parse_registry_errors(response):
    """The errors of a registry's error body, as a list of dicts."""
    try:
        data = response.json()
    except ValueError:
        return []
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return []
    parsed = []
    for error in errors[:20]:
        if not isinstance(error, dict):
            continue
        item = {}
        for key in ("code", "message"):
            if isinstance(error.get(key), str):
                item[key] = error[key][:1000]
        if "detail" in error:
            item["detail"] = error["detail"]
        if item:
            parsed.append(item)
    return parsed


class RetryPolicy:
    """How often and how long to wait before trying a request again.

    :param max_retry_after: the longest ``Retry-After`` waited for
        (default: ``[oci] registry_max_retry_after``); a registry asking
        for longer fails the request (`wait`).
    """

    def __init__(
        self,
        attempts=5,
        base_delay=0.5,
        max_delay=30.0,
        max_retry_after=None,
        sleep=time.sleep,
    ):
        if max_retry_after is None:
            # Circular import.
            from lp.services.config import config

            max_retry_after = float(config.oci.registry_max_retry_after)
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_retry_after = max_retry_after
        self.sleep = sleep

    def delay(self, attempt, response=None):
        """Seconds to wait after failed attempt number ``attempt`` (1-).

        :raises OCIRegistryError: (transient, with ``retry_after``) if
            the registry asks for longer than `max_retry_after`.
        """
        if response is not None:
            retry_after = self._retryAfter(response)
            if retry_after is not None:
                if retry_after > self.max_retry_after:
                    request = getattr(response, "request", None)
                    raise OCIRegistryError(
                        "{} {} answered {} asking to wait {:.0f} s, over "
                        "the {:.0f} s a push waits".format(
                            getattr(request, "method", None) or "GET",
                            describe_url(response.url or ""),
                            response.status_code,
                            retry_after,
                            self.max_retry_after,
                        ),
                        transient=True,
                        retry_after=min(retry_after, MAX_RETRY_AFTER),
                    )
                return retry_after
        delay = min(self.base_delay * 2 ** (attempt - 1), self.max_delay)
        # Full jitter on the upper half, so that threads spread out.
        return delay / 2 + random.uniform(0, delay / 2)

    @staticmethod
    def _retryAfter(response):
        value = response.headers.get("Retry-After")
        if not value:
            return None
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())

    def wait(self, attempt, response=None):
        """Sleep before trying again (see `delay`)."""
        self.sleep(self.delay(attempt, response))


class RegistryHTTPClient:
    """Requests to one repository of a registry, anonymous or basic auth.

    :param push_rule: the `IOCIPushRule` to push to; or, without one,
        ``registry_url``, ``image_name`` and ``credentials`` (a dict
        with ``username`` and ``password``, or None).
    """

    def __init__(
        self,
        push_rule=None,
        registry_url=None,
        image_name=None,
        credentials=None,
        retry_policy=None,
        timeout=(15, 300),
    ):
        if push_rule is not None:
            registry_url = push_rule.registry_url
            image_name = push_rule.image_name
            credentials = push_rule.registry_credentials.getCredentials()
        self.push_rule = push_rule
        self.registry_url = registry_url.rstrip("/")
        self.image_name = image_name
        credentials = credentials or {}
        if credentials.get("username"):
            self._credentials = (
                credentials["username"],
                credentials.get("password") or "",
            )
        else:
            self._credentials = (None, None)
        self.retry_policy = retry_policy or RetryPolicy()
        self.timeout = timeout
        self._local = threading.local()
        self._sessions = []
        self._sessions_lock = threading.Lock()

    def __repr__(self):
        # Never the credentials.
        return (
            f"<{self.__class__.__name__} {self.registry_url} "
            f"{self.image_name}>"
        )

    @property
    def credentials(self):
        """Returns a tuple of (username, password)."""
        return self._credentials

    @property
    def api_url(self):
        """The base API URL for this repository."""
        return f"{self.registry_url}/v2/{self.image_name}"

    @property
    def registry_host(self):
        return urlsplit(self.registry_url).netloc

    def isRegistryOrigin(self, url):
        """Whether ``url`` is on the registry's own origin: the only one
        that gets credentials."""
        return _origin(url) == _origin(self.registry_url)

    @property
    def session(self):
        """This thread's `requests.Session`."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = _Session()
            # Registries answer with their own URLs; no proxies from the
            # environment for loopback or internal registries.
            session.trust_env = False
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def close(self):
        """Close every thread's connections."""
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
        self._local = threading.local()

    def _prepareRequest(self, url, request_kwargs, mount_from=None):
        """Add authentication to ``request_kwargs`` (`request` calls it
        for the registry's own origin only)."""
        username, password = self.credentials
        if username is not None:
            request_kwargs.setdefault("auth", (username, password))

    def _handleUnauthorized(self, response, mount_from=None, renewed=False):
        """Whether to try a 401 again (after renewing a token)."""
        return False

    def request(
        self,
        url,
        method="GET",
        body=None,
        retry=True,
        mount_from=None,
        max_body=MAX_RESPONSE_BODY,
        **request_kwargs,
    ):
        """Make a request, trying again after transient failures.

        :param body: bytes, or a callable returning a fresh body (a
            stream) for each attempt.
        :param retry: whether to try again after transient failures;
            callers that resume uploads themselves say False.
        :param mount_from: the repository a mount reads from, for the
            token's scope.
        :param max_body: the most of the answer's body read (see
            `read_bounded`).
        :return: the last `requests.Response`, whatever its status, its
            body read.
        :raises requests.RequestException: a connection error that
            outlasted the retries.
        :raises OCIRegistryError: a body over ``max_body``, too many
            redirects, or a ``Retry-After`` over the policy's.
        """
        request_kwargs.setdefault("timeout", self.timeout)
        request_kwargs["stream"] = True
        request_kwargs["allow_redirects"] = False
        policy = self.retry_policy
        attempts = policy.attempts if retry else 1
        renewed = False
        redirects = 0
        attempt = 0
        while True:
            attempt += 1
            kwargs = dict(request_kwargs)
            kwargs["headers"] = dict(request_kwargs.get("headers") or {})
            on_origin = self.isRegistryOrigin(url)
            if on_origin:
                self._prepareRequest(url, kwargs, mount_from=mount_from)
            data = body() if callable(body) else body
            try:
                response = self.session.request(
                    method, url, data=data, **kwargs
                )
                if (
                    response.status_code in _REDIRECTS
                    and "Location" in response.headers
                ):
                    # Followed here, its body never read.
                    response.close()
                    redirects += 1
                    if redirects > MAX_REDIRECTS:
                        raise OCIRegistryError(
                            f"{method} {describe_url(url)} redirected "
                            f"more than {MAX_REDIRECTS} times"
                        )
                    url = urljoin(url, response.headers["Location"])
                    if response.status_code == 303 or (
                        response.status_code in (301, 302)
                        and method not in ("GET", "HEAD")
                    ):
                        method, body = "GET", None
                    attempt -= 1
                    continue
                if not (
                    is_retryable_status(response.status_code)
                    and attempt < attempts
                ):
                    read_bounded(
                        response,
                        max_body,
                        f"{method} {describe_url(url)}",
                    )
            except TRANSIENT_ERRORS as e:
                if attempt >= attempts:
                    raise
                log.info(
                    "%s %s failed (%s); trying again",
                    method,
                    describe_url(url),
                    e.__class__.__name__,
                )
                policy.wait(attempt)
                continue
            finally:
                if hasattr(data, "close"):
                    data.close()
            if (
                response.status_code == 401
                and on_origin
                and self._handleUnauthorized(
                    response, mount_from=mount_from, renewed=renewed
                )
            ):
                renewed = True
                attempt -= 1
                continue
            if is_retryable_status(response.status_code) and (
                attempt < attempts
            ):
                log.info(
                    "%s %s answered %d; trying again",
                    method,
                    describe_url(url),
                    response.status_code,
                )
                # Its body unread.
                response.close()
                policy.wait(attempt, response)
                continue
            return response

    def requestPath(self, path, method="GET", **request_kwargs):
        """Shortcut to do a request to {self.api_url}/{path}."""
        return self.request(self.api_url + path, method, **request_kwargs)

    def absoluteURL(self, location):
        """A ``Location`` header's URL, made absolute."""
        if location.startswith("/"):
            return self.registry_url + location
        return location

    @classmethod
    def getInstance(cls, push_rule=None, **kwargs):
        """A client adapted to the registry's authentication flow.

        The client that probed ``/v2/`` is closed unless it is the one
        returned.
        """
        client = cls(push_rule, **kwargs)
        try:
            instance = cls._adapted(client, push_rule, **kwargs)
        except BaseException:
            client.close()
            raise
        if instance is not client:
            client.close()
        return instance

    @staticmethod
    def _adapted(client, push_rule, **kwargs):
        try:
            response = client.request(client.registry_url + "/v2/")
        except requests.RequestException as e:
            raise OCIRegistryError(
                f"Cannot reach the registry at {client.registry_url}: "
                f"{e.__class__.__name__}",
                transient=True,
            ) from None
        if is_retryable_status(response.status_code):
            raise OCIRegistryError(
                f"The registry at {client.registry_url} answered "
                f"{response.status_code}",
                parse_registry_errors(response),
                transient=True,
                retry_after=retry_after_of(response),
            )
        if response.status_code == 401:
            challenge = response.headers.get("WWW-Authenticate", "")
            auth_type = challenge.split(" ", 1)[0].lower()
            if auth_type == "bearer":
                return BearerTokenRegistryClient(push_rule, **kwargs)
            if auth_type == "basic":
                if client.credentials[0] is not None:
                    raise OCIRegistryAuthenticationError(
                        f"The registry at {client.registry_url} refused "
                        "the credentials",
                        parse_registry_errors(response),
                    )
                return client
            raise OCIRegistryAuthenticationError(
                f"Unknown authentication type for {client.registry_url} "
                "registry"
            )
        return client


class BearerTokenRegistryClient(RegistryHTTPClient):
    """A client for registries handing out bearer tokens (Docker Hub...).

    Tokens are fetched from the challenge's realm with the basic
    credentials, for the scope the request needs (``pull,push`` on the
    repository, plus ``pull`` on a mount's source repository), cached
    per scope and shared by the threads; a 401 with a cached token
    renews it once.
    """

    def __init__(self, push_rule=None, **kwargs):
        super().__init__(push_rule, **kwargs)
        self._tokens = {}
        self._lock = threading.Lock()
        # One token fetch at a time: threads that got a 401 together
        # share the token the first of them fetched.
        self._fetch_lock = threading.Lock()

    def _scope(self, mount_from=None):
        scopes = [f"repository:{self.image_name}:pull,push"]
        if mount_from and mount_from != self.image_name:
            scopes.append(f"repository:{mount_from}:pull")
        return tuple(scopes)

    @property
    def auth_token(self):
        with self._lock:
            return self._tokens.get(self._scope())

    def _prepareRequest(self, url, request_kwargs, mount_from=None):
        with self._lock:
            token = self._tokens.get(self._scope(mount_from))
        if token is not None:
            request_kwargs["headers"]["Authorization"] = f"Bearer {token}"

    def parseAuthInstructions(self, request):
        """Parse the ``WWW-Authenticate`` header of a response.

        :return: the token type and the parameters of the challenge.
        """
        instructions = request.headers.get("WWW-Authenticate", "")
        token_type, _, values = instructions.partition(" ")
        # Parameters are key=value or key="value"; anything else in the
        # challenge is ignored (parse_keqv_list raised on it).
        params = {}
        for item in parse_http_list(values):
            key, sep, value = item.partition("=")
            if not sep:
                continue
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            params[key.strip()] = value
        return token_type, params

    def authenticate(self, last_failed_request, mount_from=None):
        """Fetch a token for the scope, given a 401 challenge."""
        token_type, values = self.parseAuthInstructions(last_failed_request)
        if token_type.lower() != "bearer" or "realm" not in values:
            raise OCIRegistryAuthenticationError(
                "The registry's challenge has no bearer realm"
            )
        scope = self._scope(mount_from)
        params = {"scope": list(scope)}
        if "service" in values:
            params["service"] = values["service"]
        username, password = self.credentials
        auth = (username, password) if username is not None else None
        realm = _origin(values["realm"])
        if realm[0] != "https" and realm[1] != _origin(self.registry_url)[1]:
            # Not in clear text to a third host.
            auth = None
        try:
            response = self.session.get(
                values["realm"],
                params=params,
                auth=auth,
                timeout=self.timeout,
                stream=True,
                allow_redirects=False,
            )
            read_bounded(
                response,
                MAX_TOKEN_BODY,
                f"The registry's token server {describe_url(values['realm'])}",
            )
        except TRANSIENT_ERRORS as e:
            raise OCIRegistryAuthenticationError(
                f"Cannot get a token from the registry: "
                f"{e.__class__.__name__}"
            ) from None
        if response.status_code != 200:
            raise OCIRegistryAuthenticationError(
                f"The registry's token server answered "
                f"{response.status_code}",
                parse_registry_errors(response),
            )
        try:
            data = response.json()
            token = data.get("token") or data["access_token"]
        except (ValueError, KeyError, AttributeError):
            raise OCIRegistryAuthenticationError(
                "The registry's token server gave no token"
            ) from None
        with self._lock:
            self._tokens[scope] = token
        return token

    def _handleUnauthorized(self, response, mount_from=None, renewed=False):
        if renewed:
            return False
        scope = self._scope(mount_from)
        request = getattr(response, "request", None)
        sent = request.headers.get("Authorization") if request else None
        with self._fetch_lock:
            with self._lock:
                current = self._tokens.get(scope)
            if current is not None and sent != f"Bearer {current}":
                # Another thread renewed it meanwhile.
                return True
            with self._lock:
                self._tokens.pop(scope, None)
            self.authenticate(response, mount_from=mount_from)
        return True
