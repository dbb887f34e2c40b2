"""The ``konnector`` entry point: ``konnector --help`` and ``konnector list`` without importing click.

Both are typed often and must start about as fast as the interpreter does (issue #22: ≤ 2× a bare
``python -c pass``, bench/cli_start.py). ``import click`` alone costs as much as a bare interpreter,
and defining the CLI's commands and describing the plugged ones adds more; so:

- ``konnector --help`` prints click's own rendering, kept in the user cache (framework/usercache.py)
  under a key holding all it depends on: the program name, the terminal width, the locale, the
  ``sys.path`` entries and the distributions each holds (an install, upgrade or removal changes
  them), the ``konnector.commands`` entry points, and the size and mtime of ``framework/cli.py``
  and of every plugged command's source. On a miss click renders it, and it is stored.
- ``konnector list`` prints its text from the user cache too, under a key holding everything
  discovery reads (:func:`_list_key`): the manifest folders' entries and each manifest's whole
  content, ``KONNECTOR_PATH``, the installed distributions and ``konnectors`` entry points with
  their ``manifest.json``. Computing that key imports neither the registry nor pathlib (~3 ms in
  a wheel install: urllib.parse, ipaddress). On a miss discovery runs as ever (framework/registry.py),
  where a manifest already validated with the same content is not validated again
  (framework/manifest.py), so jsonschema is not imported either.

Any other command, or any failure on these paths, goes to click (framework/cli.py), which then
does and reports everything as it always has.
"""

# No ``from __future__ import annotations``: it imports ``__future__`` (~0.1 ms), which `konnector
# --help` and `list` need not pay; annotations here are valid at run time (or quoted).

import os
import sys

HELP_FORMAT = "help/1"
"""Changes when the help cache's key or content changes meaning, so older entries are not read."""
_LOCALE = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")
LIST_FORMAT = "list/1"
"""Changes when the listing cache's key or content changes meaning."""
PATH_ENV, ENTRY_POINT_GROUP, BUILTIN_PACKAGE = "KONNECTOR_PATH", "konnectors", "konnectors"
"""framework/registry.py's, repeated so that a cached ``konnector list`` imports neither it nor
pathlib (~3 ms with urllib.parse and ipaddress); tests/framework/test_cli_cache.py checks they agree."""
_LIST_CODE = ("launch.py", "registry.py", "manifest.py", "manifest.schema.json", "entrypoints.py")
"""The framework files whose code or data decide what ``konnector list`` prints."""


def main(prog_name: str | None = None) -> object:
    """``konnector ARGS``: the two fast paths, else click's ``main``."""
    args = sys.argv[1:]
    prog = prog_name or _program_name()
    if args == ["--help"] and prog is not None:
        return _help(prog)
    if args == ["list"] and _list():
        return None
    from .cli import main as cli

    return cli.main(prog_name=prog_name) if prog_name else cli.main()


def _program_name() -> str | None:
    """What click names the program here, when it is plainly ``basename(argv[0])`` (an installed
    script); None under ``python -m``, which click spells its own way."""
    if getattr(sys.modules.get("__main__"), "__package__", None) in (None, ""):
        return os.path.basename(sys.argv[0])
    return None


def _help(prog: str) -> object:
    from . import usercache

    key = _help_key(prog)
    name = "help-" + usercache.fingerprint(repr((sys.prefix, sys.path, prog, _columns())))
    text = usercache.read(name, key) if key else None
    if text is not None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return None
    text, status = _rendered_by_click(prog)
    sys.stdout.write(text)
    sys.stdout.flush()
    if key and status == 0 and text and _columns() == _click_columns() and _all_described_from_source():
        usercache.write(name, key, text)
    return status


def _all_described_from_source() -> bool:
    """Whether every plugged command's help was read from its own source (a docstring or a literal
    ``help=``), which the key follows; one that had to be imported could take its help from
    anywhere: then the text is not stored."""
    from .cli import _described, _plugged_commands

    return all(_described(entry) is not None for entry in _plugged_commands().values())


def _rendered_by_click(prog: str) -> tuple[str, object]:
    """What ``konnector --help`` prints through click, and its exit status."""
    import contextlib
    import io

    from .cli import main as cli

    printed = io.StringIO()
    status: object = 0
    with contextlib.redirect_stdout(printed):
        try:
            cli.main(args=["--help"], prog_name=prog)
        except SystemExit as done:
            status = done.code
    return printed.getvalue(), status or 0


