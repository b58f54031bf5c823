# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The web service's publication: who asks, and whether they may write.

Deviation from Launchpad: instead of zope.security permissions checked
on security-proxied objects, traversal hides what the user may not see
(`lp.services.webservice.traversal`) and `afterTraversal` refuses
writes, with 401, to users who may not change the object traversed to.
"""

__all__ = [
    "SAFE_METHODS",
    "TRAVERSED_KEY",
    "USER_KEY",
    "WebServicePublication",
]

from lazr.restful.simple import Publication

from lp.oci.security import can_edit
from lp.services.webservice.interfaces import WebServiceUnauthorized

SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))

# Request annotations: the `IWebServiceAccount` making the request (set
# from the WSGI environment), and the last model object traversed.
USER_KEY = "lp.user"
TRAVERSED_KEY = "lp.traversed"
ENVIRON_USER_KEY = "lp.user"


class WebServicePublication(Publication):
    """See `IPublication`."""

    def beforeTraversal(self, request):
        super().beforeTraversal(request)
        request.annotations[USER_KEY] = request._orig_env.get(ENVIRON_USER_KEY)

    def afterTraversal(self, request, ob):
        super().afterTraversal(request, ob)
        if request.method in SAFE_METHODS:
            return
        user = request.annotations.get(USER_KEY)
        if user is None:
            raise WebServiceUnauthorized("Authentication required.")
        target = request.annotations.get(TRAVERSED_KEY)
        if target is not None and not can_edit(target, user):
            raise WebServiceUnauthorized(
                f"{user.name} may not change this object."
            )
