"""Tests of openapi_downconvert: each 3.1 construct our documents use, the errors for those with no
3.0 form, and the committed documents themselves (they must convert to valid OpenAPI 3.0).

    python3 -m unittest discover -s clients -p 'test_*.py'

The checks against openapi-spec-validator run where it is installed (clients/run-all installs it
into its venv and runs these tests there); elsewhere they are reported as skipped.
"""

from __future__ import annotations

import copy
import json
import pathlib
import re
import unittest

from openapi_downconvert import ConversionError, convert_document, convert_schema

REPO = pathlib.Path(__file__).resolve().parent.parent
DOCUMENTS = [REPO / "openapi" / "command-api.json", REPO / "openapi" / "query-api.json"]

try:
    from openapi_spec_validator import validate as validate_spec
except ImportError:  # pragma: no cover - depends on the environment
    validate_spec = None


def document(**extra):
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1", "license": {"name": "MIT", "identifier": "MIT"}},
        "paths": {},
    }
    doc.update(extra)
    return doc


def walk(node):
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


class SchemaConversion(unittest.TestCase):
    def test_type_array_with_null_becomes_nullable(self):
        self.assertEqual(
            convert_schema({"type": ["string", "null"], "maxLength": 5}, "#"),
            {"type": "string", "nullable": True, "maxLength": 5},
        )

    def test_type_array_order_does_not_matter(self):
        self.assertEqual(
            convert_schema({"type": ["null", "integer"]}, "#"), {"type": "integer", "nullable": True}
        )

    def test_type_array_of_one_type_is_that_type(self):
        self.assertEqual(convert_schema({"type": ["integer"]}, "#"), {"type": "integer"})

    def test_type_array_of_two_real_types_is_refused(self):
        with self.assertRaisesRegex(
            ConversionError, re.escape('#/properties/x: `type: ["string", "integer"]`')
        ):
            convert_schema({"properties": {"x": {"type": ["string", "integer"]}}}, "#")

    def test_nullable_ref_union_becomes_nullable_all_of_with_annotations_moved_up(self):
        schema = {
            "oneOf": [
                {"type": "null"},
                {"$ref": "#/components/schemas/OrderStatus", "description": "Orders only."},
            ]
        }
        self.assertEqual(
            convert_schema(schema, "#"),
            {
                "allOf": [{"$ref": "#/components/schemas/OrderStatus"}],
                "description": "Orders only.",
                "nullable": True,
            },
        )

    def test_nullable_any_of_inline_schema_is_merged(self):
        schema = {"anyOf": [{"type": "string", "format": "uuid"}, {"type": "null"}], "description": "d"}
        self.assertEqual(
            convert_schema(schema, "#"),
            {"type": "string", "format": "uuid", "nullable": True, "description": "d"},
        )

    def test_nullable_union_of_several_keeps_the_union(self):
        schema = {"oneOf": [{"type": "null"}, {"$ref": "#/a"}, {"$ref": "#/b"}]}
        self.assertEqual(
            convert_schema(schema, "#"), {"oneOf": [{"$ref": "#/a"}, {"$ref": "#/b"}], "nullable": True}
        )

    def test_union_of_only_null_is_refused(self):
        with self.assertRaises(ConversionError):
            convert_schema({"oneOf": [{"type": "null"}]}, "#")

    def test_lone_null_type_is_refused(self):
        with self.assertRaisesRegex(ConversionError, "outside a nullable union"):
            convert_schema({"properties": {"gone": {"type": "null"}}}, "#")

    def test_ref_with_siblings_moves_into_all_of(self):
        self.assertEqual(
            convert_schema({"$ref": "#/components/schemas/X", "description": "why"}, "#"),
            {"allOf": [{"$ref": "#/components/schemas/X"}], "description": "why"},
        )

    def test_bare_ref_is_untouched(self):
        self.assertEqual(convert_schema({"$ref": "#/x"}, "#"), {"$ref": "#/x"})

    def test_const_becomes_single_value_enum(self):
        self.assertEqual(
            convert_schema({"type": "string", "const": "order"}, "#"), {"type": "string", "enum": ["order"]}
        )

    def test_schema_examples_array_becomes_first_example(self):
        self.assertEqual(
            convert_schema({"type": "integer", "examples": [3, 4]}, "#"), {"type": "integer", "example": 3}
        )

    def test_existing_example_wins_over_examples(self):
        self.assertEqual(convert_schema({"example": 1, "examples": [2]}, "#"), {"example": 1})

    def test_numeric_exclusive_bounds_become_boolean(self):
        self.assertEqual(
            convert_schema({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 10}, "#"),
            {
                "type": "number",
                "minimum": 0,
                "exclusiveMinimum": True,
                "maximum": 10,
                "exclusiveMaximum": True,
            },
        )

    def test_nested_schemas_are_converted(self):
        schema = {
            "type": "object",
            "properties": {
                "lines": {"type": "array", "items": {"type": ["integer", "null"]}},
                "extra": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
            },
            "additionalProperties": False,
            "allOf": [{"not": {"const": 1}}],
        }
        converted = convert_schema(schema, "#")
        self.assertEqual(converted["properties"]["lines"]["items"], {"type": "integer", "nullable": True})
        self.assertEqual(
            converted["properties"]["extra"]["additionalProperties"], {"type": "string", "nullable": True}
        )
        self.assertIs(converted["additionalProperties"], False)
        self.assertEqual(converted["allOf"], [{"not": {"enum": [1]}}])

    def test_empty_schema_stays_any(self):
        self.assertEqual(convert_schema({}, "#"), {})
        self.assertEqual(convert_schema(True, "#"), {})

    def test_keywords_without_a_3_0_form_are_refused_with_their_place(self):
        for keyword, value in [
            ("prefixItems", [{"type": "string"}]),
            ("$defs", {}),
            ("patternProperties", {}),
            ("if", {}),
            ("contentMediaType", "image/png"),
        ]:
            message = re.escape(f"#/properties/p: `{keyword}`")
            with self.subTest(keyword=keyword), self.assertRaisesRegex(ConversionError, message):
                convert_schema({"properties": {"p": {keyword: value}}}, "#")

    def test_false_schema_is_refused(self):
        with self.assertRaises(ConversionError):
            convert_schema(False, "#")

    def test_input_is_not_modified(self):
        schema = {"oneOf": [{"type": "null"}, {"$ref": "#/x", "description": "d"}]}
        before = copy.deepcopy(schema)
        convert_schema(schema, "#")
        self.assertEqual(schema, before)


