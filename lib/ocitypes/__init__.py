# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The value types the builder and Launchpad share.

This package is the contract on the wire between launchpad-buildd
(`lpbuildd`) and Launchpad (`lp`): content digests, descriptors and media
types, bounded JSON loading, the base error and the flat file names of an
OCI upload in the builder's file cache.  It is shipped with both and
imports nothing but the standard library; neither side imports the other.
"""
