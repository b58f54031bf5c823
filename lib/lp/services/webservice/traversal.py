# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Traversal and URLs of OCI recipes and builds in the web service.

The web service mirrors the website's URLs, as Launchpad's does:
``/api/<version>/~<owner>/+oci-recipe/<name>/+build/<id>``.  What the
request's user may not see is not found (404), never forbidden, so
that a private recipe's existence does not leak.
"""

__all__ = [
    "BuildersTraversal",
    "DistributionTraversal",
    "OCIRecipeBuildSetAbsoluteURL",
    "OCIRecipeNavigation",
    "OwnerTraversal",
    "PersonNavigation",
    "WebServiceObjectAbsoluteURL",
    "WebsiteObjectAbsoluteURL",
    "top_level_traversal",
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

from lp.app.errors import NotFoundError
from lp.buildmaster.interfaces.builder import IBuilderSet
from lp.oci.interfaces.ocirecipe import IOCIRecipe, IOCIRecipeSet
from lp.oci.interfaces.ocirecipebuild import (
    IOCIRecipeBuildSet,
)
from lp.oci.security import can_view
from lp.registry.interfaces.distribution import IDistributionSet
from lp.registry.interfaces.person import IPerson, IPersonSet
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
    """``~<owner>``, then ``+oci-recipe/<name>``.

    For an owner with no `IPerson` (recipes made before owners were
    persons); ``~<name>`` of a person is the person's entry, traversed
    by `PersonNavigation`.
    """

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


@adapter(IPerson, IWebServiceClientRequest)
@implementer(IPublishTraverse)
class PersonNavigation(OwnerTraversal):
    """``~<person>/+oci-recipe/<name>``."""

    def __init__(self, context, request):
        super().__init__(context.name)


@implementer(IPublishTraverse)
class BuildersTraversal:
    """``builders/<name>``."""

    def publishTraverse(self, request, name):
        builder = getUtility(IBuilderSet).getByName(name)
        if builder is None:
            raise NotFound(self, name, request)
        return builder


@implementer(IPublishTraverse)
class DistributionTraversal:
    """``<distribution>/<series>/<architecture tag>``."""

    def __init__(self, distribution):
        self.distribution = distribution
        self.series = None

    def publishTraverse(self, request, name):
        try:
            if self.series is None:
                self.series = self.distribution.getSeries(name)
                return self
            return self.series.getDistroArchSeries(name)
        except NotFoundError:
            raise NotFound(self, name, request) from None


def top_level_traversal(name):
    """What ``name`` below the service root is, besides collections.

    :return: An object to traverse or publish, or None.
    """
    if name.startswith("~") and len(name) > 1:
        person = getUtility(IPersonSet).getByName(name[1:])
        return person if person is not None else OwnerTraversal(name[1:])
    if name == "builders":
        return BuildersTraversal()
    distribution = getUtility(IDistributionSet).getByName(name)
    if distribution is not None:
        return DistributionTraversal(distribution)
    return None


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
            if name not in ("+build", "+push-rule"):
                raise NotFound(self.context, name, request)
            self.namespace = name
            return self
        if self.namespace == "+push-rule":
            return self._pushRule(request, name)
        build_id = parse_database_id(name)
        if build_id is None:
            raise NotFound(self.context, name, request)
        build = getUtility(IOCIRecipeBuildSet).getByID(build_id)
        if build is not None and build.recipe_id != self.context.id:
            build = None
        return _visible(request, build, self.context, name)

    def _pushRule(self, request, name):
        for rule in self.context.push_rules:
            if str(rule.id) == name:
                return rule
        raise NotFound(self.context, name, request)


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
