"""Find konnectors: built-in manifests, ``KONNECTOR_PATH`` directories, entry points.

Discovery reads manifests only; a konnector's code is imported when it is run
(:func:`load_class`), so a broken third-party package cannot break ``konnector
list`` for the others.

A third-party distribution declares, in its ``pyproject.toml``::

    [project.entry-points.konnectors]
    my-slug = "my_konnector"

where ``my_konnector`` is the package holding ``manifest.json``; the manifest's
``entrypoint`` must name a class inside that package.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

from .entrypoints import entry_points
from .errors import ConfigurationError
from .manifest import Manifest, ManifestError, load_file

TYPE_CHECKING = False  # `konnector list` imports this module: no typing, no collections.abc
if TYPE_CHECKING:
    from collections.abc import Iterable

ENTRY_POINT_GROUP = "konnectors"
PATH_ENV = "KONNECTOR_PATH"
BUILTIN_PACKAGE = "konnectors"


def _builtin_manifests() -> Path | None:
    """``konnectors/manifests``: package data, so a wheel carries it as an editable install does.

    Found without importing the package, so the framework still never imports a konnector.
    """
    spec = importlib.util.find_spec(BUILTIN_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "manifests"


BUILTIN_MANIFESTS = _builtin_manifests()


class Registry:
    """Every konnector this installation knows, by slug."""

    def __init__(self, manifests: Iterable[Manifest]) -> None:
        self._by_slug: dict[str, Manifest] = {}
        for manifest in manifests:
            if twin := self._by_slug.get(manifest.slug):
                raise ConfigurationError(
                    f"konnector '{manifest.slug}' is declared twice: by {twin.source} and by {manifest.source}"
                )
            self._by_slug[manifest.slug] = manifest

    @classmethod
    def discover(cls, extra_dirs: Iterable[Path] | None = None) -> Registry:
        """Built-in manifests, then ``KONNECTOR_PATH`` (or ``extra_dirs``), then entry points."""
        if extra_dirs is None:
            extra_dirs = [Path(p) for p in os.environ.get(PATH_ENV, "").split(os.pathsep) if p]
        found = list(_from_directory(BUILTIN_MANIFESTS, package=BUILTIN_PACKAGE)) if BUILTIN_MANIFESTS else []
        for directory in extra_dirs:
            found.extend(_from_directory(directory, search_path=str(directory)))
        found.extend(_from_entry_points())
        registry = cls(found)
        _check_modules_distinct(found)
        return registry

    def __iter__(self):
        return iter(sorted(self._by_slug.values(), key=lambda m: m.slug))

    def __len__(self) -> int:
        return len(self._by_slug)

    def get(self, slug: str) -> Manifest:
        try:
            return self._by_slug[slug]
        except KeyError:
            known = ", ".join(sorted(self._by_slug)) or "none"
            raise ConfigurationError(f"no konnector '{slug}' (known: {known})") from None


def _from_directory(directory: Path, package: str | None = None, search_path: str | None = None) -> Iterable[Manifest]:
    """Every ``*.json`` manifest of ``directory``.

    Built-in manifests all live in ``package``; a ``KONNECTOR_PATH`` directory may hold several
    konnectors side by side, so each manifest's package is its own entrypoint's top module there.
    """
    if not directory.is_dir():
        raise ConfigurationError(f"{PATH_ENV} names {directory}, which is not a directory")
    for path in sorted(directory.glob("*.json")):
        manifest = load_file(path, search_path)
        _check_entrypoint_inside(manifest, package or _top_module_in(directory, manifest))
        if path.stem != manifest.slug:
            raise ManifestError(f"{path}: file name must be the slug: {manifest.slug}.json")
        yield manifest


def _top_module_in(directory: Path, manifest: Manifest) -> str:
    top = _top_module(manifest)
    if not ((directory / top).is_dir() or (directory / f"{top}.py").is_file()):
        raise ManifestError(f"{manifest.source}: entrypoint {manifest.entrypoint} is not a module of {directory}")
    return top


def _top_module(manifest: Manifest) -> str:
    return manifest.entrypoint.split(":")[0].split(".")[0]


def _check_modules_distinct(manifests: Iterable[Manifest]) -> None:
    """Two ``KONNECTOR_PATH`` directories offering the same top module: Python would import the
    first one found for both konnectors, so one would silently run the other's code."""
    owners: dict[str, Manifest] = {}
    for manifest in manifests:
        if not manifest.search_path:
            continue
        top = _top_module(manifest)
        owner = owners.setdefault(top, manifest)
        if owner.search_path != manifest.search_path:
            raise ConfigurationError(
                f"module '{top}' is offered twice: by {owner.search_path} (for {owner.source})"
                f" and by {manifest.search_path} (for {manifest.source}); rename one"
            )


def _from_entry_points() -> Iterable[Manifest]:
    for entry_point in entry_points(ENTRY_POINT_GROUP):
        distribution = entry_point.dist.name if entry_point.dist else "unknown distribution"
        source = f"entry point '{entry_point.name}' of {distribution}"
        spec = importlib.util.find_spec(entry_point.value)
        if spec is None or not spec.submodule_search_locations:
            raise ManifestError(f"{source}: '{entry_point.value}' is not an installed package")
        package_dir = Path(next(iter(spec.submodule_search_locations)))
        manifest = load_file(package_dir / "manifest.json")
        manifest = Manifest(manifest.data, f"{source} ({package_dir / 'manifest.json'})")
        _check_entrypoint_inside(manifest, entry_point.value)
        yield manifest


def _check_entrypoint_inside(manifest: Manifest, package: str) -> None:
    module = manifest.entrypoint.split(":")[0]
    if module != package and not module.startswith(package + "."):
        raise ManifestError(f"{manifest.source}: entrypoint {manifest.entrypoint} must be inside package {package}")


def load_class(manifest: Manifest, key: str = "entrypoint") -> type:
    """Import the class a manifest names under ``key`` (``entrypoint`` or ``sandbox``)."""
    spec = manifest.data.get(key)
    if not spec:
        raise ConfigurationError(f"{manifest.source}: konnector '{manifest.slug}' declares no {key}")
    module_name, _, class_name = spec.partition(":")
    if manifest.search_path and manifest.search_path not in sys.path:
        sys.path.insert(0, manifest.search_path)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"{manifest.source}: cannot import {module_name}: {exc}") from exc
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise ConfigurationError(f"{manifest.source}: {module_name} has no class {class_name}") from None
