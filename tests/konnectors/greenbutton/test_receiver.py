"""``konnector serve``'s receiver attacked as a hostile client would: idle sockets, lying or
malformed Content-Length, oversized and chunked bodies, bad URIs, a certificate of the right CA
with the wrong name, plain HTTP off loopback. The receiver runs in-process (real sockets, real
TLS) with the pge-smd konnector, its sandbox as PG&E."""

from __future__ import annotations

import socket
import ssl
import threading
import time

import pytest
import requests

from framework.errors import ConfigurationError
from framework.receiver import Receiver, ServeOptions
from framework.registry import Registry
from framework.store import SqliteBackend
from framework.testing.inprocess import make_context
from konnectors.greenbutton.pge import NOTIFICATIONS, PgeShareMyData
from konnectors.greenbutton.pge_sandbox import ESPI
from tests.conftest import write_json

NOTIFIER = "pge-notifier.example"


@pytest.fixture
def context(tmp_path, pge):
    backend = SqliteBackend(tmp_path / "store.sqlite3")
    yield make_context(backend, Registry.discover().get("pge-smd"), pge.dev_config()["fields"])
    backend.close()


@pytest.fixture
def receiver(context, operator, pge):
    options = ServeOptions(
        port=0,
        certfile=operator["cert"],
        keyfile=operator["key"],
        client_ca=pge.ca_path,
        client_subject=(NOTIFIER,),
        worker=False,
        handshake_timeout=0.5,
        read_timeout=0.5,
    )
    server = Receiver(PgeShareMyData(), context, options)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    time.sleep(0.2)
    yield server
    server.stop()
    thread.join(5)


def post(receiver, pge, operator, body: bytes, cert=None, **kwargs) -> requests.Response:
    return requests.post(
        receiver.url, data=body, cert=cert or pge.notifier_cert, verify=operator["ca"], timeout=5, **kwargs
    )


def stored(context) -> list:
    return context.store.find(NOTIFICATIONS, {"status": {"$exists": True}}, limit=10)


def raw(receiver, pge, operator, request: bytes) -> bytes:
    """Send bytes over a mutual-TLS socket and return what comes back before the server closes."""
    context = ssl.create_default_context(cafile=operator["ca"])
    context.load_cert_chain(*pge.notifier_cert)
    port = int(receiver.url.split(":")[2].split("/")[0])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as plain,
        context.wrap_socket(plain, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(request)
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
        return answer


def test_an_idle_socket_does_not_stop_others_and_is_dropped(receiver, pge, operator, context):
    port = int(receiver.url.split(":")[2].split("/")[0])
    idle = socket.create_connection(("127.0.0.1", port), timeout=5)  # never starts TLS
    try:
        started = time.monotonic()
        answer = post(receiver, pge, operator, pge.batch_list("50916"))
        assert answer.status_code == 200 and time.monotonic() - started < 1.0
        assert idle.recv(1) == b""  # closed by the handshake timeout (0.5 s)
    finally:
        idle.close()
    assert len(stored(context)) == 1


@pytest.mark.parametrize("length", ["-1", "abc", "1e9", "10, 20"])
def test_malformed_content_length_is_a_400(receiver, pge, operator, context, length):
    answer = raw(
        receiver, pge, operator, f"POST /notify HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n<x/>".encode()
    )
    assert answer.startswith(b"HTTP/1.1 400"), answer[:100]
    assert stored(context) == []


def test_oversized_body_is_refused_whatever_the_headers_say(receiver, pge, operator, context):
    big = b"<BatchList>" + b" " * (2 * 1024 * 1024) + b"</BatchList>"
    assert post(receiver, pge, operator, big).status_code == 413  # Content-Length given
    chunks = (big[i : i + 65536] for i in range(0, len(big), 65536))
    assert post(receiver, pge, operator, chunks).status_code == 413  # chunked, no Content-Length
    assert stored(context) == []


def test_a_body_that_never_ends_is_a_408(receiver, pge, operator, context):
    answer = raw(receiver, pge, operator, b"POST /notify HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n<Batch")
    assert answer.startswith(b"HTTP/1.1 408")
    assert stored(context) == []


@pytest.mark.parametrize("uri", ["https://[::1", "https://example.com:99999/x", "http://[::1]:abc/"])
def test_bad_uris_are_a_clear_400(receiver, pge, operator, context, uri):
    body = f'<BatchList xmlns="http://naesb.org/espi"><resources>{uri}</resources></BatchList>'.encode()
    answer = post(receiver, pge, operator, body)
    assert answer.status_code == 400 and "is not a valid URI" in answer.text
    assert stored(context) == []


def test_a_certificate_of_the_right_ca_with_another_name_is_refused(receiver, pge, operator, context):
    answer = post(receiver, pge, operator, pge.batch_list("50916"), cert=pge.issue_client_cert("intruder"))
    assert answer.status_code == 403 and "intruder.example" in answer.text and NOTIFIER in answer.text
    assert stored(context) == []


def test_concurrent_clients_are_served(receiver, pge, operator, context):
    answers: list[int] = []
    bodies = [pge.batch_list([f"{pge.url}{ESPI}/Batch/Bulk/50916/Data/0?correlationID={n}"]) for n in range(6)]
    threads = [
        threading.Thread(target=lambda b=b: answers.append(post(receiver, pge, operator, b).status_code))
        for b in bodies
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert answers == [200] * 6 and len(stored(context)) == 6


def test_plain_http_only_on_loopback(context, tmp_path, cli, pge):
    with pytest.raises(ConfigurationError, match="only over HTTPS"):
        Receiver(PgeShareMyData(), context, ServeOptions(host="0.0.0.0", port=0))
    write_json(tmp_path / "dev.json", pge.dev_config())
    result = cli("serve", "pge-smd", "--config", "dev.json", "--host", "0.0.0.0", "--port", "0", "--log-format", "json")
    assert result.status == 1 and "refusing to serve plain HTTP on 0.0.0.0" in result.lines[-2]["message"]
    assert "Traceback" not in result.output


def test_client_ca_needs_an_expected_subject(context, operator, pge):
    options = ServeOptions(port=0, certfile=operator["cert"], keyfile=operator["key"], client_ca=pge.ca_path)
    with pytest.raises(ConfigurationError, match="--client-subject"):
        Receiver(PgeShareMyData(), context, options)


def test_plain_http_on_loopback_is_served_with_a_warning(context, pge, caplog):
    server = Receiver(PgeShareMyData(), context, ServeOptions(port=0, worker=False))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    with caplog.at_level("WARNING"):
        thread.start()
        try:
            answer = requests.post(server.url, data=pge.batch_list("50916"), timeout=5)
        finally:
            server.stop()
            thread.join(5)
    assert server.url.startswith("http://127.0.0.1:") and answer.status_code == 200
    assert "only behind a TLS-terminating proxy" in caplog.text