class DocumentConversion(unittest.TestCase):
    def test_version_and_license(self):
        converted = convert_document(document())
        self.assertEqual(converted["openapi"], "3.0.3")
        self.assertEqual(
            converted["info"]["license"], {"name": "MIT", "url": "https://spdx.org/licenses/MIT.html"}
        )

    def test_license_with_url_keeps_it(self):
        doc = document()
        doc["info"]["license"] = {"name": "MIT", "url": "https://example.org/l", "identifier": "MIT"}
        self.assertEqual(
            convert_document(doc)["info"]["license"], {"name": "MIT", "url": "https://example.org/l"}
        )

    def test_3_1_only_top_level_fields_are_dropped(self):
        doc = document(jsonSchemaDialect="https://spec.openapis.org/oas/3.1/dialect/base")
        doc["info"]["summary"] = "s"
        converted = convert_document(doc)
        self.assertNotIn("jsonSchemaDialect", converted)
        self.assertNotIn("summary", converted["info"])

    def test_webhooks_are_refused(self):
        with self.assertRaisesRegex(ConversionError, "/webhooks"):
            convert_document(document(webhooks={"x": {}}))

    def test_only_3_1_documents_are_taken(self):
        with self.assertRaisesRegex(ConversionError, "expected a 3.1.x document"):
            convert_document({"openapi": "3.0.3", "info": {}, "paths": {}})

    def test_schemas_in_parameters_bodies_responses_and_headers_are_converted(self):
        nullable = {"type": ["string", "null"]}
        doc = document(
            paths={
                "/things/{id}": {
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"const": "x"}}],
                    "post": {
                        "parameters": [
                            {
                                "name": "If-Match",
                                "in": "header",
                                "schema": nullable,
                                "examples": {"one": {"value": '"1"'}},
                            }
                        ],
                        "requestBody": {"content": {"application/json": {"schema": nullable}}},
                        "responses": {
                            "200": {
                                "description": "ok",
                                "headers": {"ETag": {"schema": nullable}},
                                "content": {
                                    "application/problem+json": {
                                        "schema": nullable,
                                        "examples": {"e": {"value": "v"}},
                                    }
                                },
                            }
                        },
                    },
                }
            }
        )
        item = convert_document(doc)["paths"]["/things/{id}"]
        expected = {"type": "string", "nullable": True}
        self.assertEqual(item["parameters"][0]["schema"], {"enum": ["x"]})
        post = item["post"]
        self.assertEqual(post["parameters"][0]["schema"], expected)
        # `examples` of a parameter or media type is a map of Example Objects in 3.0 too: kept.
        self.assertEqual(post["parameters"][0]["examples"], {"one": {"value": '"1"'}})
        self.assertEqual(post["requestBody"]["content"]["application/json"]["schema"], expected)
        response = post["responses"]["200"]
        self.assertEqual(response["headers"]["ETag"]["schema"], expected)
        self.assertEqual(response["content"]["application/problem+json"]["schema"], expected)
        self.assertEqual(response["content"]["application/problem+json"]["examples"], {"e": {"value": "v"}})

    def test_errors_name_the_path_and_method(self):
        doc = document(
            paths={
                "/a/{id}": {
                    "get": {
                        "responses": {
                            "200": {
                                "description": "ok",
                                "content": {"application/json": {"schema": {"prefixItems": []}}},
                            }
                        }
                    }
                }
            }
        )
        with self.assertRaisesRegex(
            ConversionError, r"/paths/~1a~1\{id\}/get/responses/200/content/application/json/schema"
        ):
            convert_document(doc)


