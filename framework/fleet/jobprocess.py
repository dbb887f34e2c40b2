"""A job's own process: forked from a worker that imported everything once, or a fresh interpreter.

Why fork: a fresh ``python -m framework run`` spends most of its CPU second
importing (requests, cryptography, jsonschema, zeep, the konnectors) before
the job makes its first call; a 1,000-account fleet pays that a thousand
times. ``konnector worker`` imports the framework and every konnector's module
once (:func:`preload`), before Celery forks its pool; each job is then an
``os.fork()`` of the pool process that runs the same ``konnector run`` entry
point in platform mode. The isolation is the subprocess's: its own process
(a crash, a leak, a hung call stays in the child and ends with it), its own
environment, stdin from ``/dev/null``, stdout to the worker's file, stderr
discarded, default signal dispositions, no exit handler of the worker, the
exit code as the status, SIGKILL past the time limit. What a fork cannot give:
a clean interpreter — module-level state the worker created before the fork
is inherited (the worker creates none that a job reads: connection pools are
per process, redis-py's and requests' reopen after a fork, ``random`` reseeds).

``KONNECTOR_JOB_PROCESS=subprocess`` keeps the fresh interpreter per job (for a
konnector that needs one, or to compare: bench/fleet.py ``--job-process``).
"""

from __future__ import annotations

import atexit
import contextlib
import io
import logging
import os
import select
import signal
import subprocess
import sys
import traceback
from typing import IO, Protocol

MODES = ("fork", "subprocess")
log = logging.getLogger("konnector.fleet")


class JobProcess(Protocol):
    """What the worker needs of a job's process (``subprocess.Popen`` has it)."""

    pid: int

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...


def start(mode: str, argv: list[str], env: dict[str, str], output: IO[bytes]) -> JobProcess:
    """Start ``konnector <argv>`` with ``env``, its stdout into ``output``; ``mode`` is fork or subprocess."""
    if mode == "subprocess":
        command = [sys.executable, "-m", "framework", *argv]
        return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.DEVNULL)
    return ForkedJob(argv, env, output)


class ForkedJob:
    """A forked child running the ``konnector`` CLI; waited for and killed through a pidfd (no pid reuse race)."""

    def __init__(self, argv: list[str], env: dict[str, str], output: IO[bytes]) -> None:
        output.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            _child(argv, env, output.fileno())
        self.pid = pid
        self._fd = os.pidfd_open(pid)
        self.returncode: int | None = None

    def wait(self, timeout: float | None = None) -> int:
        """The exit code (negative: killed by that signal); ``subprocess.TimeoutExpired`` after ``timeout``."""
        if self.returncode is not None:
            return self.returncode
        ready, _, _ = select.select([self._fd], [], [], timeout)
        if not ready:
            raise subprocess.TimeoutExpired(f"job process {self.pid}", timeout or 0)
        _, status = os.waitpid(self.pid, 0)
        self.returncode = os.waitstatus_to_exitcode(status)
        os.close(self._fd)
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError, OSError):
                signal.pidfd_send_signal(self._fd, signal.SIGKILL)


def _child(argv: list[str], env: dict[str, str], output_fd: int) -> None:
    """In the forked child: become a fresh ``konnector`` process, run the command, exit with its code."""
    code = 70  # EX_SOFTWARE: the child failed before the command ran
    try:
        atexit._clear()  # the worker's exit handlers are not the job's
        for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD):
            signal.signal(number, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as a fresh interpreter has it
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(output_fd, 1)
        os.dup2(null, 2)
        os.close(null)
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 - the process's own stdin
        sys.stdout = io.TextIOWrapper(open(1, "wb", closefd=False), encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
        sys.stderr = io.TextIOWrapper(open(2, "wb", closefd=False), encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
        os.environ.clear()
        os.environ.update(env)
        sys.argv = ["konnector", *argv]
        from ..cli import main

        try:
            main(args=argv, prog_name="konnector")
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        except BaseException:  # as an interpreter would: the traceback, then status 1
            traceback.print_exc()
            code = 1
        atexit._run_exitfuncs()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def preload() -> None:
    """Import what every job imports, once, in the worker: its forked jobs start with them loaded."""
    import jsonschema  # noqa: F401 - fields are validated in every run

    from .. import accounts, cli, crypto, http, oauth, runner  # noqa: F401
    from ..registry import Registry, load_class
    from . import lease, limiter  # noqa: F401

    for manifest in Registry.discover():
        try:
            load_class(manifest)
        except Exception as error:  # its jobs will report it; the worker runs the others
            log.warning(f"konnector {manifest.slug}: not preloaded ({error})")
