# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""End-to-end tests: builder, build farm and upload processing on loopback."""

__all__ = []
