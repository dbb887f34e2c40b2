"""Konnector manifests: load, validate, and turn ``fields`` into a JSON Schema.

A manifest is Cozy's ``manifest.konnector`` plus ``entrypoint``
("package.module:Class"). It is plain data: loading one never imports the
konnector's code.
"""

from __future__ import annotations

import json
import os
import sys
from functools import cache
from pathlib import Path

from .errors import ConfigurationError, InvalidFields

# `konnector list` imports this module: typing, dataclasses (inspect), importlib.resources
# (tempfile, zipfile), difflib and jsonschema are not imported here, or only when used.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    import jsonschema

SECRET_FIELD_TYPE = "password"
CONTROL_CHARACTERS = "[\\x00-\\x1f\\x7f]"
"""No field value may hold them: they would corrupt logs, headers and SOAP/XML requests."""


class ManifestError(ConfigurationError):
    """A manifest breaks the schema; the message names the file, the JSON path and the rule."""


class Manifest:
    """One konnector's manifest, read-only. ``source`` says where it came from: a file path, or
    ``entry point <name> (<distribution>)``; ``search_path`` is a directory to put on ``sys.path``
    before importing the entrypoint, if any.

    Behaves as the frozen dataclass it was (equality on data and source, no assignment), written out
    because ``dataclasses`` imports ``inspect``: ~10 ms that `konnector list` would pay.
    """

    data: dict[str, Any]
    source: str
    search_path: str | None

    def __init__(self, data: dict[str, Any], source: str, search_path: str | None = None) -> None:
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "search_path", search_path)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return (self.data, self.source) == (other.data, other.source)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.data, self.source))  # as the dataclass's: unhashable, data is a dict

    def __repr__(self) -> str:
        return f"Manifest(data={self.data!r}, source={self.source!r}, search_path={self.search_path!r})"

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
        from .redact import is_secret_name

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
def _schema_text() -> str:
    """The manifest schema, read beside this module; through importlib.resources (~10 ms to import)
    only if the package is not plain files."""
    try:
        return Path(__file__).with_name("manifest.schema.json").read_text(encoding="utf-8")
    except OSError:
        from importlib import resources

        return resources.files(__package__).joinpath("manifest.schema.json").read_text(encoding="utf-8")


@cache
def _schema() -> dict[str, Any]:
    return json.loads(_schema_text())


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
    return _parsed(_text_of(path, error), path, error)


def _text_of(path: Path, error: type[ConfigurationError]) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not JSON: {exc}") from exc


def _parsed(text: str, path: Path, error: type[ConfigurationError]) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not JSON: {exc}") from exc


def load_file(path: Path, search_path: str | None = None) -> Manifest:
    """Read and validate one manifest file.

    A file whose very content was found valid before, against the same schema by the same
    installation, is not validated again (see :class:`_KnownValid`): `konnector list` then needs
    neither jsonschema (~35 ms to import) nor the validation. An invalid one is never remembered.
    """
    text = _text_of(path, ManifestError)
    data = _parsed(text, path, ManifestError)
    known = _KnownValid.instance()
    mark = known.mark(path, text)
    if not known.holds(mark):
        validate(data, str(path))
        known.add(mark)
    return Manifest(data, str(path), search_path)


class _KnownValid:
    """Manifest files found valid, by absolute path, size, mtime and CRC-32 of the content read,
    kept in the user cache (framework/usercache.py) under a key naming the schema (its length and
    CRC-32), this module's cache format, the Python version and every installed distribution
    (jsonschema's version and the format checkers it finds change a verdict)."""

    FORMAT = "manifests-valid/1"
    LIMIT = 2000
    """Entries kept at most (the newest), so that many temporary paths do not grow it forever."""
    _instance: _KnownValid | None = None

    def __init__(self) -> None:
        from . import usercache
        from .entrypoints import installed

        schema = _schema_text().encode("utf-8")
        self.name = "manifests-" + usercache.fingerprint(sys.prefix)
        self.key = repr((self.FORMAT, len(schema), _crc(schema), sys.version, installed()))
        stored = usercache.read(self.name, self.key)
        try:
            self.valid: dict[str, list[int]] = json.loads(stored) if stored else {}
        except json.JSONDecodeError:
            self.valid = {}
        if not isinstance(self.valid, dict):
            self.valid = {}

    @classmethod
    def instance(cls) -> _KnownValid:
        """One per process (the key lists the installation: computed once)."""
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    @staticmethod
    def mark(path: Path, text: str) -> tuple[str, list[int]]:
        absolute = os.path.abspath(path)
        try:
            stat = os.stat(absolute)
        except OSError:
            return absolute, []
        return absolute, [stat.st_size, stat.st_mtime_ns, _crc(text.encode("utf-8", "surrogatepass"))]

    def holds(self, mark: tuple[str, list[int]]) -> bool:
        return bool(mark[1]) and self.valid.get(mark[0]) == mark[1]

    def add(self, mark: tuple[str, list[int]]) -> None:
        from . import usercache

        if not mark[1]:
            return
        self.valid.pop(mark[0], None)
        self.valid[mark[0]] = mark[1]
        while len(self.valid) > self.LIMIT:
            del self.valid[next(iter(self.valid))]
        usercache.write(self.name, self.key, json.dumps(self.valid))


def _crc(data: bytes) -> int:
    import zlib

    return zlib.crc32(data)


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
    import difflib

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
