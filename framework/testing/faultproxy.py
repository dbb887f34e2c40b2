"""A TCP proxy that breaks connections the way networks do, for tests of transport faults.

Put it between a konnector and a sandbox (``proxy.url`` in place of the sandbox's
URL): bytes are forwarded as they are, until a fault armed with :meth:`FaultProxy.fault`
applies to the answer of a request whose first line matches ``path``:

- ``reset``: after ``after`` bytes of the answer, the connection is reset (RST);
- ``truncate``: after ``after`` bytes, the connection is closed cleanly (FIN), so a
  ``Content-Length`` or chunked body ends early;
- ``trickle``: the answer is sent at ``rate`` bytes per second;
- ``delay``: the answer is held ``seconds`` before it is forwarded (a slow server: latency per
  request, e.g. a CouchDB under load).

Each armed fault applies to ``times`` answers, then the proxy forwards untouched (a
retry can succeed). This acts below HTTP: the client sees a real reset, a real short
read, a real slow socket, never a crafted body.
"""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass


@dataclass
class Fault:
    kind: str
    path: str = ""
    after: int = 0
    rate: float = 50.0
    times: int = 1
    seconds: float = 0.0


class FaultProxy:
    """Forwards 127.0.0.1:<free port> to ``upstream`` (``host:port``), breaking what it is told to."""

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.rpartition(":")
        self.upstream = (host or "127.0.0.1", int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.applied: list[str] = []
        """The faults applied, in order (``kind path``)."""

    def fault(
        self, kind: str, *, path: str = "", after: int = 0, rate: float = 50.0, times: int = 1, seconds: float = 0.0
    ) -> None:
        if kind not in ("reset", "truncate", "trickle", "delay"):
            raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            self._faults.append(Fault(kind, path, after, rate, times, seconds))

    def _take(self, request_line: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and re.search(fault.path, request_line):
                    fault.times -= 1
                    self.applied.append(f"{fault.kind} {request_line}")
                    return fault
        return None

    def start(self) -> FaultProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self._closed.set()
        self._listener.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=30)
        except OSError:
            client.close()
            return
        armed: list[Fault | None] = [None]
        requests = threading.Thread(target=self._requests, args=(client, upstream, armed), daemon=True)
        requests.start()
        reset = self._answers(upstream, client, armed)
        _quietly(client.shutdown, socket.SHUT_RD)  # wakes the thread reading requests, sends nothing
        requests.join(5)
        if reset:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            _quietly(client.shutdown, socket.SHUT_WR)
        _quietly(client.close)
        _quietly(upstream.close)

    def _requests(self, client: socket.socket, upstream: socket.socket, armed: list[Fault | None]) -> None:
        """Client to upstream, untouched; a request line arms the fault meant for its answer."""
        try:
            while data := client.recv(65536):
                if match := re.search(rb"^(GET|POST|PUT|PATCH|DELETE|HEAD) (\S+)", data, re.MULTILINE):
                    armed[0] = self._take(match.group(0).decode("latin-1"))
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            _quietly(upstream.shutdown, socket.SHUT_WR)

    def _answers(self, upstream: socket.socket, client: socket.socket, armed: list[Fault | None]) -> bool:
        """Upstream to client, with the armed fault; True when the connection must be reset."""
        sent = 0
        try:
            while data := upstream.recv(65536):
                fault = armed[0]
                if fault is None:
                    client.sendall(data)
                    continue
                if fault.kind == "delay":  # once per answer: its first bytes wait, the rest follows
                    time.sleep(fault.seconds)
                    armed[0] = None
                    client.sendall(data)
                    continue
                if fault.kind == "trickle":
                    for offset in range(0, len(data), max(1, int(fault.rate // 10))):
                        client.sendall(data[offset : offset + max(1, int(fault.rate // 10))])
                        time.sleep(0.1)
                    continue
                room = fault.after - sent
                client.sendall(data[: max(0, room)])
                sent += len(data)
                if sent >= fault.after:
                    return fault.kind == "reset"
        except OSError:
            pass
        return False


def _quietly(action, *args) -> None:
    with contextlib.suppress(OSError):
        action(*args)
