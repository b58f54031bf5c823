# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The web service's lazr.restful configuration and service root.

Grokked by ``webservice.zcml``: lazr.restful registers the
configuration as the `IWebServiceConfiguration` utility (and a marker
interface for each version), and the root as `IServiceRootResource`.
"""

__all__ = [
    "LaunchpadWebServiceConfiguration",
    "WebServiceApplication",
]

from lazr.restful.simple import Request, RootResource
from lazr.restful.utils import get_current_web_service_request
from lazr.restful.wsgi import BaseWSGIWebServiceConfiguration
from zope.component import getUtility
from zope.interface import alsoProvides

from lp.oci.interfaces.ocirecipebuild import (
    IOCIRecipeBuild,
    IOCIRecipeBuildSet,
)
from lp.services.webapp.guards import MAX_BATCH_SIZE
from lp.services.webservice.interfaces import ILaunchpadWebServiceRequest
from lp.services.webservice.publication import (
    USER_KEY,
    WebServicePublication,
)
from lp.services.webservice.traversal import top_level_traversal


class LaunchpadWebServiceConfiguration(BaseWSGIWebServiceConfiguration):
    """See `IWebServiceConfiguration`; host and port set at start-up."""

    active_versions = ["beta", "1.0", "devel"]
    last_version_with_mutator_named_operations = "beta"
    first_version_with_total_size_link = "devel"
    code_revision = "lp-oci"
    path_override = "api"
    service_root_uri_prefix = "api/"
    use_https = False
    hostname = "localhost"
    port = None
    view_permission = "zope.Public"
    show_tracebacks = False
    default_batch_size = 50
    max_batch_size = MAX_BATCH_SIZE
    compensate_for_mod_compress_etag_modification = False

    def createRequest(self, body_instream, environ):
        """See `IWebServiceConfiguration`."""
        request = Request(body_instream, environ)
        alsoProvides(request, ILaunchpadWebServiceRequest)
        request.setPublication(WebServicePublication(None))
        return request

    def get_request_user(self):
        """See `IWebServiceConfiguration`."""
        request = get_current_web_service_request()
        if request is None:
            return None
        return request.annotations.get(USER_KEY)


class WebServiceApplication(RootResource):
    """The service root: the top-level collections and ``~owner``."""

    def _build_top_level_objects(self):
        collections = {
            "oci_recipe_builds": (
                IOCIRecipeBuild,
                getUtility(IOCIRecipeBuildSet),
            ),
        }
        return collections, {}

    def get(self, request, name):
        """See `ITraverseWithGet`."""
        found = super().get(request, name)
        if found is None:
            found = top_level_traversal(name)
        return found
