"""The JSON Schema subset: agreement with the ``jsonschema`` package, minimal instances, refused keywords."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guildkeep.llm.schema import SchemaError, check_schema, minimal_instance, validate

SCHEMAS: list[dict[str, Any]] = [
    {
        "type": "object",
        "properties": {
            "mood": {"type": "string", "enum": ["calm", "angry", "glad"]},
            "line": {"type": "string", "minLength": 1, "maxLength": 12},
            "score": {"type": "integer", "minimum": -3, "maximum": 3},
            "weight": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
            "ok": {"type": "boolean"},
            "maybe": {"type": ["string", "null"]},
        },
        "required": ["mood", "line", "score", "tags"],
        "additionalProperties": False,
    },
    {
        "$defs": {"npc": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}},
        "type": "object",
        "properties": {"npcs": {"type": "array", "items": {"$ref": "#/$defs/npc"}, "minItems": 2}},
        "required": ["npcs"],
    },
    {"anyOf": [{"type": "integer", "exclusiveMinimum": 5}, {"type": "string", "maxLength": 2}]},
    {"type": "object", "additionalProperties": {"type": "integer"}},
    {"const": {"a": [1, True]}},
    {"type": "number", "minimum": 2.5, "maximum": 2.5},
    {"type": "integer", "exclusiveMaximum": -4},
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.floats(-10, 10, allow_nan=False)
    | st.text(max_size=14) | st.sampled_from(["calm", "angry", "glad", "", "x"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(
        st.sampled_from(["mood", "line", "score", "weight", "tags", "ok", "maybe", "npcs", "name", "a", "zz"]),
        children,
        max_size=6,
    ),
    max_leaves=12,
)


@pytest.mark.parametrize("schema", SCHEMAS)
def test_minimal_instance_is_valid_for_jsonschema_too(schema: dict[str, Any]) -> None:
    instance = minimal_instance(schema, fill="hello there, traveller")
    assert validate(instance, schema) == []
    jsonschema.Draft202012Validator(schema).validate(instance)
    assert minimal_instance(schema, fill="hello there, traveller") == instance  # deterministic


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SCHEMAS), json_values)
def test_agrees_with_jsonschema(schema: dict[str, Any], instance: Any) -> None:
    ours = validate(instance, schema) == []
    theirs = jsonschema.Draft202012Validator(schema).is_valid(instance)
    assert ours == theirs, (instance, validate(instance, schema))


def test_errors_name_the_path() -> None:
    schema = SCHEMAS[0]
    problems = validate({"mood": "sad", "line": "", "score": 9, "tags": [], "extra": 1}, schema)
    assert "$.mood: must be one of 'calm', 'angry', 'glad'" in problems
    assert "$.line: must be at least 1 characters" in problems
    assert "$.score: must be at most 3" in problems
    assert "$.tags: must have at least 1 items" in problems
    assert "$: unexpected property 'extra'" in problems
    assert validate(True, {"type": "integer"}) == ["$: must be integer"]
    assert validate(2.0, {"type": "integer"}) == []


@pytest.mark.parametrize(
    ("schema", "needle"),
    [
        ({"type": "string", "pattern": "^a"}, "unsupported keyword(s) pattern"),
        ({"type": "object", "properties": {"x": {"oneOf": [{"type": "string"}]}}}, "#/properties/x: unsupported"),
        ({"type": "text"}, "#/type: must be one of"),
        ({"type": "string", "maxLength": -1}, "maxLength: must be a non-negative integer"),
        ({"$ref": "#/$defs/missing"}, "does not point at"),
        ({"enum": []}, "enum: must be a non-empty list"),
    ],
)
def test_unsupported_schemas_are_refused(schema: dict[str, Any], needle: str) -> None:
    with pytest.raises(SchemaError, match=None) as info:
        check_schema(schema)
    assert needle in str(info.value)


def test_minimal_instance_refuses_the_impossible() -> None:
    with pytest.raises(SchemaError, match="cannot build"):
        minimal_instance({"type": "integer", "minimum": 3, "maximum": 2})
