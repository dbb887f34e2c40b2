"""`konnector --help` from the cache of click's rendering, `konnector list` from the cache of its
text or at least without re-validating: the real command in fresh processes, each told which cache
directory to use.

Whether a run used the cache is read from ``-X importtime``: a hit imports neither click (help)
nor the registry (list), a listing run again imports no jsonschema; a miss must, as the cache
does not know the answer.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from framework import usercache
from tests.conftest import PATH_KONNECTORS
from tests.framework.test_registry import THIRD_PARTY_CODE, THIRD_PARTY_MANIFEST, install_distribution

SCRIPT = Path(sys.executable).parent / "konnector"
CLICK_HELP = "from framework.cli import main; main(prog_name='konnector')"


class Run:
    def __init__(self, done: subprocess.CompletedProcess) -> None:
        self.status, self.stdout = done.returncode, done.stdout
        self.stderr = "\n".join(line for line in done.stderr.splitlines() if not line.startswith("import time:"))
        self.modules = {
            line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")
        }
        self.imported = {name.split(".")[0] for name in self.modules}


def konnector(*args: str, cache: Path | str, env: dict[str, str] | None = None, click_only: bool = False) -> Run:
    """``konnector ARGS`` as installed (or through click alone), with this cache and environment."""
    environment = {k: v for k, v in os.environ.items() if k != "KONNECTOR_PATH"}
    environment.update({"KONNECTOR_CACHE_DIR": str(cache), **(env or {})})
    command = ["-c", CLICK_HELP] if click_only else [str(SCRIPT)]
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *command, *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
    )
    return Run(done)


pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason="the konnector script is not installed beside python")


@pytest.mark.parametrize("columns", ["60", "100"])
def test_help_from_the_cache_is_clicks_rendering(tmp_path, columns):
    env = {"COLUMNS": columns}
    clicks = konnector("--help", cache="", env=env, click_only=True)
    first, second = (konnector("--help", cache=tmp_path, env=env) for _ in range(2))
    assert clicks.status == first.status == second.status == 0
    assert first.stdout == second.stdout == clicks.stdout
    assert "Commands:" in clicks.stdout and "Usage: konnector" in clicks.stdout
    assert "click" in first.imported and "click" not in second.imported


def test_help_follows_a_plugin_installed_edited_upgraded_removed(tmp_path):
    plugins, cache = tmp_path / "plugins", tmp_path / "cache"
    plugins.mkdir()
    env = {"PYTHONPATH": str(plugins)}
    source = plugins / "hello_plugin.py"
    source.write_text('import click\n\n\n@click.command()\ndef hello():\n    """Say hello."""\n')
    konnector("--help", cache=cache, env=env)
    assert "hello" not in konnector("--help", cache=cache, env=env).stdout

    info = plugins / "hello_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hello-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[konnector.commands]\nhello = hello_plugin:hello\n")
    installed = konnector("--help", cache=cache, env=env)
    assert "click" in installed.imported and "Say hello." in installed.stdout
    assert installed.stdout == konnector("--help", cache="", env=env, click_only=True).stdout
    assert "click" not in konnector("--help", cache=cache, env=env).imported

    source.write_text(source.read_text().replace("Say hello.", "Greet whoever runs it."))
    edited = konnector("--help", cache=cache, env=env)
    assert "Greet whoever runs it." in edited.stdout and "Say hello." not in edited.stdout

    info.rename(plugins / "hello_plugin-2.0.dist-info")
    assert "click" in konnector("--help", cache=cache, env=env).imported  # an upgrade: rendered again
    shutil.rmtree(plugins / "hello_plugin-2.0.dist-info")
    assert "hello" not in konnector("--help", cache=cache, env=env).stdout


def _same_as_discovery(env: dict[str, str], cache: Path) -> Run:
    """``konnector list`` twice through the cache: both print what discovery prints through click
    with no cache at all, and the second, when the listing succeeds, from the cache alone."""
    discovered = konnector("list", cache="", env=env, click_only=True)
    first, second = (konnector("list", cache=cache, env=env) for _ in range(2))
    assert first.stdout == second.stdout == discovered.stdout
    assert first.status == second.status == discovered.status
    assert first.stderr == second.stderr == discovered.stderr
    if discovered.status == 0:
        assert "framework.registry" not in second.modules and "jsonschema" not in second.imported
    return second


def _edit_keeping_size_and_mtime(path: Path, old: str, new: str) -> None:
    """Only the content differs: a key made of sizes and mtimes would not see it."""
    text, before = path.read_text(), path.stat()
    assert len(old) == len(new) and old in text
    path.write_text(text.replace(old, new))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size


def test_list_from_the_cache_follows_plugins_konnector_path_and_manifests(tmp_path):
    cache, site, extra, other = tmp_path / "cache", tmp_path / "site", tmp_path / "extra", tmp_path / "other"
    site.mkdir()
    shutil.copytree(PATH_KONNECTORS, extra)
    env = {"PYTHONPATH": str(site)}
    builtin = _same_as_discovery(env, cache).stdout
    assert "greenbutton-file" in builtin

    install_distribution(site, THIRD_PARTY_MANIFEST, THIRD_PARTY_CODE)  # a plugin installed
    assert "meter-reader" in _same_as_discovery(env, cache).stdout
    _edit_keeping_size_and_mtime(site / "meter_reader" / "manifest.json", "Meter Reader", "Meter Render")
    assert "Meter Render" in _same_as_discovery(env, cache).stdout

    env["KONNECTOR_PATH"] = str(extra)  # a KONNECTOR_PATH directory
    assert "probe " in _same_as_discovery(env, cache).stdout
    _edit_keeping_size_and_mtime(extra / "probe.json", '"Probe"', '"Prune"')
    assert "Prune" in _same_as_discovery(env, cache).stdout

    other.mkdir()  # a second directory, then a konnector added to it
    env["KONNECTOR_PATH"] = os.pathsep.join((str(extra), str(other)))
    assert (
        _same_as_discovery(env, cache).stdout
        == konnector("list", cache="", env={**env, "KONNECTOR_PATH": str(extra)}).stdout
    )
    manifest = (extra / "probe.json").read_text().replace('"probe"', '"probe-two"')
    (other / "probe-two.json").write_text(manifest.replace("probe_konnector:", "probe_two:"))
    (other / "probe_two.py").write_text("")
    assert "probe-two" in _same_as_discovery(env, cache).stdout

    (other / "probe_two.py").unlink()  # its module gone: discovery refuses it, from the cache too
    gone = _same_as_discovery(env, cache)
    assert gone.status == 1 and "is not a module of" in gone.stderr
    (other / "probe_two.py").write_text("")
    assert "probe-two" in _same_as_discovery(env, cache).stdout

    shutil.rmtree(site / "meter_reader-0.3.0.dist-info")  # the plugin removed
    del env["KONNECTOR_PATH"]
    assert _same_as_discovery(env, cache).stdout == builtin


def test_list_names_agree_with_the_registry():
    from framework import launch, registry

    assert (launch.PATH_ENV, launch.ENTRY_POINT_GROUP, launch.BUILTIN_PACKAGE) == (
        registry.PATH_ENV,
        registry.ENTRY_POINT_GROUP,
        registry.BUILTIN_PACKAGE,
    )
    assert str(registry.BUILTIN_MANIFESTS) == os.path.join(launch._package_folder("konnectors"), "manifests")


def test_list_validates_a_manifest_once_and_every_changed_one(tmp_path):
    konnectors, cache = tmp_path / "konnectors", tmp_path / "cache"
    shutil.copytree(PATH_KONNECTORS, konnectors)
    env = {"KONNECTOR_PATH": str(konnectors)}
    clicks = konnector("list", cache="", env=env, click_only=True)
    first, second = (konnector("list", cache=cache, env=env) for _ in range(2))
    assert first.stdout == second.stdout == clicks.stdout and "probe" in clicks.stdout
    assert "jsonschema" in first.imported and not {"jsonschema", "click"} & second.imported
    (tmp_path / "empty").mkdir()  # the listing changes (another directory), no manifest does
    env["KONNECTOR_PATH"] += os.pathsep + str(tmp_path / "empty")
    again = konnector("list", cache=cache, env=env)
    assert again.stdout == clicks.stdout and "framework.registry" in again.modules
    assert "jsonschema" not in again.imported

    manifest = konnectors / "probe.json"
    valid, before = manifest.read_text(), manifest.stat()
    broken = valid.replace('"version": "1.0.0"', '"version": 1.00000')  # same size, a number: invalid
    assert len(broken) == len(valid) and broken != valid
    manifest.write_text(broken)
    os.utime(manifest, ns=(before.st_atime_ns, before.st_mtime_ns))  # same size, same mtime: only the content differs
    for _ in range(2):  # an invalid manifest is never remembered as valid
        failed = konnector("list", cache=cache, env=env)
        assert failed.status == 1 and failed.stdout == ""
        assert "error: invalid manifest" in failed.stderr and "$.version" in failed.stderr
        assert "Traceback" not in failed.stderr

    manifest.write_text(valid)
    assert konnector("list", cache=cache, env=env).stdout == clicks.stdout


def test_list_follows_konnector_path(tmp_path):
    first, second, cache = tmp_path / "first", tmp_path / "second", tmp_path / "cache"
    shutil.copytree(PATH_KONNECTORS, first)
    second.mkdir()
    manifest = (PATH_KONNECTORS / "probe.json").read_text().replace('"probe"', '"probe-two"')
    (second / "probe-two.json").write_text(manifest.replace("probe_konnector:", "probe_two:"))
    (second / "probe_two.py").write_text("")
    alone = konnector("list", cache=cache, env={"KONNECTOR_PATH": str(first)})
    both = konnector("list", cache=cache, env={"KONNECTOR_PATH": os.pathsep.join(map(str, (first, second)))})
    assert "probe-two" not in alone.stdout and "probe-two" in both.stdout and "probe " in both.stdout
    missing = konnector("list", cache=cache, env={"KONNECTOR_PATH": str(tmp_path / "nowhere")})
    assert missing.status == 1 and "which is not a directory" in missing.stderr and missing.stdout == ""


def test_a_cache_that_cannot_be_written_or_is_off_changes_nothing(tmp_path):
    (tmp_path / "a-file").write_text("")
    clicks = konnector("--help", cache="", click_only=True).stdout
    for cache in (tmp_path / "a-file" / "cache", ""):
        for _ in range(2):
            run = konnector("--help", cache=cache)
            assert run.status == 0 and run.stdout == clicks and "click" in run.imported
            assert konnector("list", cache=cache).status == 0


def test_cache_files_are_private_and_read_only_by_their_owner(tmp_path):
    cache = tmp_path / "cache"
    konnector("--help", cache=cache)
    konnector("list", cache=cache)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    entries = sorted(cache.iterdir())
    assert [entry.name.split("-")[0] for entry in entries] == ["help", "list", "manifests"]
    assert all(stat.S_IMODE(entry.stat().st_mode) == 0o600 for entry in entries)

    [help_file] = cache.glob("help-*")
    key, _, text = help_file.read_text().partition("\n")
    help_file.write_text(f"{key}\n{text.replace('Usage:', 'Planted:')}")
    assert konnector("--help", cache=cache).stdout.startswith("Planted:")  # the stored text is what is shown
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        os.chown(help_file, 65534, 65534)  # another user's file is not trusted
        assert konnector("--help", cache=cache).stdout.startswith("Usage:")


def test_cache_directory_is_platformdirs_user_cache_dir(monkeypatch, tmp_path):
    platformdirs = pytest.importorskip("platformdirs")
    monkeypatch.delenv(usercache.CACHE_ENV)
    for xdg in (None, str(tmp_path / "xdg")):
        if xdg is None:
            monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
        else:
            monkeypatch.setenv("XDG_CACHE_HOME", xdg)
        assert usercache.directory() == platformdirs.user_cache_dir("konnectors", appauthor=False)
    monkeypatch.setenv(usercache.CACHE_ENV, "")
    assert usercache.directory() is None


def test_a_long_plugged_help_is_wrapped_as_click_wraps_it(tmp_path):
    """A narrow terminal, a long help read from a plugin's source: the same text from the cache."""
    plugins = tmp_path / "plugins"
    (plugins / "wide_plugin-1.0.dist-info").mkdir(parents=True)
    (plugins / "wide_plugin-1.0.dist-info" / "entry_points.txt").write_text("[konnector.commands]\nwide = wide:go\n")
    (plugins / "wide.py").write_text(
        textwrap.dedent(
            """
            import click


            @click.command(help="A long line of help, " * 8)
            def go():
                pass
            """
        )
    )
    env = {"PYTHONPATH": str(plugins), "COLUMNS": "52"}
    clicks = konnector("--help", cache="", env=env, click_only=True).stdout
    assert "wide" in clicks
    assert [konnector("--help", cache=tmp_path / "cache", env=env).stdout for _ in range(2)] == [clicks, clicks]


def test_a_plugged_help_computed_elsewhere_is_not_cached(tmp_path):
    """A help that is not a literal of the command's own source may change with another file."""
    plugins = tmp_path / "plugins"
    (plugins / "far_plugin-1.0.dist-info").mkdir(parents=True)
    (plugins / "far_plugin-1.0.dist-info" / "entry_points.txt").write_text("[konnector.commands]\nfar = far:go\n")
    (plugins / "far_text.py").write_text('HELP = "Told from elsewhere."\n')
    (plugins / "far.py").write_text(
        "import click\nfrom far_text import HELP\n\n\n@click.command(help=HELP)\ndef go():\n    pass\n"
    )
    env = {"PYTHONPATH": str(plugins)}
    first = konnector("--help", cache=tmp_path / "cache", env=env)
    assert "Told from elsewhere." in first.stdout
    (plugins / "far_text.py").write_text('HELP = "Told from elsewhere, and changed."\n')
    second = konnector("--help", cache=tmp_path / "cache", env=env)
    assert "Told from elsewhere, and changed." in second.stdout and "click" in second.imported
