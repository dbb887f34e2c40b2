"""A fast CLI start: `konnector --help` and `konnector list` import only what they use.

Each check runs the command in a fresh interpreter and looks at ``sys.modules`` when it is
done: a heavy library imported at module level anywhere on the way fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("zeep", "lxml", "cryptography", "jsonschema", "requests", "jwt", "trustme", "sqlite3")
PROBE = """
import json, sys
sys.argv = ["konnector", *json.loads(sys.argv[1])]
from framework.cli import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def modules_after(*args: str) -> set[str]:
    """Every module (and top-level package) imported once ``konnector ARGS`` is done."""
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    modules = json.loads(done.stdout.strip().splitlines()[-1])
    return {*modules, *(name.split(".")[0] for name in modules)}


@pytest.mark.parametrize(("args", "allowed"), [(("--help",), ()), (("list",), ("jsonschema",))])
def test_start_imports_no_heavy_library(args, allowed):
    loaded = modules_after(*args)
    assert [name for name in HEAVY if name in loaded and name not in allowed] == []
    assert "framework.runner" not in loaded and "konnectors.showcase.demo" not in loaded


def test_help_describes_plugged_commands_as_loading_them_would():
    """The commands list read from sources equals click's own, which imports every command."""
    import click

    from framework.cli import main

    ctx = click.Context(main, info_name="konnector")
    fast, loaded = click.HelpFormatter(), click.HelpFormatter()
    main.format_commands(ctx, fast)
    click.Group.format_commands(main, ctx, loaded)
    assert "demo" in fast.getvalue() and "report" in fast.getvalue()
    assert fast.getvalue() == loaded.getvalue()


def test_public_api_is_still_importable_from_the_package():
    done = subprocess.run(
        [sys.executable, "-c", "import sys, framework; assert 'framework.konnector' not in sys.modules; "
         "from framework import Chunk, Konnector, point, VendorDown; print(Konnector.__name__)"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "Konnector", done.stderr
