# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Checks on a request before the application sees it.

Whatever a client sends, the answer is a 4xx with one line: nothing a
client sends may make the application raise.  `check_request` refuses,
before anything else reads them:

- a request body over the configured cap (``[webservice]
  max_request_body``), from its ``Content-Length`` before a byte of it
  is read, or, for a chunked body, as soon as the cap is passed (413);
- a path or query string whose bytes are not UTF-8 (400);
- ``ws.start`` and ``ws.size`` that are not whole numbers in range
  (lazr.restful passes them to the database as OFFSET and LIMIT);
- JSON nested deeper than `MAX_JSON_DEPTH`, in the body or in any form
  or query value (lazr.restful's parsers recurse, and raise
  RecursionError on a deep enough document).

It buffers a body it has checked (at most the cap) for the application
to read again.  The headers of every answer also say ``nosniff`` (see
`nosniff`).
"""

__all__ = [
    "DEFAULT_MAX_REQUEST_BODY",
    "MAX_BATCH_SIZE",
    "MAX_BATCH_START",
    "MAX_JSON_DEPTH",
    "RequestRefused",
    "check_request",
    "json_depth",
    "nosniff",
    "parse_database_id",
]

import io
import re
from itertools import accumulate
from urllib.parse import parse_qsl

from lp.services.database.constants import MAX_DATABASE_ID

DEFAULT_MAX_REQUEST_BODY = 1024 * 1024
# The largest ws.size (the web service's ``max_batch_size``).
MAX_BATCH_SIZE = 300
# ws.start beyond this is no batch of anything this service holds.
MAX_BATCH_START = 10**9
MAX_JSON_DEPTH = 64
_ID = re.compile(r"[1-9][0-9]{0,18}")
_WHOLE = re.compile(r"[0-9]{1,10}")
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"?', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_FORM = "application/x-www-form-urlencoded"


class RequestRefused(Exception):
    """The request cannot be served: ``status`` and a one-line reason."""

    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status


def parse_database_id(text):
    """The id ``text`` spells, or None if it names no row.

    Only the canonical spelling counts: digits without a leading zero,
    at most `MAX_DATABASE_ID` (no sign, spaces or underscores, which
    `int` would take).
    """
    if not isinstance(text, str) or not _ID.fullmatch(text):
        return None
    value = int(text)
    return value if value <= MAX_DATABASE_ID else None


def json_depth(data):
    """How deep the brackets of a JSON text nest (strings skipped).

    An upper bound for text that is not JSON; linear, without recursion.
    """
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    brackets = _NOT_BRACKET.sub(b"", _JSON_STRING.sub(b"", data))
    if not brackets:
        return 0
    return max(accumulate(_DEPTH_STEP[b] for b in brackets))


def _check_depth(data, what):
    if json_depth(data) > MAX_JSON_DEPTH:
        raise RequestRefused(
            400, f"{what} nests deeper than {MAX_JSON_DEPTH} levels"
        )


def _utf8(text, what):
    """``text`` (a WSGI "bytes as latin-1" string) decoded as UTF-8."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise RequestRefused(400, f"{what} is not UTF-8") from None


def _parse_query(text, what):
    try:
        return parse_qsl(text, keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise RequestRefused(400, f"{what} is not UTF-8") from None


def _check_batch(pairs, max_batch_size):
    for name, value in pairs:
        if name not in ("ws.start", "ws.size"):
            continue
        low, high = (
            (0, MAX_BATCH_START) if name == "ws.start" else (1, max_batch_size)
        )
        if not _WHOLE.fullmatch(value) or not low <= int(value) <= high:
            raise RequestRefused(
                400, f"{name} must be a whole number from {low} to {high}"
            )


def _read_body(environ, cap):
    """The request body, at most ``cap`` bytes; RequestRefused if more."""
    length = environ.get("CONTENT_LENGTH") or ""
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if length:
        if not _WHOLE.fullmatch(length.strip()):
            raise RequestRefused(400, "Content-Length is not a whole number")
        length = int(length)
        if length > cap:
            raise RequestRefused(413, f"the request body is over {cap} bytes")
    elif not chunked:
        return b""
    stream = environ["wsgi.input"]
    limit = length if length else cap + 1
    data = b""
    while len(data) < limit:
        chunk = stream.read(min(65536, limit - len(data)))
        if not chunk:
            break
        data += chunk
    if len(data) > cap:
        raise RequestRefused(413, f"the request body is over {cap} bytes")
    return data


def check_request(
    environ, max_body=DEFAULT_MAX_REQUEST_BODY, batch=MAX_BATCH_SIZE
):
    """Refuse what the application must not see; see the module docstring.

    Replaces ``wsgi.input`` by the checked body.

    :param batch: the largest ``ws.size``.
    :raises RequestRefused: with the status and the one-line reason.
    """
    body = _read_body(environ, max_body)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    _utf8(environ.get("PATH_INFO") or "", "the path")
    pairs = _parse_query(environ.get("QUERY_STRING") or "", "the query")
    if body:
        content_type = environ.get("CONTENT_TYPE", "").split(";")[0].strip()
        if content_type.lower() == _FORM:
            form = _parse_query(body.decode("latin-1"), "the form")
            pairs += form
        else:
            _check_depth(body, "the request body")
    _check_batch(pairs, batch)
    for name, value in pairs:
        _check_depth(value, f"the value of {name[:40]!r}")


def nosniff(start_response):
    """``start_response`` adding ``X-Content-Type-Options: nosniff``."""

    def wrapped(status, headers, exc_info=None):
        if not any(
            name.lower() == "x-content-type-options" for name, _ in headers
        ):
            headers = list(headers) + [("X-Content-Type-Options", "nosniff")]
        return start_response(status, headers, exc_info)

    return wrapped