class CommittedDocuments(unittest.TestCase):
    """The committed documents convert, keep their meaning, and leave no 3.1 spelling behind."""

    def load(self, path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)

    def test_no_3_1_spelling_is_left(self):
        for path in DOCUMENTS:
            with self.subTest(document=path.name):
                converted = convert_document(self.load(path))
                for node in walk(converted):
                    if not isinstance(node, dict):
                        continue
                    self.assertNotIsInstance(node.get("type"), list)
                    self.assertNotEqual(node.get("type"), "null")
                    self.assertNotIn("const", node)
                    if "$ref" in node:
                        self.assertEqual(list(node), ["$ref"], "3.0 ignores the siblings of a $ref")
                self.assertNotIn("identifier", converted["info"].get("license", {}))

    def test_the_paths_operations_and_schemas_are_all_kept(self):
        for path in DOCUMENTS:
            with self.subTest(document=path.name):
                original = self.load(path)
                converted = convert_document(original)
                self.assertEqual(converted["paths"].keys(), original["paths"].keys())
                for name, item in original["paths"].items():
                    self.assertEqual(converted["paths"][name].keys(), item.keys())
                self.assertEqual(
                    converted["components"]["schemas"].keys(), original["components"]["schemas"].keys()
                )

    def test_command_accepted_status_stays_an_optional_nullable_order_status(self):
        converted = convert_document(self.load(DOCUMENTS[0]))
        accepted = converted["components"]["schemas"]["CommandAccepted"]
        self.assertNotIn("status", accepted["required"])
        self.assertEqual(
            accepted["properties"]["status"],
            {
                "allOf": [{"$ref": "#/components/schemas/OrderStatus"}],
                "description": "Orders only: `pending` until the saga decides.",
                "nullable": True,
            },
        )

    @unittest.skipIf(validate_spec is None, "openapi-spec-validator is not installed")
    def test_converted_documents_are_valid_openapi_3_0(self):
        for path in DOCUMENTS:
            with self.subTest(document=path.name):
                original = self.load(path)
                validate_spec(original)  # the 3.1 input is valid to begin with
                converted = convert_document(original)
                self.assertEqual(converted["openapi"], "3.0.3")
                validate_spec(converted)


if __name__ == "__main__":
    unittest.main()
