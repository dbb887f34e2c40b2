"""Transport faults between the store clients and their server, made by the testing kit's TCP fault
proxy: what may be sent again is (a bulk write whose answer was lost counts once), what may not is
sent once; a refused connection is retried; when the tries run out, StoreUnreachable."""

from __future__ import annotations

import pytest

from framework.errors import StoreUnreachable
from framework.stack import open_stack
from framework.store import CouchBackend
from framework.store.couchdb import STORE_RETRY, CouchClient
from framework.testing.faultproxy import FaultProxy

THINGS = "io.example.things"


def _through(url: str, proxy: FaultProxy) -> str:
    credentials, _, _ = url.partition("@")
    return f"{credentials}@127.0.0.1:{proxy.port}"


def _upstream(url: str) -> str:
    return url.rpartition("@")[2].split("/")[0]


def test_a_request_with_effects_is_not_sent_again_once_it_reached_the_server(couchdb_url, db_prefix):
    backend = CouchBackend(couchdb_url, db_prefix)
    db = backend._ensure_db(THINGS)
    with FaultProxy(_upstream(couchdb_url)) as proxy:
        client = CouchClient(_through(couchdb_url, proxy))
        proxy.fault("reset", path=f"POST /{db}$", times=99)
        with pytest.raises(StoreUnreachable, match=r"1: ConnectionError \(\w+\) \(not sent again: not idempotent\)"):
            client.request("POST", db, json={"v": 1}, idempotent=False)  # no id: a second POST, a second doc
    assert len(proxy.applied) == 1
    assert len(list(backend.id_range(THINGS, "", "\ufff0"))) == 1  # it had landed: sending it again would twin it


def test_a_refused_connection_is_tried_again_even_for_a_request_with_effects():
    client = CouchClient("http://127.0.0.1:9")
    with pytest.raises(StoreUnreachable) as raised:
        client.request("POST", "db", json={"v": 1}, idempotent=False)
    assert f"failed {STORE_RETRY.attempts} time(s)" in raised.value.message
    assert raised.value.code == "UNKNOWN_ERROR.STORE_UNREACHABLE"


def test_stack_bulk_write_reset_mid_answer_counts_once(stack_double):
    stack_double.install({"slug": "things", "permissions": {"things": {"type": THINGS}}})
    with FaultProxy(stack_double.url.split("//")[1].rstrip("/")) as proxy:
        stack = open_stack(proxy.url, stack_double.token("things"))
        proxy.fault("reset", path="_bulk_docs", after=200)
        docs = [{"_id": f"d{n:03}", "n": n} for n in range(100)]
        results = stack.backend.bulk_write(THINGS, docs)
        stored = {doc["_id"]: doc for doc in stack.backend.id_range(THINGS, "", "\ufff0")}
        stack.client.close()
    assert proxy.applied == [f"reset POST /data/{THINGS}/_bulk_docs"]
    assert all(result.get("ok") for result in results), results
    assert [result["rev"] for result in results] == [stored[doc["_id"]]["_rev"] for doc in docs]
    assert {rev.split("-")[0] for rev in (result["rev"] for result in results)} == {"1"}


def test_stack_account_created_without_id_is_not_sent_again(stack_double):
    stack_double.install({"slug": "things", "permissions": {"accounts": {"type": "io.cozy.accounts"}}})
    with FaultProxy(stack_double.url.split("//")[1].rstrip("/")) as proxy:
        stack = open_stack(proxy.url, stack_double.token("things"))
        proxy.fault("reset", path=r"POST /data/io\.cozy\.accounts/$", times=99)
        with pytest.raises(StoreUnreachable, match="not sent again"):
            stack.backend.bulk_write("io.cozy.accounts", [{"account_type": "things", "auth": {"login": "ada"}}])
        stack.client.close()
    assert len(proxy.applied) == 1
