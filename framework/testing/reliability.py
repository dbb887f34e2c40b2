"""Reliability checks a konnector author runs on their own konnector (the built-ins' suite uses them too).

- :func:`clean_then_crashed`: the konnector killed with SIGKILL at many points (the sandbox's
  n-th request, a fraction of a clean run's time), then run again; compare each store with the
  one a clean run leaves (:func:`assert_converged`).
- :func:`hostile_fields`: every text field given values that break logs, headers and XML;
  each run must end with ``LOGIN_FAILED`` naming the field, no traceback, no request sent.
- :func:`secret_leaks`: a run at debug level, then every export: where does a secret appear?

All of them run the ``konnector`` command as a subprocess in a work directory, as a person would.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..manifest import Manifest
from ..store import CouchBackend, DocumentStore
from .runner import run_cli

Target = Callable[[Path], tuple[list[str], dict[str, str]]]
"""For a work directory: the store arguments and environment of its runs."""
Snapshot = Callable[[Path], dict]
Setup = Callable[[], contextlib.AbstractContextManager[tuple[Any, dict]]]
"""Gives a context manager yielding ``(sandbox or None, dev-config)``: a fresh provider per run."""


def konnector(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``konnector ARGS`` started in the background, with a clean platform environment."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("COZY_")}
    environment.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "framework", *args],
        cwd=cwd,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_after_requests(sandbox, process: subprocess.Popen, count: int) -> None:
    """SIGKILL the konnector when the sandbox receives its ``count``-th request, before answering it."""
    seen = []

    def maybe_kill(request) -> None:
        seen.append(request)
        if len(seen) == count:
            os.kill(process.pid, signal.SIGKILL)

    sandbox.on_request = maybe_kill


def kill_after_seconds(process: subprocess.Popen, seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, lambda: process.poll() is None and os.kill(process.pid, signal.SIGKILL))
    timer.start()
    return timer


def embedded_snapshot(data_dir: Path) -> dict[str, dict[str, dict]]:
    """Every live data document, without bookkeeping, by database (accounts left out)."""
    snapshot: dict[str, dict[str, dict]] = {}
    with contextlib.closing(sqlite3.connect(data_dir / "store.sqlite3")) as connection:
        for db, doc_id, body in connection.execute("SELECT db, id, body FROM docs WHERE deleted = 0"):
            if db.endswith("io-cozy-accounts"):
                continue
            doc = json.loads(body)
            snapshot.setdefault(db, {})[doc_id] = {k: v for k, v in doc.items() if k not in ("_rev", "cozyMetadata")}
    return snapshot


def embedded(env: dict[str, str] | None = None) -> tuple[Target, Snapshot]:
    """Runs on the embedded store of each work directory."""
    return (lambda work: ([], dict(env or {}))), (lambda work: embedded_snapshot(work / "konnector-data"))


def couchdb(url: str, doctypes: list[str], env: dict[str, str] | None = None) -> tuple[Target, Snapshot]:
    """Runs on a CouchDB server, each work directory with its own database prefix."""
    prefixes: dict[Path, str] = {}

    def target(work: Path) -> tuple[list[str], dict[str, str]]:
        prefix = prefixes.setdefault(work, f"k{uuid.uuid4().hex[:8]}-")
        return ["--couchdb", url], {**(env or {}), "KONNECTOR_DB_PREFIX": prefix}

    def snapshot(work: Path) -> dict:
        store = DocumentStore(CouchBackend(url, prefixes[work]))
        return {
            doctype: {
                d["_id"]: {k: v for k, v in d.items() if k not in ("_rev", "cozyMetadata")}
                for d in store.id_range(doctype)
            }
            for doctype in doctypes
        }

    return target, snapshot


def sandboxed(sandbox_class, seed: int = 0, **parameters: Any) -> Setup:
    """A :data:`Setup` starting ``sandbox_class(seed=seed)`` and using its dev-config with ``parameters``."""

    @contextlib.contextmanager
    def setup() -> Iterator[tuple[Any, dict]]:
        with sandbox_class(seed=seed) as sandbox:
            yield sandbox, {**sandbox.dev_config(), "parameters": parameters}

    return setup


def _write(path: Path, value: object) -> None:
    path.write_text(json.dumps(value), encoding="utf-8")


def start_run(slug: str, work: Path, target: Target) -> subprocess.Popen:
    """``konnector run SLUG --config dev.json`` in ``work``, on the store ``target`` gives it."""
    args, env = target(work)
    return konnector("run", slug, "--config", "dev.json", *args, cwd=work, env=env)


@dataclass
class Killed:
    kind: str
    value: float
    status: int
    """The killed run's exit status (negative: killed by a signal; 0: it finished first)."""
    snapshot: dict


