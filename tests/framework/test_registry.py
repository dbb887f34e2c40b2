"""Discovery: built-in manifests, KONNECTOR_PATH, and pip-installed distributions.

The third-party distribution is laid out exactly as pip installs one into
site-packages (the package plus its ``.dist-info`` with ``entry_points.txt``),
in a temporary directory put on PYTHONPATH.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from framework.errors import ConfigurationError, InvalidFields
from framework.manifest import ManifestError, load_file
from framework.registry import Registry
from tests.conftest import PATH_KONNECTORS, write_json

THIRD_PARTY_MANIFEST = {
    "name": "Meter Reader",
    "slug": "meter-reader",
    "type": "konnector",
    "version": "0.3.0",
    "entrypoint": "meter_reader.konnector:MeterReader",
    "fields": {"meter": {"type": "text"}},
    "permissions": {"days": {"type": "org.example.meter.day"}},
}

THIRD_PARTY_CODE = """
from datetime import date

from framework import Konnector, point


class MeterReader(Konnector):
    dedup_keys = {"org.example.meter.day": ("meter", "date")}

    def fetch(self, ctx):
        yield [("2024-05-01", 4.5), ("2024-05-02", 5.5)]

    def process(self, ctx, rows):
        return {"org.example.meter.day": [
            {"meter": ctx.fields["meter"], "date": day, "load": load} for day, load in rows
        ]}
