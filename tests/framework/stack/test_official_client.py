"""Cozy's official JavaScript client against the stack double, and our backend reading back the same documents.

``js/official_client.js`` drives ``cozy-stack-client`` (npm, pinned in package.json) through the
calls the Cozy konnector libs make (create, bulk, update, Mango find with its index, reads by ids);
the client accepting every answer checks the double's routes and shapes against what Cozy's own
code expects. Then :class:`~framework.stack.StackBackend` reads the same documents back.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from framework.stack import open_stack

HERE = Path(__file__).parent
REPOSITORY = HERE.parents[2]
DOCTYPE = "io.example.things"


def official_client() -> Path:
    script = HERE / "js" / "official_client.js"
    if shutil.which("node") is None or not (REPOSITORY / "node_modules" / "cozy-stack-client").is_dir():
        if os.environ.get("CI"):
            pytest.fail("cozy-stack-client is not installed: run `npm ci --ignore-scripts`")
        pytest.skip("cozy-stack-client is not installed: run `npm ci --ignore-scripts`")
    return script


def test_the_official_client_works_with_the_double_and_we_read_its_documents(stack_double):
    script = official_client()
    stack_double.install({"slug": "things", "permissions": {"things": {"type": DOCTYPE}}})
    token = stack_double.token("things")
    env = {**os.environ, "COZY_URL": stack_double.url, "COZY_CREDENTIALS": token}
    done = subprocess.run(
        ["node", str(script), DOCTYPE], cwd=REPOSITORY, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout)

    created_id = answers["created"]["data"]["_id"]
    assert answers["created"]["data"]["value"] == 1
    assert [r["id"] for r in answers["bulk"]] == ["b", "c"] and all(r["ok"] for r in answers["bulk"])
    assert answers["updated"]["data"]["value"] == 10 and answers["updated"]["data"]["_rev"].startswith("2-")
    assert [d["value"] for d in answers["found"]] == [2, 3, 10]
    assert sorted(d["_id"] for d in answers["many"]) == sorted([created_id, "b"])
    assert answers["one"]["key"] == "c" and answers["refused"] == 403

    routes = [(c.method, c.path.removeprefix(f"/data/{DOCTYPE}/")) for c in stack_double.calls]
    for route in ("", "_bulk_docs", "_index", "_find", "_all_docs"):
        assert ("POST", route) in routes, routes
    assert ("GET", "_design_docs") in routes and ("PUT", created_id) in routes

    backend = open_stack(stack_double.url, token).backend
    ours = backend.get_many(DOCTYPE, [created_id, "b", "c"])
    assert {i: d["value"] for i, d in ours.items()} == {created_id: 10, "b": 2, "c": 3}
    assert ours[created_id]["_rev"] == answers["updated"]["data"]["_rev"]
    found = backend.find(DOCTYPE, {"value": {"$gt": 1}}, 10, sort=["value"])
    assert [d["_id"] for d in found] == ["b", "c", created_id]