def clean_then_crashed(
    tmp_path: Path, slug: str, setup: Setup, store: tuple[Target, Snapshot], kills: list[tuple[str, float]]
) -> tuple[dict, list[Killed]]:
    """The clean store, then for each kill point: killed run, re-run, and the store it ended with.

    A kill point is ``("request", n)``: when the sandbox receives the n-th request, or
    ``("moment", f)``: at the fraction f of the clean run's duration. Each run gets a fresh
    sandbox from ``setup`` (same seed, same data), so one run's calls never count against the
    provider quota of the next.
    """
    target, snapshot = store
    clean = tmp_path / "clean"
    clean.mkdir()
    with setup() as (_, config):
        _write(clean / "dev.json", config)
        started = time.monotonic()
        first = start_run(slug, clean, target)
        assert first.wait(120) == 0, first.stderr.read()
        duration = time.monotonic() - started
    expected = snapshot(clean)
    results = []
    for number, (kind, value) in enumerate(kills):
        work = tmp_path / f"kill{number}"
        work.mkdir()
        with setup() as (sandbox, config):
            _write(work / "dev.json", config)
            process = start_run(slug, work, target)
            if kind == "request":
                kill_after_requests(sandbox, process, int(value))
            else:
                kill_after_seconds(process, value * duration)
            process.wait(120)
            if sandbox is not None:
                sandbox.on_request = None
            rerun = start_run(slug, work, target)
            assert rerun.wait(120) == 0, rerun.stderr.read()
        results.append(Killed(kind, value, process.returncode, snapshot(work)))
    return expected, results


def assert_converged(expected: dict, results: list[Killed]) -> int:
    """Every killed-then-rerun store equals the clean one; return how many runs were really killed."""
    assert expected, "the clean run stored nothing: nothing to compare"
    for result in results:
        assert result.snapshot.keys() == expected.keys(), (result.kind, result.value)
        for db, docs in expected.items():
            assert result.snapshot[db] == docs, f"{db} differs after a kill at {result.kind} {result.value}"
    return len([r for r in results if r.status != 0])


HOSTILE_VALUES = {
    "CR LF (header injection)": "x\r\nX-Injected: 1",
    "NUL byte": "x\x00y",
    "escape sequence": "x\x1b[2J",
    "a number instead of text": 5,
}


def hostile_fields(slug: str, manifest: Manifest, config: dict, cwd: Path, env: dict | None = None) -> list[str]:
    """Each text field of ``config`` replaced in turn by each hostile value; the problems found.

    Every such run must fail with ``LOGIN_FAILED``, one error line naming the field, without a
    traceback and without showing a secret field's value. (Check the sandbox saw no request.)
    """
    problems = []
    texts = [n for n, spec in manifest.fields.items() if spec["type"] not in ("checkbox", "number", "hidden")]
    for name in texts:
        for label, value in HOSTILE_VALUES.items():
            _write(cwd / "hostile.json", {**config, "fields": {**config["fields"], name: value}})
            result = run_cli(
                "run",
                slug,
                "--config",
                "hostile.json",
                "--account",
                "hostile",
                "--log-format",
                "json",
                cwd=cwd,
                env=env,
            )
            errors = [line["message"] for line in result.lines if line["type"] == "error"]
            if result.error_code != "LOGIN_FAILED" or "Traceback" in result.output:
                problems.append(f"{name} with {label}: ended with {result.error_code} (exit {result.status})")
            elif len(errors) != 1 or f"field '{name}'" not in errors[0]:
                problems.append(f"{name} with {label}: expected one error naming the field, got {errors}")
            elif name in manifest.secret_fields() and isinstance(value, str) and value in result.output:
                problems.append(f"{name} with {label}: the secret value was shown")
    return problems


def secret_leaks(
    slug: str, manifest: Manifest, secrets: list[str], cwd: Path, env: dict | None = None
) -> tuple[list[str], Any]:
    """Run with ``cwd/dev.json`` at debug level, export every doctype: where each secret appeared.

    Returns the leaks (empty when none) and the run's result, so a caller can check it succeeded.
    """
    result = run_cli(
        "run", slug, "--config", "dev.json", "--debug", "--log-format", "json", cwd=cwd, env=env, timeout=300
    )
    exports = [run_cli("export", d, cwd=cwd, env=env).stdout for d in sorted(manifest.doctypes)]
    exports.append(run_cli("export", "io.cozy.accounts", cwd=cwd, env=env).stdout)
    store = cwd / "konnector-data" / "store.sqlite3"
    stored = store.read_bytes() if store.exists() else b""
    leaks = []
    for number, secret in enumerate(secrets):
        if secret in result.output:
            leaks.append(f"secret #{number} is in the logs")
        if secret.encode() in stored:
            leaks.append(f"secret #{number} is stored in clear")
        if any(secret in text for text in exports):
            leaks.append(f"secret #{number} is in an export")
    return leaks, result
