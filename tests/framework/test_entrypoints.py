"""framework.entrypoints reads what importlib.metadata reads, without importing it."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import textwrap

import pytest

from framework.entrypoints import entry_points


@pytest.mark.parametrize("group", ["konnector.commands", "konnectors", "pytest11", "console_scripts"])
def test_same_entry_points_as_importlib_metadata(group):
    ours = sorted((e.name, e.value, e.dist.name if e.dist else None) for e in entry_points(group))
    theirs = sorted(
        (e.name, e.value, e.dist.name if e.dist else None) for e in importlib.metadata.entry_points(group=group)
    )
    assert ours == theirs
    if group == "konnector.commands":
        assert ("demo", "konnectors.showcase.demo:demo", "konnectors") in ours


def test_a_distribution_on_the_path_is_read_and_loaded(tmp_path):
    info = tmp_path / "extra_thing-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: extra-thing\nVersion: 1.0\n\nbody\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            """
            [other]
            ignored = x:y
            ; a comment
            [konnector.commands]
            hello = extra_thing_cmds:group.hello [cli]
            """
        )
    )
    (tmp_path / "extra_thing_cmds.py").write_text("class group:\n    hello = 'hi'\n")
    probe = (
        "import sys; from framework.entrypoints import entry_points;"
        "[e] = [e for e in entry_points('konnector.commands') if e.name == 'hello'];"
        "print(e.dist.name, e.module, e.attr, e.load(), 'importlib.metadata' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["extra-thing", "extra_thing_cmds", "group.hello", "hi", "False"], done.stderr


@pytest.mark.parametrize("name", ["konnectors", "framework", "json", "framework.cli", "os.path", "no_such_module_x"])
def test_find_spec_answers_as_importlib_util(name):
    """In a fresh interpreter: konnectors not imported yet, the editable install's finder on
    sys.meta_path when this venv has one; a dotted name goes through importlib.util itself."""
    probe = (
        "import sys; from framework.entrypoints import find_spec; ours = find_spec(sys.argv[1]);"
        "import importlib.util; theirs = importlib.util.find_spec(sys.argv[1]);"
        "show = lambda s: s and (s.name, s.origin, list(s.submodule_search_locations or ()));"
        "print(show(ours) == show(theirs), show(ours))"
    )
    done = subprocess.run([sys.executable, "-c", probe, name], capture_output=True, text=True, timeout=60)
    assert done.stdout.startswith("True "), done.stdout + done.stderr
    assert ("None" in done.stdout) == (name == "no_such_module_x")
