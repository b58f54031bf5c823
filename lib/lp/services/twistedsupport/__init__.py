# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Useful tools for working with Twisted."""

__all__ = [
    "cancel_on_timeout",
]

from twisted.internet import reactor as default_reactor


def cancel_on_timeout(d, timeout, reactor=None):
    """Cancel a Deferred if it does not fire within `timeout` seconds.

    :return: `d`, which fails with `CancelledError` on timeout.
    """
    if reactor is None:
        reactor = default_reactor
    delayed_call = reactor.callLater(timeout, d.cancel)

    def cancel_timeout(passthrough):
        if delayed_call.active():
            delayed_call.cancel()
        return passthrough

    return d.addBoth(cancel_timeout)
