"""Discord's OpenAPI description: find it, and check request and response bodies against its schemas.

The file is wherever ``GUILDKEEP_DISCORD_API_SPEC`` points, else ``shared/discord-api-spec/openapi.json``
beside the repository (found by walking up from this file and from the working directory), else the copy
bundled with the package (``discord-api-spec/openapi.json.gz``, MIT, see its README).
Validation needs ``jsonschema`` (a dev dependency); it is imported only when used.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SPEC_RELATIVE = Path("shared/discord-api-spec/openapi.json")
ENV_VAR = "GUILDKEEP_DISCORD_API_SPEC"
BUNDLED = Path(__file__).with_name("discord-api-spec") / "openapi.json.gz"


class SpecNotFoundError(FileNotFoundError):
    pass


def find_spec() -> Path:
    explicit = os.environ.get(ENV_VAR)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise SpecNotFoundError(f"{ENV_VAR}={explicit} is not a file")
        return path
    for start in (Path(__file__).resolve(), Path.cwd().resolve()):
        for parent in start.parents:
            candidate = parent / SPEC_RELATIVE
            if candidate.is_file():
                return candidate
    if BUNDLED.is_file():
        return BUNDLED
    raise SpecNotFoundError(f"no {SPEC_RELATIVE} above {Path(__file__).parent} or the working directory, and no "
                            f"bundled {BUNDLED.name}; set {ENV_VAR}")


@functools.cache
def load_spec(path: str | None = None) -> dict[str, Any]:
    file = Path(path or find_spec())
    raw = gzip.decompress(file.read_bytes()) if file.suffix == ".gz" else file.read_bytes()
    return json.loads(raw)


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


@dataclass(frozen=True)
class Operation:
    path: str
    method: str
    body: dict[str, Any]

    def request_schema(self) -> dict[str, Any] | None:
        content = (self.body.get("requestBody") or {}).get("content") or {}
        for kind in ("application/json", "multipart/form-data"):
            if kind in content:
                return content[kind]["schema"]
        return None

    def response_schema(self, status: int) -> dict[str, Any] | None:
        responses = self.body.get("responses") or {}
        response = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or {}
        if "$ref" in response:  # e.g. #/components/responses/ClientErrorResponse
            response = load_spec()["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
        content = response.get("content") or {}
        return (content.get("application/json") or {}).get("schema")


def operation(method: str, route: str, spec: dict[str, Any] | None = None) -> Operation | None:
    """The spec's operation for ``PUT /applications/{application_id}/commands`` (parameter names may differ)."""
    spec = spec or load_spec()
    wanted = _shape(route)
    for path, item in spec["paths"].items():
        if _shape(path) == wanted and method.lower() in item:
            return Operation(path, method.upper(), item[method.lower()])
    return None


def validate(schema: dict[str, Any], value: Any, spec: dict[str, Any] | None = None, *,
             integer_snowflakes: bool = False) -> list[str]:
    """Every way ``value`` breaks ``schema`` (refs resolve against the spec), as readable lines.

    ``integer_snowflakes`` accepts ids sent as JSON integers: Discord takes them in requests (and
    discord.py sends them so), though the spec types every snowflake as a string.
    """
    import jsonschema
    from jsonschema.exceptions import best_match

    spec = spec or load_spec()
    components = spec["components"]
    if integer_snowflakes:
        schemas = dict(components["schemas"])
        schemas["SnowflakeType"] = {"anyOf": [schemas["SnowflakeType"], {"type": "integer", "minimum": 0}]}
        components = {**components, "schemas": schemas}
    validator = jsonschema.Draft202012Validator({**schema, "components": components})
    lines = []
    for error in validator.iter_errors(value):
        deepest = best_match(error.context) if error.context else error
        where = "/".join(map(str, deepest.absolute_path)) or "<body>"
        lines.append(f"{where}: {deepest.message[:200]}")
    return lines
