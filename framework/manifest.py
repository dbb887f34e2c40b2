"""Konnector manifests: load, validate, and turn ``fields`` into a JSON Schema.

A manifest is Cozy's ``manifest.konnector`` plus ``entrypoint``
("package.module:Class"). It is plain data: loading one never imports the
konnector's code.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError, InvalidFields
from .redact import is_secret_name

if TYPE_CHECKING:
    import jsonschema

SECRET_FIELD_TYPE = "password"
CONTROL_CHARACTERS = "[\\x00-\\x1f\\x7f]"
"""No field value may hold them: they would corrupt logs, headers and SOAP/XML requests."""


class ManifestError(ConfigurationError):
    """A manifest breaks the schema; the message names the file, the JSON path and the rule."""


@dataclass(frozen=True)
class Manifest:
    data: dict[str, Any]
    source: str
    """Where it came from: a file path, or ``entry point <name> (<distribution>)``."""
    search_path: str | None = field(default=None, compare=False)
    """A directory to put on ``sys.path`` before importing the entrypoint, if any."""

    @property
    def slug(self) -> str:
        return self.data["slug"]

    @property
    def name(self) -> str:
        return self.data["name"]

    @property
    def version(self) -> str:
        return self.data["version"]

    @property
    def entrypoint(self) -> str:
        return self.data["entrypoint"]

    @property
    def fields(self) -> dict[str, dict[str, Any]]:
        return self.data.get("fields", {})

    @property
    def doctypes(self) -> frozenset[str]:
        """The doctypes this konnector may read and write."""
        return frozenset(p["type"] for p in self.data["permissions"].values())

    @property
    def parameters(self) -> dict[str, dict[str, Any]]:
        """Declared parameters: name → JSON Schema (with ``default`` and ``description``)."""
        return self.data.get("parameters", {})

    def secret_fields(self) -> frozenset[str]:
        """Fields to encrypt at rest and mask in logs."""
        return frozenset(
            name for name, spec in self.fields.items() if spec["type"] == SECRET_FIELD_TYPE or is_secret_name(name)
        )

    def validate_fields(self, values: dict[str, Any]) -> dict[str, Any]:
        """Check an account's fields before any network call; return them with defaults."""
        values = {**self._defaults(), **values}
        validator = _validator(fields_schema(self.fields))
        errors = _first_per_name(validator.iter_errors(values))
        if errors:
            raise InvalidFields("; ".join(_field_error(e, self.fields) for e in errors))
        return values

    def validate_parameters(self, values: dict[str, Any]) -> dict[str, Any]:
        """Check job parameters against the declared ones; return them with defaults.

        A konnector that declares none takes any parameter, as before parameters were declared.
        """
        if not self.parameters:
            return dict(values)
        values = {**{n: s["default"] for n, s in self.parameters.items() if "default" in s}, **values}
        validator = _validator(parameters_schema(self.parameters))
        errors = _first_per_name(validator.iter_errors(values))
        if errors:
            raise ConfigurationError("; ".join(_parameter_error(e) for e in errors))
        return values

    def unknown_keys(self, fields: Iterable[str], parameters: Iterable[str]) -> list[str]:
        """A warning per field or parameter the manifest does not know, naming the closest known one."""
        warnings = [unknown_key_warning("field", n, self.fields) for n in fields if n not in self.fields]
        if self.parameters:
            known = self.parameters
            warnings += [unknown_key_warning("parameter", n, known) for n in parameters if n not in known]
        return warnings

    def _defaults(self) -> dict[str, Any]:
        return {n: s["default"] for n, s in self.fields.items() if "default" in s}


@cache
def _schema() -> dict[str, Any]:
    return json.loads(resources.files(__package__).joinpath("manifest.schema.json").read_text())


def _validator(schema: dict[str, Any], formats: bool = False) -> jsonschema.Draft202012Validator:
    """A JSON Schema validator. ``jsonschema`` is imported here, on first use, not with this
    module: a command that validates nothing (``konnector --help``) does not pay for it."""
    import jsonschema

    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER if formats else None
    return jsonschema.Draft202012Validator(schema, format_checker=checker)


def validate(data: object, source: str) -> dict[str, Any]:
    """Validate manifest data; raise :class:`ManifestError` listing every broken rule."""
    validator = _validator(_schema(), formats=True)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{source}: {e.json_path}: {_rule(e)}" for e in errors]
        raise ManifestError("invalid manifest\n  " + "\n  ".join(lines))
    return data  # type: ignore[return-value]


