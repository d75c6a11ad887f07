#!/usr/bin/env python3
"""Down-converts this project's OpenAPI 3.1 documents to OpenAPI 3.0.3, for generators that only
read 3.0 (progenitor).

It knows the parts of 3.1 that our documents use and converts each to its 3.0 spelling:

  type: [T, "null"]                     -> type: T, nullable: true
  oneOf/anyOf: [{type: "null"}, S]      -> S with nullable: true (a $ref S becomes allOf: [S],
                                           since 3.0 ignores the siblings of a $ref)
  {$ref, description, ...} (3.1 allows siblings of $ref)
                                        -> {allOf: [{$ref}], description, ...}
  const: v                              -> enum: [v]
  examples: [a, ...] (in a schema)      -> example: a
  exclusiveMinimum/Maximum: n (numbers) -> minimum/maximum: n, exclusiveMinimum/Maximum: true
  info.license.identifier, info.summary, jsonSchemaDialect, $schema -> dropped

Anything else that 3.0 cannot say (a type array with two non-null types, prefixItems, $defs,
webhooks, ...) is an error naming where it is, rather than a document that silently means
something else. Only schemas are rewritten: `examples` of a parameter or media type is a map of
Example Objects in both versions and stays as it is.

    openapi_downconvert.py IN.json OUT.json
"""

from __future__ import annotations

import copy
import json
import sys
from typing import Any

TARGET_VERSION = "3.0.3"

# Schema keywords that only JSON Schema 2020-12 (OpenAPI 3.1) has and that have no 3.0 spelling.
UNSUPPORTED_SCHEMA_KEYWORDS = {
    "$defs",
    "$id",
    "$anchor",
    "$dynamicRef",
    "$dynamicAnchor",
    "prefixItems",
    "contains",
    "minContains",
    "maxContains",
    "patternProperties",
    "propertyNames",
    "unevaluatedProperties",
    "unevaluatedItems",
    "dependentRequired",
    "dependentSchemas",
    "if",
    "then",
    "else",
    "contentEncoding",
    "contentMediaType",
    "contentSchema",
}

# Keywords whose value is one schema, or a list or map of schemas.
SCHEMA_VALUED = ("items", "not")
SCHEMA_LISTS = ("allOf", "oneOf", "anyOf")
SCHEMA_MAPS = ("properties",)


class ConversionError(ValueError):
    """A 3.1 construct with no 3.0 equivalent; the message names the JSON pointer."""


