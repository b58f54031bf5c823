# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Traversal and URLs of OCI recipes and builds in the web service.

The web service mirrors the website's URLs, as Launchpad's does:
``/api/<version>/~<owner>/+oci-recipe/<name>/+build/<id>``.  What the
request's user may not see is not found (404), never forbidden, so
that a private recipe's existence does not leak.
"""

__all__ = [
    "OCIRecipeBuildSetAbsoluteURL",
    "OCIRecipeNavigation",
    "OwnerTraversal",
    "WebServiceObjectAbsoluteURL",
    "WebsiteObjectAbsoluteURL",
    "website_request",
]

from io import BytesIO

from lazr.restful.interfaces import (
    IServiceRootResource,
    IWebBrowserOriginatingRequest,
    IWebServiceClientRequest,
)
from lazr.restful.simple import SimulatedWebsiteRequest
from zope.component import adapter, getMultiAdapter, getUtility
from zope.interface import implementer
from zope.publisher.interfaces import IPublishTraverse, NotFound
from zope.traversing.browser.interfaces import IAbsoluteURL

from lp.oci.interfaces.ocirecipe import IOCIRecipe, IOCIRecipeSet
from lp.oci.interfaces.ocirecipebuild import (
    IOCIRecipeBuildSet,
)
from lp.oci.security import can_view
from lp.services.webapp.guards import parse_database_id
from lp.services.webapp.publisher import canonical_path, canonical_url
from lp.services.webservice.publication import TRAVERSED_KEY, USER_KEY


def _visible(request, obj, parent, name):
    """``obj`` if the request's user may see it; else NotFound."""
    if obj is None or not can_view(obj, request.annotations.get(USER_KEY)):
        raise NotFound(parent, name, request)
    request.annotations[TRAVERSED_KEY] = obj
    return obj


@implementer(IPublishTraverse)
class OwnerTraversal:
    """``~<owner>``, then ``+oci-recipe/<name>``."""

    def __init__(self, owner_name):
        self.owner_name = owner_name
        self.namespace = None

    def publishTraverse(self, request, name):
        if self.namespace is None:
            if name != "+oci-recipe":
                raise NotFound(self, name, request)
            self.namespace = name
            return self
        recipe = getUtility(IOCIRecipeSet).getByName(self.owner_name, name)
        return _visible(request, recipe, self, name)


@adapter(IOCIRecipe, IWebServiceClientRequest)
@implementer(IPublishTraverse)
class OCIRecipeNavigation:
    """``<recipe>/+build/<id>``."""

    def __init__(self, context, request):
        self.context = context
        self.request = request
        self.namespace = None

    def publishTraverse(self, request, name):
        if self.namespace is None:
            if name != "+build":
                raise NotFound(self.context, name, request)
            self.namespace = name
            return self
        build_id = parse_database_id(name)
        if build_id is None:
            raise NotFound(self.context, name, request)
        build = getUtility(IOCIRecipeBuildSet).getByID(build_id)
        if build is not None and build.recipe_id != self.context.id:
            build = None
        return _visible(request, build, self.context, name)


def _service_root_url(request):
    root = getUtility(IServiceRootResource)
    return str(getMultiAdapter((root, request), IAbsoluteURL))


@implementer(IAbsoluteURL)
class WebServiceObjectAbsoluteURL:
    """A recipe's or build's URL in the web service."""

    def __init__(self, context, request):
        self.context = context
        self.request = request

    def __str__(self):
        return "%s/%s" % (
            _service_root_url(self.request),
            canonical_path(self.context),
        )

    __call__ = __str__


@implementer(IAbsoluteURL)
class OCIRecipeBuildSetAbsoluteURL(WebServiceObjectAbsoluteURL):
    """The ``oci_recipe_builds`` collection's URL."""

    def __str__(self):
        return "%s/oci_recipe_builds" % _service_root_url(self.request)

    __call__ = __str__


@implementer(IAbsoluteURL)
class WebsiteObjectAbsoluteURL(WebServiceObjectAbsoluteURL):
    """A recipe's or build's page: the entry's ``web_link``."""

    def __str__(self):
        return canonical_url(self.context)

    __call__ = __str__


@adapter(IWebServiceClientRequest)
@implementer(IWebBrowserOriginatingRequest)
def website_request(request):
    """The website request a web service request corresponds to."""
    return SimulatedWebsiteRequest(BytesIO(), {})
