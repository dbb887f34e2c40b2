"""Entry points of one group, read from the installed distributions without ``importlib.metadata``.

``konnector --help`` and ``konnector list`` need the ``konnector.commands`` and ``konnectors``
entry points. ``importlib.metadata`` costs about 25 ms of CPU to import (email, zipfile, csv,
...), as much as the rest of ``--help`` together; the files it reads are plain: each
``*.dist-info`` (or ``*.egg-info``) directory on ``sys.path`` may hold an ``entry_points.txt``
in INI form. The same rules as ``importlib.metadata.entry_points``: a distribution found twice
is taken from the first ``sys.path`` entry that has it; tests/framework/test_entrypoints.py
checks that both agree on this installation.
"""

# No ``from __future__ import annotations``: it imports ``__future__`` (~0.1 ms), which `konnector
# --help` and `list` need not pay; annotations here are valid at run time (or quoted).

import os
import re
import sys

TYPE_CHECKING = False  # ``typing`` costs ~5 ms to import: `konnector --help` does without it
if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from typing import Any

_SUFFIXES = (".dist-info", ".egg-info")
COMMANDS_GROUP = "konnector.commands"
"""Entry-point group through which packages add commands (the built-in konnectors add demo, report)."""


class Distribution(tuple):
    """What the CLI and the registry use of ``importlib.metadata.Distribution``: its name.

    This and :class:`EntryPoint` are tuples written out: ``collections.namedtuple`` builds its
    class with ``eval`` at every start (~0.1 ms each), ``typing.NamedTuple`` imports ``typing``."""

    __slots__ = ()

    def __new__(cls, name: str) -> "Distribution":
        return tuple.__new__(cls, (name,))

    @property
    def name(self) -> str:
        return self[0]

    def __repr__(self) -> str:
        return f"Distribution(name={self[0]!r})"


class EntryPoint(tuple):
    """What the CLI and the registry use of ``importlib.metadata.EntryPoint``."""

    __slots__ = ()

    def __new__(cls, name: str, value: str, group: str, dist: Distribution | None = None) -> "EntryPoint":
        return tuple.__new__(cls, (name, value, group, dist))

    @property
    def name(self) -> str:
        return self[0]

    @property
    def value(self) -> str:
        return self[1]

    @property
    def group(self) -> str:
        return self[2]

    @property
    def dist(self) -> Distribution | None:
        return self[3]

    def __repr__(self) -> str:
        return f"EntryPoint(name={self[0]!r}, value={self[1]!r}, group={self[2]!r}, dist={self[3]!r})"

    @property
    def module(self) -> str:
        return self.value.split(":", 1)[0].strip()

    @property
    def attr(self) -> str:
        return self.value.partition(":")[2].split("[", 1)[0].strip()

    def load(self) -> "Any":
        import importlib

        found: Any = importlib.import_module(self.module)
        for part in filter(None, self.attr.split(".")):
            found = getattr(found, part)
        return found


Listed = tuple[tuple[str, tuple[str, ...]], ...]
"""Every ``sys.path`` entry with the ``*.dist-info`` and ``*.egg-info`` names it holds."""


def listed() -> Listed:
    """The distributions' metadata directories, listed once for :func:`entry_points` and
    :func:`installed` alike (a cache key needs both: one ``os.listdir`` of each entry, not two)."""
    return tuple((directory, _metadata_in(directory)) for directory in sys.path)


def entry_points(group: str, found: Listed | None = None) -> list[EntryPoint]:
    """Every entry point of ``group``, distribution by distribution in ``sys.path`` order."""
    points: list[EntryPoint] = []
    seen: set[str] = set()
    for directory, names in listed() if found is None else found:
        for name in names:
            key = _normalised(name.rsplit(".", 1)[0].split("-", 1)[0])
            if key in seen:
                continue
            seen.add(key)
            metadata = os.path.join(directory or ".", name)
            points.extend(_read(metadata, group))
    return points


def installed(found: Listed | None = None) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Every ``sys.path`` entry with the distributions' metadata directories it holds (names carry
    versions): what changes when a distribution is installed, upgraded or removed."""
    return tuple((directory, tuple(sorted(names))) for directory, names in (listed() if found is None else found))


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


def find_spec(name: str) -> "ModuleSpec | None":
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
    text = _text(os.path.join(metadata, "entry_points.txt"))
    if text is None or group not in text:  # no section can be named ``group``
        return []
    section, entries = None, []
    for line in map(str.strip, text.splitlines()):
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


def _text(path: str) -> str | None:
    """A small file's text (UTF-8), None if it cannot be read. ``os.read``, not ``open()``, whose
    three io objects cost ~10 µs more a file: `konnector --help` reads every distribution's."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    chunks = []
    try:
        while chunk := os.read(descriptor, 65536):
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        os.close(descriptor)
    return b"".join(chunks).decode("utf-8")


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
