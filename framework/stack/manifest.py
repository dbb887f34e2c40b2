"""Our manifest as cozy-stack installs it: ``manifest.konnector``, checked against the stack's rules.

The stack reads ``manifest.konnector`` from the konnector's files (``model/app/konnector.go``):
``language`` becomes ``COZY_LANGUAGE``, ``on_delete_account`` is the path, inside the
konnector's files, of what runs when an account is deleted (the job is dropped when it is
empty), ``permissions`` are the only doctypes its token may touch (``model/permission``:
doctype names of lower-case letters, digits, ``.`` and ``_``, a ``.*`` wildcard only below
three dots; verbs among GET POST PUT PATCH DELETE ALL, none meaning all). Our runner reads
and writes the job's account, so ``io.cozy.accounts`` is always granted. In our own
manifests ``on_delete_account`` describes what deletion revokes; here it names the entry.
Our ``parameters`` declare names and JSON Schemas; the stack's are the values it passes as
``COZY_PARAMETERS``: the declared defaults.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import ConfigurationError

ENTRY = "index.py"
"""What the stack runs, in the konnector's work directory (for a job and for a deletion)."""
LANGUAGE = "python"
ACCOUNTS = "io.cozy.accounts"
VERBS = {"GET", "POST", "PUT", "PATCH", "DELETE", "ALL"}
FREQUENCIES = {"hourly", "daily", "weekly", "monthly"}
_DOCTYPE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")
_OURS_ONLY = ("entrypoint", "sandbox")


def stack_manifest(data: dict[str, Any]) -> dict[str, Any]:
    """The ``manifest.konnector`` the stack installs for one of our manifests."""
    out = {k: v for k, v in data.items() if k not in _OURS_ONLY}
    declared = out.pop("parameters", None) or {}
    out["type"] = "konnector"
    out["language"] = LANGUAGE
    out["on_delete_account"] = ENTRY
    out.setdefault("frequency", "daily")
    permissions = dict(data.get("permissions", {}))
    if not any(rule.get("type") == ACCOUNTS for rule in permissions.values()):
        permissions["accounts"] = {
            "type": ACCOUNTS,
            "description": "read the account's fields and keep the konnector's bookmarks in it",
        }
    out["permissions"] = permissions
    defaults = {
        name: rule["default"] for name, rule in declared.items() if isinstance(rule, dict) and "default" in rule
    }
    if defaults:
        out["parameters"] = defaults
    validate(out)
    return out


def validate(manifest: dict[str, Any]) -> None:
    """Refuse what the stack would refuse (or run wrongly), naming the field."""
    problems = []
    for name in ("name", "slug", "version"):
        if not isinstance(manifest.get(name), str) or not manifest[name]:
            problems.append(f"'{name}' must be a non-empty string")
    if manifest.get("frequency") not in FREQUENCIES:
        problems.append(f"'frequency' must be one of {sorted(FREQUENCIES)}")
    entry = manifest.get("on_delete_account", "")
    if not isinstance(entry, str) or entry.startswith("/") or ".." in entry.split("/"):
        problems.append("'on_delete_account' must be a path inside the konnector's files")
    for title, rule in (manifest.get("permissions") or {}).items():
        problems += [f"permission '{title}': {p}" for p in _rule_problems(rule)]
    if problems:
        raise ConfigurationError(
            f"manifest of {manifest.get('slug')!r} is not one cozy-stack takes: " + "; ".join(problems)
        )


def _rule_problems(rule: Any) -> list[str]:
    if not isinstance(rule, dict) or not isinstance(rule.get("type"), str):
        return ["must be an object with a 'type'"]
    doctype = rule["type"]
    problems = []
    if doctype.endswith(".*"):
        if doctype.count(".") < 3:
            problems.append(f"wildcard {doctype} is too wide (the stack wants at least three dots)")
        doctype = doctype[:-2]
    if not _DOCTYPE.match(doctype):
        problems.append(f"{rule['type']} is not a valid doctype name")
    verbs = rule.get("verbs", [])
    if not isinstance(verbs, list) or not set(verbs) <= VERBS:
        problems.append(f"verbs {verbs} are not among {sorted(VERBS)}")
    return problems
