# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The XHTML form of entries (``Accept: application/xhtml+xml``).

lazr.restful's `EntryHTMLView` prints each field through its HTML
renderer, which escapes it, but prints the entry's own links
(``self_link``, ``web_link``, ``resource_type_link``) and its ETag as
markup, unescaped: a name holding markup would inject it.  This view
escapes them too; it is registered for `ILaunchpadWebServiceRequest`,
the requests of this web service.
"""

__all__ = [
    "EntryHTMLView",
]

import html

from lazr.restful import EntryHTMLView as _LazrEntryHTMLView
from lazr.restful._resource import HTTPResource, decode_value

# What lazr.restful adds to an entry's fields, unrendered.
UNRENDERED = frozenset(
    ("self_link", "web_link", "resource_type_link", "http_etag")
)


class EntryHTMLView(_LazrEntryHTMLView):
    """An XHTML view of an entry that escapes everything it prints."""

    def __call__(self):
        namespace = self.HTML_TEMPLATE.pt_getContext()
        data = []
        for name, value in self.resource.toDataStructure(
            HTTPResource.XHTML_TYPE
        ).items():
            value = decode_value(value)
            if name in UNRENDERED:
                value = html.escape(value)
            data.append({"name": name, "value": value})
        namespace["context"] = sorted(data, key=lambda item: item["name"])
        return self.HTML_TEMPLATE.pt_render(namespace)