def is_null_schema(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null" and len(schema) == 1


def convert_schema(schema: Any, where: str) -> Any:
    """Returns the 3.0 form of one 3.1 schema (a new object; the input is not changed)."""
    if isinstance(schema, bool):
        # `true` / `false` schemas: 3.0 has `{}` for "anything" and no spelling for "nothing".
        if schema:
            return {}
        raise ConversionError(f"{where}: the schema `false` has no OpenAPI 3.0 form")
    if not isinstance(schema, dict):
        raise ConversionError(f"{where}: a schema must be an object, found {schema!r}")
    if is_null_schema(schema):
        raise ConversionError(f'{where}: `type: "null"` outside a nullable union has no 3.0 form')

    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in UNSUPPORTED_SCHEMA_KEYWORDS:
            raise ConversionError(f"{where}: `{key}` has no OpenAPI 3.0 form")
        if key == "$schema":
            continue
        if key in SCHEMA_VALUED:
            out[key] = convert_schema(value, f"{where}/{key}")
        elif key in SCHEMA_LISTS:
            # A `{"type": "null"}` member stays as it is until _convert_nullable_union folds it.
            out[key] = [
                s if key != "allOf" and is_null_schema(s) else convert_schema(s, f"{where}/{key}/{i}")
                for i, s in enumerate(value)
            ]
        elif key in SCHEMA_MAPS:
            out[key] = {name: convert_schema(s, f"{where}/{key}/{name}") for name, s in value.items()}
        elif key == "additionalProperties" and not isinstance(value, bool):
            out[key] = convert_schema(value, f"{where}/{key}")
        else:
            out[key] = copy.deepcopy(value)

    _convert_type(out, where)
    _convert_const(out, where)
    _convert_examples(out, where)
    _convert_exclusive_bounds(out, where)
    out = _convert_nullable_union(out, where)
    out = _convert_ref_siblings(out)
    return out


def _convert_type(schema: dict[str, Any], where: str) -> None:
    kind = schema.get("type")
    if isinstance(kind, list):
        non_null = [t for t in kind if t != "null"]
        if len(non_null) != 1:
            raise ConversionError(
                f"{where}: `type: {json.dumps(kind)}` has no OpenAPI 3.0 form "
                "(3.0 allows one type, optionally nullable)"
            )
        schema["type"] = non_null[0]
        if len(non_null) < len(kind):
            schema["nullable"] = True
    elif kind == "null":
        raise ConversionError(f'{where}: `type: "null"` outside a nullable union has no 3.0 form')


def _convert_const(schema: dict[str, Any], where: str) -> None:
    if "const" in schema:
        value = schema.pop("const")
        if "enum" in schema and schema["enum"] != [value]:
            raise ConversionError(f"{where}: both `const` and a different `enum`")
        schema["enum"] = [value]


def _convert_examples(schema: dict[str, Any], where: str) -> None:
    if "examples" in schema:
        examples = schema.pop("examples")
        if not isinstance(examples, list):
            raise ConversionError(f"{where}: schema `examples` must be an array")
        if examples and "example" not in schema:
            schema["example"] = examples[0]


def _convert_exclusive_bounds(schema: dict[str, Any], where: str) -> None:
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = schema.get(exclusive)
        if value is None or isinstance(value, bool):
            continue
        if bound in schema:
            raise ConversionError(f"{where}: both `{bound}` and a numeric `{exclusive}`")
        schema[bound] = value
        schema[exclusive] = True


def _convert_nullable_union(schema: dict[str, Any], where: str) -> dict[str, Any]:
    for union in ("oneOf", "anyOf"):
        members = schema.get(union)
        if not isinstance(members, list) or not any(is_null_schema(m) for m in members):
            continue
        rest = [m for m in members if not is_null_schema(m)]
        if not rest:
            raise ConversionError(f"{where}/{union}: a union of only `null` has no 3.0 form")
        del schema[union]
        schema["nullable"] = True
        if len(rest) > 1:
            schema[union] = rest
            return schema
        (only,) = rest
        if "$ref" in only:
            # 3.0 ignores everything beside a $ref, so the ref goes into an allOf and its
            # annotations (3.1 allows them beside a $ref) move up to the nullable wrapper.
            annotations = {k: v for k, v in only.items() if k != "$ref"}
            for key, value in annotations.items():
                schema.setdefault(key, value)
            schema["allOf"] = [{"$ref": only["$ref"]}]
            return schema
        clash = set(only) & set(schema) - {"nullable"}
        if clash:
            raise ConversionError(f"{where}/{union}: cannot merge keys {sorted(clash)} twice")
        merged = {**schema, **only}
        merged["nullable"] = True
        return merged
    return schema


def _convert_ref_siblings(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema and len(schema) > 1:
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        return {"allOf": [{"$ref": schema["$ref"]}], **siblings}
    return schema


def _convert_content(content: dict[str, Any], where: str) -> None:
    for media_type, media in content.items():
        if "schema" in media:
            media["schema"] = convert_schema(media["schema"], f"{where}/{media_type}/schema")


def _convert_parameters(parameters: list[Any], where: str) -> None:
    for i, parameter in enumerate(parameters):
        if "schema" in parameter:
            parameter["schema"] = convert_schema(parameter["schema"], f"{where}/{i}/schema")
        if "content" in parameter:
            _convert_content(parameter["content"], f"{where}/{i}/content")


def _convert_headers(headers: dict[str, Any], where: str) -> None:
    for name, header in headers.items():
        if "schema" in header:
            header["schema"] = convert_schema(header["schema"], f"{where}/{name}/schema")


def _convert_responses(responses: dict[str, Any], where: str) -> None:
    for status, response in responses.items():
        if "$ref" in response:
            continue
        if "content" in response:
            _convert_content(response["content"], f"{where}/{status}/content")
        if "headers" in response:
            _convert_headers(response["headers"], f"{where}/{status}/headers")


HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _convert_operation(operation: dict[str, Any], where: str) -> None:
    if "parameters" in operation:
        _convert_parameters(operation["parameters"], f"{where}/parameters")
    body = operation.get("requestBody")
    if isinstance(body, dict) and "content" in body:
        _convert_content(body["content"], f"{where}/requestBody/content")
    if "responses" in operation:
        _convert_responses(operation["responses"], f"{where}/responses")
    if "callbacks" in operation:
        raise ConversionError(f"{where}/callbacks: callbacks are not converted")


def convert_document(document: dict[str, Any]) -> dict[str, Any]:
    """Returns the OpenAPI 3.0.3 form of a 3.1 document (a new object)."""
    version = document.get("openapi", "")
    if not isinstance(version, str) or not version.startswith("3.1."):
        raise ConversionError(f"/openapi: expected a 3.1.x document, found {version!r}")
    doc = copy.deepcopy(document)
    doc["openapi"] = TARGET_VERSION
    doc.pop("jsonSchemaDialect", None)
    if doc.get("webhooks"):
        raise ConversionError("/webhooks: webhooks have no OpenAPI 3.0 form")
    doc.pop("webhooks", None)

    info = doc.get("info", {})
    info.pop("summary", None)
    license_ = info.get("license")
    if isinstance(license_, dict):
        # 3.0's License has only name and url; the SPDX identifier becomes the SPDX page.
        identifier = license_.pop("identifier", None)
        if identifier and "url" not in license_:
            license_["url"] = f"https://spdx.org/licenses/{identifier}.html"

    if "paths" not in doc:
        raise ConversionError("/paths: OpenAPI 3.0 requires `paths`")
    for path, item in doc["paths"].items():
        where = "/paths/" + path.replace("~", "~0").replace("/", "~1")
        if "parameters" in item:
            _convert_parameters(item["parameters"], f"{where}/parameters")
        for method in HTTP_METHODS:
            if method in item:
                _convert_operation(item[method], f"{where}/{method}")

    components = doc.get("components", {})
    if "pathItems" in components:
        raise ConversionError("/components/pathItems: has no OpenAPI 3.0 form")
    for name, schema in components.get("schemas", {}).items():
        components["schemas"][name] = convert_schema(schema, f"/components/schemas/{name}")
    if "parameters" in components:
        for name, parameter in components["parameters"].items():
            _convert_parameters([parameter], f"/components/parameters/{name}")
    if "responses" in components:
        _convert_responses(components["responses"], "/components/responses")
    if "headers" in components:
        _convert_headers(components["headers"], "/components/headers")
    for name, body in components.get("requestBodies", {}).items():
        if "content" in body:
            _convert_content(body["content"], f"/components/requestBodies/{name}/content")
    return doc


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(f"usage: {argv[0]} IN.json OUT.json (an OpenAPI 3.1 document in, 3.0.3 out)", file=sys.stderr)
        return 2
    source, target = argv[1], argv[2]
    with open(source, encoding="utf-8") as f:
        document = json.load(f)
    try:
        converted = convert_document(document)
    except ConversionError as error:
        print(f"{source}: cannot convert to OpenAPI 3.0: {error}", file=sys.stderr)
        return 1
    text = json.dumps(converted, indent=2, sort_keys=True) + "\n"
    # An unchanged document keeps its mtime, so build.rs does not regenerate the Rust client.
    try:
        with open(target, encoding="utf-8") as f:
            unchanged = f.read() == text
    except FileNotFoundError:
        unchanged = False
    if not unchanged:
        with open(target, "w", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
