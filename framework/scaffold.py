"""``konnector new``: write a third-party konnector distribution from the templates.

The templates (``framework/templates/konnector``) hold placeholders in
capitals between double underscores (``__SLUG__``); plain replacement keeps the
Python and TOML braces in them untouched.
"""

from __future__ import annotations

import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from .errors import ConfigurationError

RENAMED = {"gitignore": ".gitignore"}
"""Template files shipped under another name: package data globs skip dot-files."""
SLUG = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


def names(slug: str) -> dict[str, str]:
    """The placeholders' values for a slug such as ``my-meter``."""
    if not SLUG.fullmatch(slug) or len(slug) > 40:
        raise ConfigurationError(f"slug {slug!r}: use lower-case words joined by dashes, e.g. my-meter")
    words = slug.split("-")
    return {
        "__SLUG__": slug,
        "__PACKAGE__": "_".join(words),
        "__CLASS__": "".join(word.capitalize() for word in words),
        "__NAME__": " ".join(word.capitalize() for word in words),
        "__DOCTYPE__": "io.konnectors." + "_".join(words),
    }


def create(slug: str, parent: Path) -> Path:
    """Write the distribution in ``parent/slug``; refuse to overwrite anything."""
    values = names(slug)
    target = parent / slug
    if target.exists():
        raise ConfigurationError(f"{target} already exists; choose another directory or slug")
    _copy(resources.files(__package__).joinpath("templates", "konnector"), target, values)
    return target


def _copy(source: Traversable, target: Path, values: dict[str, str]) -> None:
    target.mkdir(parents=True)
    for entry in source.iterdir():
        name = values["__PACKAGE__"] if entry.name == "package" else RENAMED.get(entry.name, entry.name)
        if entry.is_dir():
            if entry.name != "__pycache__":
                _copy(entry, target / name, values)
            continue
        text = entry.read_text(encoding="utf-8")
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        (target / name).write_text(text, encoding="utf-8")