def _help_key(prog: str) -> str | None:
    """Everything ``konnector --help``'s text depends on, as one line; None if a plugged command's
    source cannot be found (its help is then whatever loading it says: not cached)."""
    from .entrypoints import COMMANDS_GROUP, entry_points, installed, listed, source_of

    found = listed()
    commands = entry_points(COMMANDS_GROUP, found)
    sources = [os.path.join(os.path.dirname(__file__), "cli.py")]
    for entry in commands:
        source = source_of(entry.module)
        if source is None:
            return None
        sources.append(source)
    try:
        stats = [(source, *_stamp(source)) for source in sources]
    except OSError:
        return None
    return repr(
        (
            HELP_FORMAT,
            prog,
            _columns(),
            [os.environ.get(name) for name in _LOCALE],
            sys.version,
            installed(found),
            [(entry.name, entry.value) for entry in commands],
            stats,
        )
    )


def _columns() -> int:
    """The terminal width exactly as ``shutil.get_terminal_size().columns`` (what click wraps help
    to) computes it, without importing shutil; checked against it before anything is stored."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def _click_columns() -> int:
    import shutil

    return shutil.get_terminal_size().columns


def _list() -> bool:
    """``konnector list`` without click; False (nothing printed) if discovery fails, so that click
    runs the command again and reports the failure in its usual words."""
    from . import usercache

    key = _list_key()
    name = "list-" + usercache.fingerprint(repr((sys.prefix, sys.path)))
    text = usercache.read(name, key) if key else None
    if text is None:
        text = _listing()
        if text is None:
            return False
        if key and key == _list_key():  # nothing changed while discovering: the text is key's
            usercache.write(name, key, text)
    sys.stdout.write(text)
    sys.stdout.flush()
    return True


def _listing() -> str | None:
    """What ``konnector list`` prints, from discovery (framework/registry.py); None if it fails."""
    try:
        from .registry import Registry

        rows = [(m.slug, m.name, m.version, m.source) for m in Registry.discover()]
    except Exception:
        return None
    return "".join(line + "\n" for line in table_lines(("SLUG", "NAME", "VERSION", "SOURCE"), rows))


def _list_key() -> str | None:
    """Everything discovery reads, as one line: the key of ``konnector list``'s stored text. The
    manifest folders' entries (name, folder or file: a KONNECTOR_PATH konnector's module must be
    there) with every ``*.json`` file's whole content, ``KONNECTOR_PATH``, the installed
    distributions and the ``konnectors`` entry points with their packages' ``manifest.json``, the
    Python version and the framework files that discover and print. None if any of it cannot be
    read: discovery then runs, and reports what is wrong."""
    from .entrypoints import entry_points, installed, listed

    here = os.path.dirname(__file__)
    raw = os.environ.get(PATH_ENV, "")
    try:
        code = [(name, _stamp(os.path.join(here, name))) for name in _LIST_CODE]
        builtin = _package_folder(BUILTIN_PACKAGE)
        folders = [os.path.join(builtin, "manifests")] if builtin else []
        folders += [os.path.abspath(folder) for folder in raw.split(os.pathsep) if folder]
        found, plugins = listed(), []
        for entry in entry_points(ENTRY_POINT_GROUP, found):
            package = _package_folder(entry.value)
            manifest = os.path.join(package, "manifest.json") if package else None
            dist = entry.dist.name if entry.dist else None
            plugins.append((entry.name, entry.value, dist, manifest, _content(manifest) if manifest else None))
        seen = [(folder, _folder_entries(folder)) for folder in folders]
    except (OSError, ImportError, ValueError):
        return None
    return repr((LIST_FORMAT, sys.version, raw, installed(found), code, seen, plugins))


def _stamp(path: str) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns


def _package_folder(name: str) -> str | None:
    """Where discovery finds package ``name`` (``importlib.util.find_spec``'s answer)."""
    from .entrypoints import find_spec

    spec = find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return next(iter(spec.submodule_search_locations))


def _folder_entries(folder: str) -> list[tuple[str, bool, bool, bytes | None]]:
    """Each entry's name, whether it is a folder or a file, and a ``*.json`` file's content."""
    with os.scandir(folder) as entries:
        return sorted(
            (entry.name, entry.is_dir(), entry.is_file(), _content(entry.path) if _is_json(entry) else None)
            for entry in entries
        )


def _is_json(entry: os.DirEntry) -> bool:
    return entry.name.lower().endswith(".json") and entry.is_file()


def _content(path: str) -> bytes | None:
    """A file's bytes, whole (a manifest is a few kB): compared exactly, no hash library imported."""
    try:
        with open(path, "rb") as file:
            return file.read()
    except FileNotFoundError:
        return None


def table_lines(header: tuple[str, ...], rows: list[tuple]) -> list[str]:
    """Columns padded to their widest cell, two spaces apart (``konnector list``, ``doctypes``)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