def read_json(path: Path, error: type[ConfigurationError] = ConfigurationError) -> Any:
    """A JSON file's content; an unreadable or malformed file raises ``error`` naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not JSON: {exc}") from exc


def load_file(path: Path, search_path: str | None = None) -> Manifest:
    """Read and validate one manifest file."""
    data = read_json(path, ManifestError)
    return Manifest(validate(data, str(path)), str(path), search_path)


def _rule(error: jsonschema.ValidationError) -> str:
    return f"{error.message} (rule '{error.validator}')"


def fields_schema(fields: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The JSON Schema an account's fields must satisfy, from the manifest's ``fields``.

    As in Cozy, a field is required unless it says ``"required": false``;
    ``hidden`` and ``checkbox`` fields are optional unless they say otherwise.
    """
    properties = {name: _field_schema(spec) for name, spec in fields.items()}
    required = [name for name, spec in fields.items() if is_required(spec)]
    return {"type": "object", "properties": properties, "required": required}


def parameters_schema(parameters: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The JSON Schema job parameters must satisfy: each declared one is its own schema.

    Parameters with no ``default`` and ``"required": true`` must be given; unknown
    parameters are allowed (warned about, see :meth:`Manifest.unknown_keys`).
    """
    properties = {name: {k: v for k, v in spec.items() if k != "required"} for name, spec in parameters.items()}
    required = [name for name, spec in parameters.items() if spec.get("required") is True]
    return {"type": "object", "properties": properties, "required": required}


def _first_per_name(errors: Iterable[jsonschema.ValidationError]) -> list[jsonschema.ValidationError]:
    """One error per field: a value of the wrong type breaks several rules, the person needs one line."""
    kept: dict[str, jsonschema.ValidationError] = {}
    for error in sorted(errors, key=lambda e: (list(e.path), e.validator != "type")):
        name = error.message.split("'")[1] if error.validator == "required" else str(list(error.path)[:1])
        kept.setdefault(name, error)
    return list(kept.values())


def unknown_key_warning(kind: str, name: str, known: Iterable[str]) -> str:
    """``unknown field 'pasword' ignored; did you mean 'password'?`` (difflib's closest match)."""
    known = list(known)
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else f" (known: {', '.join(sorted(known)) or 'none'})"
    return f"unknown {kind} '{name}' ignored{hint}"


def _parameter_error(error: jsonschema.ValidationError) -> str:
    if error.validator == "required":
        return f"parameter '{error.message.split(chr(39))[1]}' is missing"
    name = str(error.path[0]) if error.path else "?"
    return f"parameter '{name}' is malformed: got {repr(error.instance)[:60]}: {error.message[:120]}"


def is_required(spec: dict[str, Any]) -> bool:
    return spec.get("required", spec["type"] not in ("hidden", "checkbox"))


def _field_schema(spec: dict[str, Any]) -> dict[str, Any]:
    kind = spec["type"]
    if kind == "checkbox":
        return {"type": "boolean"}
    if kind == "number":
        return {"type": "number"}
    if kind == "hidden":
        return {}
    schema: dict[str, Any] = {"type": "string", "minLength": 1, "not": {"pattern": CONTROL_CHARACTERS}}
    if kind == "email":
        schema["pattern"] = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
    if kind == "date":
        schema["pattern"] = r"^\d{4}-\d{2}-\d{2}$"
    if kind == "dropdown" and "options" in spec:
        schema["enum"] = [option["value"] for option in spec["options"]]
    if "pattern" in spec:
        schema["pattern"] = spec["pattern"]
    if "min" in spec:
        schema["minLength"] = spec["min"]
    if "max" in spec:
        schema["maxLength"] = spec["max"]
    return schema


def _field_error(error: jsonschema.ValidationError, fields: dict[str, dict[str, Any]]) -> str:
    if error.validator == "required":
        name = error.message.split("'")[1]
        return f"field '{name}' is missing: {_expected(fields.get(name, {}))}"
    name = str(error.path[0]) if error.path else "?"
    spec = fields.get(name, {})
    shown = "(hidden)" if name in fields and spec.get("type") == SECRET_FIELD_TYPE else None
    got = shown or repr(error.instance)[:60]
    return f"field '{name}' is malformed: got {got}, expected {_expected(spec)}"


def _expected(spec: dict[str, Any]) -> str:
    kind = spec.get("type", "text")
    parts = {
        "checkbox": "true or false",
        "number": "a number",
        "email": "an e-mail address",
        "date": "a date YYYY-MM-DD",
    }.get(kind, "a non-empty string without control characters")
    if "pattern" in spec:
        parts += f" matching {spec['pattern']}"
    if "options" in spec:
        parts += " among " + ", ".join(str(o["value"]) for o in spec["options"])
    if "min" in spec or "max" in spec:
        parts += f" of {spec.get('min', 1)} to {spec.get('max', '∞')} characters"
    return parts
