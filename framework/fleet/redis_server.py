"""A throwaway redis-server on a free loopback port, for tests and benchmarks.

Debian's ``redis-server`` (``.ci/run`` installs it): no persistence, no
protected-mode surprises, its files in a scratch directory.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time

import redis

STARTUP_SECONDS = 10


class RedisUnavailable(RuntimeError):
    """redis-server cannot be started here; the message says why."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """One redis-server process; ``url`` is its ``redis://`` address."""

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise RedisUnavailable("redis-server is not installed (Debian: apt-get install redis-server)")
        self._scratch = tempfile.TemporaryDirectory(prefix="redis-")
        self._process: subprocess.Popen | None = None
        self.port = 0
        self.url = ""

    def start(self) -> RedisServer:
        for _ in range(3):  # another process may take the free port between the probe and the bind
            self.port = _free_port()
            self.url = f"redis://127.0.0.1:{self.port}/0"
            if self._launch():
                return self
        raise RedisUnavailable(f"redis-server did not start: {self._stderr()}")

    def _launch(self) -> bool:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        command += ["--dir", self._scratch.name, "--loglevel", "warning"]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        probe = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline and self._process.poll() is None:
            try:
                probe.ping()
                return True
            except redis.ConnectionError:
                time.sleep(0.05)
        self.stop()
        return False

    def _stderr(self) -> str:
        if self._process is None or self._process.stderr is None:
            return ""
        return self._process.stderr.read().decode(errors="replace")[-500:]

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def close(self) -> None:
        self.stop()
        self._scratch.cleanup()
