"""The JSON Schema subset structured replies use: check a schema, validate a reply, build a minimal instance.

guildkeep validates model replies itself instead of depending on ``jsonschema`` at run time (it
brings ``referencing`` and the compiled ``rpds-py`` along). The subset is the one hosted
structured-output APIs accept, and `check_schema` refuses any other keyword up front, so a
schema can never be silently half-enforced:

- ``type`` (a name or a list of names: object, array, string, integer, number, boolean, null)
- objects: ``properties``, ``required``, ``additionalProperties`` (a boolean or a schema)
- arrays: ``items`` (one schema), ``minItems``, ``maxItems``
- strings: ``minLength``, ``maxLength`` (in code points)
- numbers: ``minimum``, ``maximum``, ``exclusiveMinimum``, ``exclusiveMaximum`` (numbers, 2020-12 style)
- any: ``enum``, ``const``, ``anyOf``, ``$ref`` to ``#/$defs/<name>`` (or ``#/definitions/<name>``)
- annotations, which are not checked: ``title``, ``description``, ``default``, ``examples``,
  ``format``, ``$schema``, ``$id``, ``$comment``

Semantics follow JSON Schema 2020-12 (``tests/llm/test_schema.py`` checks agreement with the
``jsonschema`` package on generated instances): ``1.0`` is an integer, ``true`` is not a number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

TYPES = ("object", "array", "string", "integer", "number", "boolean", "null")
_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "format", "$schema", "$id", "$comment"})
_KEYWORDS = frozenset({
    "type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
    "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "enum", "const", "anyOf", "$ref", "$defs", "definitions",
}) | _ANNOTATIONS
_MAX_DEPTH = 32


class SchemaError(ValueError):
    """The schema itself is outside the supported subset (a programming error, not a player's)."""


# ------------------------------------------------------------------------------------------ checking


def check_schema(schema: Mapping[str, Any]) -> None:
    """Raise `SchemaError` when ``schema`` uses a keyword or shape outside the supported subset."""
    if not isinstance(schema, Mapping):
        raise SchemaError("a schema must be a JSON object")
    _check(schema, schema, "#")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check(node: Any, root: Mapping[str, Any], where: str) -> None:
    if isinstance(node, bool):
        return  # true / false are schemas too
    if not isinstance(node, Mapping):
        raise SchemaError(f"{where}: a schema must be an object or a boolean")
    unknown = sorted(set(node) - _KEYWORDS)
    if unknown:
        raise SchemaError(f"{where}: unsupported keyword(s) {', '.join(unknown)}")
    kind = node.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not kinds or any(k not in TYPES for k in kinds):
            raise SchemaError(f"{where}/type: must be one of {', '.join(TYPES)} or a list of them")
    for key in ("minLength", "maxLength", "minItems", "maxItems"):
        if key in node and (not isinstance(node[key], int) or isinstance(node[key], bool) or node[key] < 0):
            raise SchemaError(f"{where}/{key}: must be a non-negative integer")
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if key in node and not _is_number(node[key]):
            raise SchemaError(f"{where}/{key}: must be a number")
    if "enum" in node and (not isinstance(node["enum"], list) or not node["enum"]):
        raise SchemaError(f"{where}/enum: must be a non-empty list")
    if "required" in node and (
        not isinstance(node["required"], list) or not all(isinstance(r, str) for r in node["required"])
    ):
        raise SchemaError(f"{where}/required: must be a list of property names")
    props = node.get("properties", {})
    if not isinstance(props, Mapping):
        raise SchemaError(f"{where}/properties: must be an object")
    for name, sub in props.items():
        _check(sub, root, f"{where}/properties/{name}")
    for key in ("items", "additionalProperties"):
        if key in node:
            _check(node[key], root, f"{where}/{key}")
    if "anyOf" in node:
        if not isinstance(node["anyOf"], list) or not node["anyOf"]:
            raise SchemaError(f"{where}/anyOf: must be a non-empty list")
        for i, sub in enumerate(node["anyOf"]):
            _check(sub, root, f"{where}/anyOf/{i}")
    for key in ("$defs", "definitions"):
        for name, sub in node.get(key, {}).items():
            _check(sub, root, f"{where}/{key}/{name}")
    if "$ref" in node:
        _resolve(node["$ref"], root)


def _resolve(ref: Any, root: Mapping[str, Any]) -> Any:
    if not isinstance(ref, str):
        raise SchemaError("$ref must be a string")
    for prefix in ("#/$defs/", "#/definitions/"):
        if ref.startswith(prefix):
            container = root.get(prefix[2:-1], {})
            name = ref[len(prefix):]
            if name in container:
                return container[name]
    if ref == "#":
        return root
    raise SchemaError(f"$ref {ref!r} does not point at #/$defs/<name> of this schema")


# ---------------------------------------------------------------------------------------- validating


def validate(instance: Any, schema: Mapping[str, Any]) -> list[str]:
    """Every way ``instance`` breaks ``schema``, as ``"$.path: problem"`` lines (empty when valid)."""
    errors: list[str] = []
    _validate(instance, schema, schema, "$", errors, depth=0)
    return errors


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return _is_number(value) and (isinstance(value, int) or (math.isfinite(value) and value.is_integer()))
    if kind == "number":
        return _is_number(value)
    if kind == "boolean":
        return isinstance(value, bool)
    return value is None  # null


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true != 1 and false != 0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _validate(value: Any, node: Any, root: Mapping[str, Any], path: str, errors: list[str], *, depth: int) -> None:
    if depth > _MAX_DEPTH:
        errors.append(f"{path}: nested too deeply")
        return
    if node is True:
        return
    if node is False:
        errors.append(f"{path}: no value is allowed here")
        return
    if "$ref" in node:
        _validate(value, _resolve(node["$ref"], root), root, path, errors, depth=depth + 1)
    kind = node.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_type_ok(value, k) for k in kinds):
            errors.append(f"{path}: must be {' or '.join(kinds)}")
            return
    if "const" in node and not _json_equal(value, node["const"]):
        errors.append(f"{path}: must be {node['const']!r}")
    if "enum" in node and not any(_json_equal(value, option) for option in node["enum"]):
        errors.append(f"{path}: must be one of {', '.join(repr(o) for o in node['enum'])}")
    if "anyOf" in node:
        for option in node["anyOf"]:
            trial: list[str] = []
            _validate(value, option, root, path, trial, depth=depth + 1)
            if not trial:
                break
        else:
            errors.append(f"{path}: matches none of the allowed forms")
    if isinstance(value, str):
        if "minLength" in node and len(value) < node["minLength"]:
            errors.append(f"{path}: must be at least {node['minLength']} characters")
        if "maxLength" in node and len(value) > node["maxLength"]:
            errors.append(f"{path}: must be at most {node['maxLength']} characters")
    if _is_number(value):
        if "minimum" in node and value < node["minimum"]:
            errors.append(f"{path}: must be at least {node['minimum']}")
        if "maximum" in node and value > node["maximum"]:
            errors.append(f"{path}: must be at most {node['maximum']}")
        if "exclusiveMinimum" in node and value <= node["exclusiveMinimum"]:
            errors.append(f"{path}: must be more than {node['exclusiveMinimum']}")
        if "exclusiveMaximum" in node and value >= node["exclusiveMaximum"]:
            errors.append(f"{path}: must be less than {node['exclusiveMaximum']}")
    if isinstance(value, list):
        if "minItems" in node and len(value) < node["minItems"]:
            errors.append(f"{path}: must have at least {node['minItems']} items")
        if "maxItems" in node and len(value) > node["maxItems"]:
            errors.append(f"{path}: must have at most {node['maxItems']} items")
        if "items" in node:
            for i, item in enumerate(value):
                _validate(item, node["items"], root, f"{path}[{i}]", errors, depth=depth + 1)
    if isinstance(value, dict):
        props = node.get("properties", {})
        errors.extend(f"{path}: missing {name!r}" for name in node.get("required", []) if name not in value)
        extra = node.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                _validate(item, props[key], root, f"{path}.{key}", errors, depth=depth + 1)
            elif extra is False:
                errors.append(f"{path}: unexpected property {key!r}")
            elif extra is not True:
                _validate(item, extra, root, f"{path}.{key}", errors, depth=depth + 1)


