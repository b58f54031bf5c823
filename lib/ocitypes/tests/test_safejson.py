# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for bounded JSON parsing."""

__all__ = []

from testtools import TestCase

from ocitypes.errors import MalformedContent
from ocitypes.safejson import (
    MAX_JSON_CONTAINERS,
    MAX_JSON_DEPTH,
    MAX_JSON_ELEMENTS,
    MAX_JSON_SIZE,
    canonical_json,
    load_json,
)
from ocitypes.testing import big_json, deep_json


class TestLoadJSON(TestCase):
    def test_valid(self):
        self.assertEqual({"a": [1, None]}, load_json(b'{"a": [1, null]}', "x"))
        self.assertIsNone(load_json(b"null", "x"))

    def test_depth_limit(self):
        load_json(deep_json(MAX_JSON_DEPTH), "doc")
        e = self.assertRaises(
            MalformedContent, load_json, deep_json(MAX_JSON_DEPTH + 1), "doc"
        )
        self.assertEqual(
            "doc is too deeply nested (more than %d levels)" % MAX_JSON_DEPTH,
            str(e),
        )
        deep_objects = b'{"a":' * 100 + b"1" + b"}" * 100
        self.assertRaises(MalformedContent, load_json, deep_objects, "doc")

    def test_recursion_bomb(self):
        # Past the recursion limit but within the count of containers.
        e = self.assertRaises(
            MalformedContent, load_json, deep_json(50000), "doc"
        )
        self.assertIn("doc is too deeply nested", str(e))
        e = self.assertRaises(
            MalformedContent, load_json, deep_json(200000), "doc"
        )
        self.assertIn("doc has too many objects and arrays", str(e))

    def test_size_limit(self):
        load_json(big_json(MAX_JSON_SIZE), "doc")
        e = self.assertRaises(
            MalformedContent, load_json, big_json(MAX_JSON_SIZE + 1), "doc"
        )
        self.assertIn("doc is too large", str(e))

    def test_invalid(self):
        for data in (b"{", b"\xff", b"NaN", b"[Infinity]", b"", b"{'a': 1}"):
            e = self.assertRaises(MalformedContent, load_json, data, "doc")
            self.assertIn("doc is not valid JSON", str(e))

    def test_element_bounds(self):
        # Bounded by counting bytes, before parsing anything.
        for data, fragment in (
            (b"[" + b"{}," * MAX_JSON_CONTAINERS + b"{}]", "objects and"),
            (b"[" + b"[]," * MAX_JSON_CONTAINERS + b"[]]", "objects and"),
            (
                b"[" + b"1," * (MAX_JSON_ELEMENTS + 1) + b"1]",
                "too many elements",
            ),
            (b"{" + b'"a":1,' * (MAX_JSON_ELEMENTS // 2) + b'"b":1}', "too"),
        ):
            e = self.assertRaises(MalformedContent, load_json, data, "doc")
            self.assertIn(fragment, str(e))
        load_json(b"[" + b"{}," * (MAX_JSON_CONTAINERS - 2) + b"{}]", "doc")

    def test_duplicate_keys(self):
        for data in (b'{"a":1,"a":1}', b'[{"x":{"b":1,"c":2,"b":3}}]'):
            e = self.assertRaises(MalformedContent, load_json, data, "doc")
            self.assertIn("doc has a duplicate key", str(e))

    def test_lone_surrogates(self):
        for data in (
            b'"\\ud800"',
            b'{"\\udfff":1}',
            b'["ok", {"a": ["x\\udc00y"]}]',
            b'"\\ude00\\ud83d"',
        ):
            e = self.assertRaises(MalformedContent, load_json, data, "doc")
            self.assertIn("not valid Unicode", str(e))
            self.assertTrue(str(e).isascii())
        self.assertEqual("\U0001f600", load_json(b'"\\ud83d\\ude00"', "d"))


class TestCanonicalJSON(TestCase):
    def test_compact_sorted(self):
        self.assertEqual(
            b'{"a":[1,2],"b":"\\u00e9"}',
            canonical_json({"b": "\u00e9", "a": [1, 2]}),
        )
