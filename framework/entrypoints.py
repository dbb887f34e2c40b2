"""Entry points of one group, read from the installed distributions without ``importlib.metadata``.

``konnector --help`` and ``konnector list`` need the ``konnector.commands`` and ``konnectors``
entry points. ``importlib.metadata`` costs about 25 ms of CPU to import (email, zipfile, csv,
...), as much as the rest of ``--help`` together; the files it reads are plain: each
``*.dist-info`` (or ``*.egg-info``) directory on ``sys.path`` may hold an ``entry_points.txt``
in INI form. The same rules as ``importlib.metadata.entry_points``: a distribution found twice
is taken from the first ``sys.path`` entry that has it; tests/framework/test_entrypoints.py
checks that both agree on this installation.
"""

from __future__ import annotations

import os
import re
import sys
from collections import namedtuple

TYPE_CHECKING = False  # ``typing`` costs ~5 ms to import: `konnector --help` does without it
if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from typing import Any

_SUFFIXES = (".dist-info", ".egg-info")
COMMANDS_GROUP = "konnector.commands"
"""Entry-point group through which packages add commands (the built-in konnectors add demo, report)."""


class Distribution(namedtuple("Distribution", "name")):
    __slots__ = ()


class EntryPoint(namedtuple("EntryPoint", "name value group dist", defaults=(None,))):
    """What the CLI and the registry use of ``importlib.metadata.EntryPoint``
    (a ``collections.namedtuple``: ``typing.NamedTuple`` would import ``typing``)."""

    __slots__ = ()
    name: str
    value: str
    group: str
    dist: Distribution | None

    @property
    def module(self) -> str:
        return self.value.split(":", 1)[0].strip()

    @property
    def attr(self) -> str:
        return self.value.partition(":")[2].split("[", 1)[0].strip()

    def load(self) -> Any:
        import importlib

        found: Any = importlib.import_module(self.module)
        for part in filter(None, self.attr.split(".")):
            found = getattr(found, part)
        return found


def entry_points(group: str) -> list[EntryPoint]:
    """Every entry point of ``group``, distribution by distribution in ``sys.path`` order."""
    found: list[EntryPoint] = []
    seen: set[str] = set()
    for directory in sys.path:
        for name in _metadata_in(directory):
            key = _normalised(name.rsplit(".", 1)[0].split("-", 1)[0])
            if key in seen:
                continue
            seen.add(key)
            metadata = os.path.join(directory or ".", name)
            found.extend(_read(metadata, group))
    return found


def installed() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Every ``sys.path`` entry with the distributions' metadata directories it holds (names carry
    versions): what changes when a distribution is installed, upgraded or removed."""
    return tuple((directory, tuple(sorted(_metadata_in(directory)))) for directory in sys.path)


def _metadata_in(directory: str) -> tuple[str, ...]:
    """The ``*.dist-info`` and ``*.egg-info`` names in one ``sys.path`` entry, in ``os.listdir``
    order (as ``importlib.metadata`` takes them)."""
    try:
        names = os.listdir(directory or ".")
    except OSError:
        return ()
    return tuple(name for name in names if name.endswith(_SUFFIXES))


def source_of(module: str) -> str | None:
    """The file of a module, found without importing it nor its parent packages (whose
    ``__init__`` may be heavy): only the top-level package is located. ``os.path``, not pathlib:
    `konnector --help` imports this module, and pathlib costs it ~3 ms (urllib.parse, ipaddress)."""
    top, _, rest = module.partition(".")
    try:
        spec = find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if not rest:
        return spec.origin or None
    for location in spec.submodule_search_locations or ():
        base = os.path.join(location, *rest.split("."))
        for candidate in (base + ".py", os.path.join(base, "__init__.py")):
            if os.path.isfile(candidate):
                return candidate
    return None


def find_spec(name: str) -> ModuleSpec | None:
    """``importlib.util.find_spec(name)``, the same answer, without importing ``importlib``
    (``warnings``) and ``importlib.util`` (``contextlib``): about 1 ms of the 10 that `konnector
    --help` and `list` may spend above a bare interpreter. A top-level name is asked of each
    ``sys.meta_path`` finder in turn, as the import system does; a dotted name (whose parent must
    be imported) or a finder without ``find_spec`` goes to ``importlib.util`` itself."""
    if name in sys.modules:
        module = sys.modules[name]
        if module is None:
            return None
        spec = getattr(module, "__spec__", None)
        if spec is None:
            raise ValueError(f"{name}.__spec__ is None or not set")
        return spec
    finders = sys.meta_path
    if "." in name or not all(hasattr(finder, "find_spec") for finder in finders):
        import importlib.util

        return importlib.util.find_spec(name)
    for finder in finders:
        spec = finder.find_spec(name, None)
        if spec is not None:
            return spec
    return None


def _read(metadata: str, group: str) -> list[EntryPoint]:
    try:
        with open(os.path.join(metadata, "entry_points.txt"), encoding="utf-8") as text:
            lines = text.read().splitlines()
    except OSError:
        return []
    section, entries = None, []
    for line in map(str.strip, lines):
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif section == group and "=" in line:
            name, _, value = line.partition("=")
            entries.append((name.strip(), value.strip()))
    if not entries:
        return []
    dist = Distribution(_project_name(metadata))
    return [EntryPoint(name, value, group, dist) for name, value in entries]


def _project_name(metadata: str) -> str:
    """The ``Name:`` of the distribution's metadata (what ``importlib.metadata`` calls ``dist.name``)."""
    for file in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(metadata, file), encoding="utf-8") as text:
                for line in text:
                    if line.startswith("Name:"):
                        return line[5:].strip()
                    if not line.strip():
                        break
        except OSError:
            continue
    return os.path.basename(metadata).rsplit(".", 1)[0].split("-", 1)[0]


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