# ------------------------------------------------------------------------------------ minimal instance


def minimal_instance(schema: Mapping[str, Any], *, fill: str = "") -> Any:
    """A small instance valid against ``schema``, the same every time for the same inputs.

    Objects get their required properties only, arrays ``minItems`` items, numbers the lowest
    allowed value near 0, strings ``fill`` cut to ``maxLength`` and padded to ``minLength``.
    Raises `SchemaError` when it cannot build one (``false``, or contradictory bounds).
    """
    check_schema(schema)
    value = _minimal(schema, schema, fill, 0)
    problems = validate(value, schema)
    if problems:
        raise SchemaError(f"cannot build an instance of this schema: {problems[0]}")
    return value


def _minimal(node: Any, root: Mapping[str, Any], fill: str, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise SchemaError("schema recursion too deep to build an instance")
    if node is True:
        return None
    if node is False:
        raise SchemaError("false accepts no value")
    if "$ref" in node:
        return _minimal(_resolve(node["$ref"], root), root, fill, depth + 1)
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return node["enum"][0]
    if "anyOf" in node:
        return _minimal(node["anyOf"][0], root, fill, depth + 1)
    kind = node.get("type")
    if isinstance(kind, list):
        kind = kind[0]
    if kind is None:
        kind = "object" if "properties" in node else "array" if "items" in node else "null"
    if kind == "object":
        props = node.get("properties", {})
        return {name: _minimal(props.get(name, True), root, fill, depth + 1) for name in node.get("required", [])}
    if kind == "array":
        return [_minimal(node.get("items", True), root, fill, depth + 1) for _ in range(node.get("minItems", 0))]
    if kind == "string":
        text = fill[: node["maxLength"]] if "maxLength" in node else fill
        return text + "." * max(0, node.get("minLength", 0) - len(text))
    if kind in ("integer", "number"):
        return _minimal_number(node, integer=kind == "integer")
    if kind == "boolean":
        return False
    return None


def _minimal_number(node: Mapping[str, Any], *, integer: bool) -> int | float:
    """The allowed value nearest the lower bound (or 0 when unbounded below and 0 is allowed)."""
    lows: list[tuple[float, bool]] = [(node["minimum"], False)] if "minimum" in node else []
    lows += [(node["exclusiveMinimum"], True)] if "exclusiveMinimum" in node else []
    highs: list[tuple[float, bool]] = [(node["maximum"], False)] if "maximum" in node else []
    highs += [(node["exclusiveMaximum"], True)] if "exclusiveMaximum" in node else []
    low = max(lows, key=lambda b: (b[0], b[1]), default=None)
    high = min(highs, key=lambda b: (b[0], not b[1]), default=None)
    if integer:
        lo = None if low is None else (math.floor(low[0]) + 1 if low[1] else math.ceil(low[0]))
        hi = None if high is None else (math.ceil(high[0]) - 1 if high[1] else math.floor(high[0]))
        if lo is not None:
            return lo
        return 0 if hi is None or hi >= 0 else hi
    if low is None:
        if high is None or high[0] > 0 or (high[0] == 0 and not high[1]):
            return 0
        return high[0] - 1 if high[1] else high[0]
    if not low[1]:
        return low[0]
    return (low[0] + high[0]) / 2 if high is not None else low[0] + 1
