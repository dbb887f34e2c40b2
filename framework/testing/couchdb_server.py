"""Start and stop a real CouchDB-compatible server for tests: pouchdb-server, in memory or on disk.

pouchdb-server is pinned in the repository's ``package.json`` and installed with
``npm ci --ignore-scripts``. In memory it needs no native code. On disk it uses
its default LevelDB adapter through ``leveldown``, whose N-API prebuilt binaries
ship in the npm package (``node-gyp-build`` loads them; no install script needs
to run). The two modes do not behave alike: on disk, ``_bulk_docs`` answers out
of order, which is why the suite runs the store on both.
It listens on a free 127.0.0.1 port with an admin account, in a scratch
directory (it writes its config and log file where it runs, and its databases
under ``data/`` there when on disk).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import requests

BINARY_ENV = "POUCHDB_SERVER"
REPOSITORY = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 30


class ServerUnavailable(RuntimeError):
    """The test server cannot be started here; the message says why."""


def find_binary(search_from: Path = REPOSITORY) -> Path:
    """The pouchdb-server launcher: ``$POUCHDB_SERVER``, else ``node_modules/.bin`` of the repository."""
    if configured := os.environ.get(BINARY_ENV):
        return Path(configured)
    candidate = search_from / "node_modules" / ".bin" / "pouchdb-server"
    if candidate.exists():
        return candidate
    if shutil.which("node") is None:
        raise ServerUnavailable("Node.js is not installed, so pouchdb-server cannot run")
    raise ServerUnavailable(f"pouchdb-server is not installed: run `npm ci --ignore-scripts` in {search_from}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class CouchServer:
    """One pouchdb-server process; ``url`` carries the admin credentials."""

    def __init__(self, binary: Path | None = None, *, on_disk: bool = False) -> None:
        self.binary = binary or find_binary()
        self.on_disk = on_disk
        self.port = _free_port()
        self.password = secrets.token_hex(12)
        self.url = f"http://admin:{self.password}@127.0.0.1:{self.port}"
        self._scratch = tempfile.TemporaryDirectory(prefix="pouchdb-")
        self._process: subprocess.Popen | None = None

    def start(self) -> CouchServer:
        command = [str(self.binary), "--host", "127.0.0.1", "--port", str(self.port)]
        if self.on_disk:
            data = Path(self._scratch.name) / "data"
            data.mkdir()
            command += ["--dir", str(data)]
        else:
            command.append("--in-memory")
        self._process = subprocess.Popen(
            command, cwd=self._scratch.name, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        plain = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ServerUnavailable(f"pouchdb-server exited: {self._process.stderr.read().decode()[-500:]}")
            try:
                requests.get(plain, timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            self.stop()
            raise ServerUnavailable(f"pouchdb-server did not answer within {STARTUP_SECONDS} s")
        response = requests.put(f"{plain}/_config/admins/admin", json=self.password, timeout=10)
        response.raise_for_status()
        return self

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process and self._process.stderr:
            self._process.stderr.close()
        self._scratch.cleanup()

    def __enter__(self) -> CouchServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
