"""cozy-stack's konnector worker, for tests: a job started exactly as ``worker/exec`` starts it.

From cozy-stack's ``worker/exec/{common,konnector,cmd_unix}.go`` and ``model/job/worker.go``:

- before the job (``beforeHookKonnector``): an automatic job of a trigger whose last error
  starts with ``LOGIN_FAILED`` or ``USER_ACTION_NEEDED`` (but ``USER_ACTION_NEEDED.CGU_FORM``)
  is skipped; a manual one runs;
- the work dir is a fresh ``konnector-<slug>*`` temporary directory holding the installed
  files (``README.md``, ``package.json``, ``.travis.yml``, ``LICENSE`` left out); for a
  deletion (``account_deleted``) the argument is ``<work dir>/<on_delete_account>``, and
  with no ``on_delete_account`` the job is dropped;
- the command is ``konnectors.cmd <work dir or file>``, run in the work dir, in its own
  process group, with ONLY the ``COZY_*`` variables (no ``PATH``, no ``HOME``):
  ``COZY_URL COZY_CREDENTIALS COZY_FIELDS COZY_PARAMETERS COZY_PAYLOAD COZY_LANGUAGE
  COZY_LOCALE COZY_TIME_LIMIT COZY_JOB_ID COZY_JOB_MANUAL_EXECUTION`` (+ ``COZY_TRIGGER_ID``);
  the webhook body is passed only if it is a JSON object (``UnmarshalPayload`` decodes it
  into a map: an XML or array body gives an empty ``COZY_PAYLOAD``), re-marshalled with
  sorted keys; over 100,000 bytes it is written to ``cozy_payload.json`` and passed as
  ``@cozy_payload.json``; ``COZY_TIME_LIMIT`` is the seconds left, rounded up, plus 5;
- at the time limit the whole process group gets SIGKILL;
- stdout is read line by line with a 64 KiB buffer (a longer line stops the reading);
  each line must be JSON ``{type, message, no_retry}``, the message cut at 4,000 bytes;
  the job's error is the last ``critical`` message, else the last ``error`` one, else the
  process's own failure; ``no_retry`` on a critical line forbids the retry; stderr is kept
  (256 KiB);
- a failed job is run once more (``MaxExecCount`` 2) unless ``no_retry`` was set or its
  error starts with ``LOGIN_FAILED``/``USER_ACTION_NEEDED`` (``jobHookErrorCheckerKonnector``);
- a deletion that succeeded removes the account's soft-deleted copy.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .stack_double import SOFT_DELETED, StackDouble

MAX_EXEC_COUNT = 2
DEFAULT_TIMEOUT = 300.0
MAX_PAYLOAD_IN_ENV = 100_000
PAYLOAD_FILE = "cozy_payload.json"
LINE_BUFFER = 64 * 1024
MAX_MESSAGE = 4000
STDERR_LIMIT = 256 * 1024
SKIPPED_FILES = {"README.md", "package.json", ".travis.yml", "LICENSE"}
STOPPING = ("LOGIN_FAILED", "USER_ACTION_NEEDED")
"""Errors after which automatic runs of the trigger stop (``USER_ACTION_NEEDED.CGU_FORM`` excepted)."""


@dataclass
class Execution:
    """One run of the command."""

    status: int | None
    """Exit status; None when killed at the time limit."""
    error: str | None
    no_retry: bool
    lines: list[dict[str, Any]]
    unparsed: list[str]
    stderr: str
    env: dict[str, str]
    argument: str


@dataclass
class Job:
    """What the stack made of a job: skipped, or its executions and final error."""

    skipped: bool = False
    executions: list[Execution] = field(default_factory=list)

    @property
    def error(self) -> str | None:
        return self.executions[-1].error if self.executions else None

    @property
    def last(self) -> Execution:
        return self.executions[-1]


class KonnectorWorker:
    """Runs installed konnectors' jobs through ``konnectors.cmd`` against a :class:`StackDouble`."""

    def __init__(self, stack: StackDouble, cmd: Path, locale: str = "en") -> None:
        self.stack = stack
        self.cmd = Path(cmd)
        self.locale = locale
        self.files: dict[str, Path] = {}
        self.trigger_errors: dict[str, str] = {}
        """Trigger id -> the last error of its jobs (``io.cozy.triggers.state``)."""

    def install(self, directory: Path) -> dict[str, Any]:
        """``cozy-stack konnectors install SLUG file://DIR``: read ``manifest.konnector``, keep the files."""
        manifest = json.loads((Path(directory) / "manifest.konnector").read_text())
        self.stack.install(manifest)
        self.files[manifest["slug"]] = Path(directory)
        return manifest

    def run(
        self,
        message: dict[str, Any],
        *,
        manual: bool = False,
        trigger_id: str | None = None,
        payload: bytes | dict[str, Any] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        token_issued_at: float | None = None,
    ) -> Job:
        """Push and run one konnector job (``message`` as in a trigger: ``konnector``, ``account``…)."""
        slug = message["konnector"]
        manifest = self.stack.manifests[slug]
        if not manual and trigger_id and _stops_automatic_runs(self.trigger_errors.get(trigger_id)):
            return Job(skipped=True)
        if message.get("account_deleted") and not _inside(manifest.get("on_delete_account", "")):
            return Job(skipped=True)
        job = Job()
        job_id = uuid.uuid4().hex
        for _ in range(MAX_EXEC_COUNT):
            execution = self._execute(manifest, message, job_id, manual, trigger_id, payload, timeout, token_issued_at)
            job.executions.append(execution)
            if execution.error is None or execution.no_retry or execution.error.startswith(STOPPING):
                break
        if trigger_id:
            self.trigger_errors[trigger_id] = job.error or ""
        if job.error is None and message.get("account_deleted"):
            self._clean_soft_deleted(message.get("account", ""))
        return job

    def _execute(
        self,
        manifest: dict[str, Any],
        message: dict[str, Any],
        job_id: str,
        manual: bool,
        trigger_id: str | None,
        payload: Any,
        timeout: float,
        token_issued_at: float | None,
    ) -> Execution:
        slug = manifest["slug"]
        workdir = Path(tempfile.mkdtemp(prefix=f"konnector-{slug}"))
        try:
            self._copy_files(slug, workdir)
            argument = str(workdir)
            if message.get("account_deleted"):
                argument = str(workdir / _inside(manifest["on_delete_account"]))
            env = {
                "COZY_URL": self.stack.url,
                "COZY_CREDENTIALS": self.stack.token(slug, token_issued_at),
                "COZY_FIELDS": json.dumps(message),
                "COZY_PARAMETERS": json.dumps(manifest.get("parameters")),
                "COZY_PAYLOAD": _payload(payload, workdir),
                "COZY_LANGUAGE": manifest.get("language") or "node",
                "COZY_LOCALE": self.locale,
                "COZY_TIME_LIMIT": str(math.ceil(timeout) + 5),
                "COZY_JOB_ID": f"worker/{job_id}",
                "COZY_JOB_MANUAL_EXECUTION": "true" if manual else "false",
            }
            if trigger_id:
                env["COZY_TRIGGER_ID"] = trigger_id
            return self._spawn(argument, workdir, env, timeout)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _copy_files(self, slug: str, workdir: Path) -> None:
        source = self.files[slug]
        for path in source.rglob("*"):
            relative = path.relative_to(source)
            if path.is_dir() or str(relative) in SKIPPED_FILES or "__pycache__" in relative.parts:
                continue
            target = workdir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            target.chmod(0o640)

    def _spawn(self, argument: str, workdir: Path, env: dict[str, str], timeout: float) -> Execution:
        cwd = Path(argument).parent if Path(argument).is_file() else workdir
        process = subprocess.Popen(
            [str(self.cmd), argument],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        stderr: list[bytes] = []
        reader = threading.Thread(target=_read_limited, args=(process.stderr, stderr), daemon=True)
        reader.start()
        scan = _Scan()
        lines = threading.Thread(target=scan.read, args=(process.stdout,), daemon=True)
        lines.start()
        killed = False
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            killed = True
        lines.join(10)
        reader.join(10)
        error = scan.critical or scan.last_error
        if error is None and killed:
            error = "context deadline exceeded"
        elif error is None and process.returncode != 0:
            error = f"exit status {process.returncode}"
        return Execution(
            status=None if killed else process.returncode,
            error=error,
            no_retry=scan.no_retry,
            lines=scan.lines,
            unparsed=scan.unparsed,
            stderr=b"".join(stderr).decode(errors="replace"),
            env=env,
            argument=argument,
        )

    def _clean_soft_deleted(self, account_id: str) -> None:
        copy = self.stack.stored(SOFT_DELETED, account_id)
        if copy:
            self.stack.delete_stored(SOFT_DELETED, copy)


class _Scan:
    """``ScanOutput`` over a 64 KiB ``bufio.Scanner``."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        self.unparsed: list[str] = []
        self.critical: str | None = None
        self.last_error: str | None = None
        self.no_retry = False
        self.overflow = False

    def read(self, stream) -> None:
        for raw in stream:
            if self.overflow:
                continue  # the scanner stopped: the rest is never read as messages
            line = raw.rstrip(b"\n")
            if len(line) > LINE_BUFFER:
                self.overflow = True
                continue
            self._scan(line)
        stream.close()

    def _scan(self, line: bytes) -> None:
        try:
            entry = json.loads(line)
            kind, message = entry.get("type"), entry.get("message") or ""
            if not isinstance(message, str):
                raise ValueError("message is not a string")
        except (ValueError, AttributeError):
            self.unparsed.append(line.decode(errors="replace"))
            return
        message = message.encode()[:MAX_MESSAGE].decode(errors="replace")
        self.lines.append({**entry, "message": message})
        if kind == "error":
            self.last_error = message
        elif kind == "critical":
            self.critical = message
            self.no_retry = self.no_retry or entry.get("no_retry") is True


def _read_limited(stream, chunks: list[bytes]) -> None:
    size = 0
    for chunk in iter(lambda: stream.read(8192), b""):
        if size < STDERR_LIMIT:
            chunks.append(chunk[: STDERR_LIMIT - size])
            size += len(chunks[-1])
    stream.close()


def _payload(payload: bytes | dict[str, Any] | None, workdir: Path) -> str:
    """``preparePayload``: the webhook body if it decodes to a JSON object (else nothing), re-marshalled."""
    if isinstance(payload, bytes):
        try:
            payload = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            payload = None
    if not isinstance(payload, dict):
        return ""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if len(text) <= MAX_PAYLOAD_IN_ENV:
        return text
    (workdir / PAYLOAD_FILE).write_text(text)
    return "@" + PAYLOAD_FILE


def _inside(path: str) -> str:
    """``path.Clean`` under ``/``, made relative: never outside the konnector's files."""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


def _stops_automatic_runs(error: str | None) -> bool:
    if not error:
        return False
    return error.startswith(STOPPING) and error != "USER_ACTION_NEEDED.CGU_FORM"
