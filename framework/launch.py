"""The ``konnector`` entry point: ``konnector --help`` and ``konnector list`` without importing click.

Both are typed often and must start about as fast as the interpreter does (issue #22: ≤ 2× a bare
``python -c pass``, bench/cli_start.py). ``import click`` alone costs as much as a bare interpreter,
and defining the CLI's commands and describing the plugged ones adds more; so:

- ``konnector --help`` prints click's own rendering, kept in the user cache (framework/usercache.py)
  under a key holding all it depends on: the program name, the terminal width, the locale, the
  ``sys.path`` entries and the distributions each holds (an install, upgrade or removal changes
  them), the ``konnector.commands`` entry points, and the size and mtime of ``framework/cli.py``
  and of every plugged command's source. On a miss click renders it, and it is stored.
- ``konnector list`` discovers the konnectors as ever (built-in, ``KONNECTOR_PATH``, entry points:
  nothing about *which* konnectors exist is cached), but a manifest already validated with the
  same content is not validated again (framework/manifest.py), so jsonschema is not imported.

Any other command, or any failure on these paths, goes to click (framework/cli.py), which then
does and reports everything as it always has.
"""

from __future__ import annotations

import os
import sys

HELP_FORMAT = "help/1"
"""Changes when the help cache's key or content changes meaning, so older entries are not read."""
_LOCALE = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


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
    from .entrypoints import COMMANDS_GROUP, entry_points, installed, source_of

    commands = entry_points(COMMANDS_GROUP)
    sources = [os.path.join(os.path.dirname(__file__), "cli.py")]
    for entry in commands:
        source = source_of(entry.module)
        if source is None:
            return None
        sources.append(source)
    try:
        stats = [(source, os.stat(source).st_mtime_ns, os.stat(source).st_size) for source in sources]
    except OSError:
        return None
    return repr(
        (
            HELP_FORMAT,
            prog,
            _columns(),
            [os.environ.get(name) for name in _LOCALE],
            sys.version,
            installed(),
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
    try:
        from .registry import Registry

        rows = [(m.slug, m.name, m.version, m.source) for m in Registry.discover()]
    except Exception:
        return False
    sys.stdout.write("".join(line + "\n" for line in table_lines(("SLUG", "NAME", "VERSION", "SOURCE"), rows)))
    sys.stdout.flush()
    return True


def table_lines(header: tuple[str, ...], rows: list[tuple]) -> list[str]:
    """Columns padded to their widest cell, two spaces apart (``konnector list``, ``doctypes``)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