"""


def install_distribution(site: Path, manifest: dict, code: str, entry_value: str = "meter_reader") -> Path:
    package = site / "meter_reader"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "konnector.py").write_text(code)
    write_json(package / "manifest.json", manifest)
    info = site / "meter_reader-0.3.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: meter-reader\nVersion: 0.3.0\n")
    (info / "entry_points.txt").write_text(f"[konnectors]\nmeter-reader = {entry_value}\n")
    (info / "RECORD").write_text("")
    return site


def test_third_party_distribution_is_listed_and_runs(cli, tmp_path):
    site = install_distribution(tmp_path / "site", THIRD_PARTY_MANIFEST, THIRD_PARTY_CODE)
    env = {"PYTHONPATH": str(site)}
    listed = cli("list", env=env)
    assert listed.status == 0, listed.output
    assert "meter-reader" in listed.stdout and "entry point 'meter-reader' of meter-reader" in listed.stdout
    config = write_json(tmp_path / "dev.json", {"fields": {"meter": "m1"}})
    result = cli("run", "meter-reader", "--config", str(config), env=env)
    assert result.status == 0, result.output
    assert "wrote 2 org.example.meter.day" in result.stderr


def test_konnector_code_is_imported_only_when_run(cli, tmp_path):
    site = install_distribution(tmp_path / "site", THIRD_PARTY_MANIFEST, "raise ImportError('broken on import')")
    env = {"PYTHONPATH": str(site)}
    assert cli("list", env=env).status == 0
    config = write_json(tmp_path / "dev.json", {"fields": {"meter": "m1"}})
    result = cli("run", "meter-reader", "--config", str(config), env=env)
    assert result.status == 1 and "cannot import meter_reader.konnector: broken on import" in result.stderr
    assert "Traceback" not in result.output


def test_entrypoint_outside_its_package_is_refused(cli, tmp_path):
    manifest = {**THIRD_PARTY_MANIFEST, "entrypoint": "framework.cli:main"}
    site = install_distribution(tmp_path / "site", manifest, THIRD_PARTY_CODE)
    result = cli("list", env={"PYTHONPATH": str(site)})
    assert result.status == 1
    assert "entrypoint framework.cli:main must be inside package meter_reader" in result.stderr


def test_duplicate_slug_names_both_sources(tmp_path):
    builtin = json.loads((Path(__file__).parents[2] / "konnectors" / "manifests" / "greenbutton-file.json").read_text())
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "greenbutton_copy.py").write_text("")
    write_json(extra / "greenbutton-file.json", {**builtin, "entrypoint": "greenbutton_copy:Copy"})
    with pytest.raises(ConfigurationError) as raised:
        Registry.discover([extra])
    message = raised.value.message
    assert "'greenbutton-file' is declared twice" in message
    assert "konnectors/manifests/greenbutton-file.json" in message and str(extra / "greenbutton-file.json") in message


def test_path_konnectors_must_live_in_their_directory(tmp_path):
    probe = json.loads((PATH_KONNECTORS / "probe.json").read_text())
    write_json(tmp_path / "probe.json", {**probe, "entrypoint": "os.path:join"})
    with pytest.raises(ManifestError, match="is not a module of"):
        Registry.discover([tmp_path])


def test_manifest_file_name_must_be_its_slug(tmp_path):
    probe = json.loads((PATH_KONNECTORS / "probe.json").read_text())
    (tmp_path / "probe_konnector.py").write_text("")
    write_json(tmp_path / "other.json", probe)
    with pytest.raises(ManifestError, match="file name must be the slug"):
        Registry.discover([tmp_path])


@pytest.mark.parametrize("slug", ["../etc", "a/b", "UPPER", "", "x" * 70])
def test_slug_with_path_characters_is_refused(tmp_path, slug):
    path = write_json(tmp_path / "m.json", {**THIRD_PARTY_MANIFEST, "slug": slug})
    with pytest.raises(ManifestError, match=r"\$\.slug"):
        load_file(path)


def test_unknown_slug_lists_known_ones():
    with pytest.raises(ConfigurationError, match="known: .*greenbutton-file"):
        Registry.discover([]).get("nope")


def test_fields_schema_defaults_and_messages():
    manifest = load_file(PATH_KONNECTORS / "probe.json")
    assert manifest.validate_fields({"login": "bob", "password": "pw"})["mode"] == "ok"
    with pytest.raises(InvalidFields) as raised:
        manifest.validate_fields({"login": "bob", "password": "hunter22", "mode": "loud"})
    assert (
        "field 'mode' is malformed: got 'loud', expected a non-empty string without control characters among ok, fail"
        in raised.value.message
    )
    with pytest.raises(InvalidFields) as raised:
        manifest.validate_fields({"login": "bob", "password": ""})
    assert "field 'password' is malformed: got (hidden)" in raised.value.message


def test_field_types_become_json_schema(tmp_path):
    fields = {
        "email": {"type": "email"},
        "start": {"type": "date"},
        "opt_in": {"type": "checkbox"},
        "code": {"type": "text", "min": 3, "max": 4},
    }
    manifest = load_file(write_json(tmp_path / "m.json", {**THIRD_PARTY_MANIFEST, "fields": fields}))
    manifest.validate_fields({"email": "a@b.fr", "start": "2024-01-31", "code": "abc"})
    with pytest.raises(InvalidFields) as raised:
        manifest.validate_fields({"email": "nope", "start": "31/01/2024", "code": "ab", "opt_in": "yes"})
    message = raised.value.message
    for expected in (
        "'email' is malformed",
        "an e-mail address",
        "'start'",
        "a date YYYY-MM-DD",
        "'opt_in'",
        "true or false",
        "'code'",
        "of 3 to 4 characters",
    ):
        assert expected in message


def two_konnectors(directory: Path) -> Path:
    """The probe (a module) and the meter reader (a package) side by side in one directory."""
    directory.mkdir()
    for name in ("probe.json", "probe_konnector.py"):
        (directory / name).write_text((PATH_KONNECTORS / name).read_text())
    package = directory / "meter_reader"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "konnector.py").write_text(THIRD_PARTY_CODE)
    write_json(directory / "meter-reader.json", THIRD_PARTY_MANIFEST)
    return directory


def test_a_path_directory_holding_two_konnectors_lists_and_runs_each(cli, tmp_path):
    env = {"KONNECTOR_PATH": str(two_konnectors(tmp_path / "two"))}
    listed = cli("list", env=env)
    assert listed.status == 0, listed.output
    assert str(tmp_path / "two" / "probe.json") in listed.stdout
    assert str(tmp_path / "two" / "meter-reader.json") in listed.stdout
    meter = write_json(tmp_path / "meter.json", {"fields": {"meter": "m1"}})
    ran = cli("run", "meter-reader", "--config", str(meter), env=env)
    assert ran.status == 0, ran.output
    assert "wrote 2 org.example.meter.day" in ran.stderr
    probe = write_json(tmp_path / "probe-dev.json", {"fields": {"login": "ada", "password": "pw"}})
    ran = cli("run", "probe", "--config", str(probe), env=env)
    assert ran.status == 0, ran.output
    assert "wrote 3 io.example.probe.day" in ran.stderr


def test_one_slug_in_two_path_directories_is_one_line_naming_both_files(cli, tmp_path):
    first, second = two_konnectors(tmp_path / "first"), two_konnectors(tmp_path / "second")
    (second / "probe.json").unlink()
    (second / "probe_konnector.py").unlink()
    (second / "meter_reader").rename(second / "other_reader")
    other = {**THIRD_PARTY_MANIFEST, "entrypoint": "other_reader.konnector:MeterReader"}
    write_json(second / "meter-reader.json", other)
    result = cli("list", env={"KONNECTOR_PATH": os.pathsep.join([str(first), str(second)])})
    assert result.status == 1
    assert result.stderr.strip().splitlines() == [
        f"error: konnector 'meter-reader' is declared twice: by {first / 'meter-reader.json'}"
        f" and by {second / 'meter-reader.json'}"
    ]


def test_one_module_offered_by_two_path_directories_is_refused(cli, tmp_path):
    """Both would import the first directory's module: one konnector would run the other's code."""
    first = two_konnectors(tmp_path / "first")
    second = tmp_path / "second"
    second.mkdir()
    (second / "probe_konnector.py").write_text((PATH_KONNECTORS / "probe_konnector.py").read_text())
    probe = json.loads((PATH_KONNECTORS / "probe.json").read_text())
    write_json(second / "probe-copy.json", {**probe, "slug": "probe-copy"})
    result = cli("list", env={"KONNECTOR_PATH": os.pathsep.join([str(first), str(second)])})
    assert result.status == 1
    assert result.stderr.strip().splitlines() == [
        f"error: module 'probe_konnector' is offered twice: by {first} (for {first / 'probe.json'})"
        f" and by {second} (for {second / 'probe-copy.json'}); rename one"
    ]
