# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Interfaces of the web service."""

__all__ = [
    "ILaunchpadWebServiceRequest",
    "IWebServiceAccount",
    "WebServiceUnauthorized",
]

import http.client

from lazr.restful.declarations import error_status
from lazr.restful.interfaces import IWebServiceClientRequest
from zope.interface import Attribute, Interface


class ILaunchpadWebServiceRequest(IWebServiceClientRequest):
    """A request to this web service (views more specific than
    lazr.restful's are registered for it)."""


class IWebServiceAccount(Interface):
    """An account of the configuration, as the request's user.

    Deviation from Launchpad: not an `IPerson` with OAuth tokens, only a
    name and password checked with HTTP basic authentication.
    """

    name = Attribute("The account name; owns recipes of this owner_name.")
    admin = Attribute("Whether the account may see and change everything.")


@error_status(http.client.UNAUTHORIZED)
class WebServiceUnauthorized(Exception):
    """The request needs an account that may change the object."""
