"""Fleet mode under load: many Enedis Data Connect accounts, 1, 2 and 4 workers, one application's quota.

Run:  .venv/bin/python bench/fleet.py [--accounts 40] [--workers 1 2 4] [--latency 0.15]

Everything is real and local: redis-server (broker, leases, shared quota),
pouchdb-server (the store), the Enedis sandbox answering after ``--latency``
seconds and refusing (429) a sixth data call within a second — Enedis' quota of
5 calls a second per application —, and ``konnector worker`` processes, each
job a ``konnector run`` process. Every account belongs to the sandbox's one
application, so the quota binds all workers together.

One template account makes a first (backfill) run; the accounts of each round
are copies of it (own ids, the sandbox's consenting usage points in turn), so each job is
the daily incremental run: three data calls. Each round gets fresh databases,
enqueues one job per account plus a second job for every tenth account (the
lease must keep the pairs apart), and waits until every job has ended.

Printed per round: jobs a minute (and the ratio to one worker), the most data
calls the sandbox received within any one second (quota 5), its 429 answers,
double runs (two jobs of one account running at once) and jobs not done. The
last round kills one of two workers (SIGKILL of its process group) when a third
of the jobs have ended: its job comes back after the visibility timeout and
every account still completes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict

from framework.accounts import Account, AccountStore
from framework.crypto import SecretBox, new_key
from framework.fleet.app import enqueue, make_app
from framework.fleet.jobs import JOBS, Jobs
from framework.fleet.redis_server import RedisServer
from framework.fleet.settings import Settings
from framework.registry import Registry
from framework.store import CouchBackend, DocumentStore, Writer
from framework.testing.couchdb_server import CouchServer
from konnectors.enedis_dataconnect.sandbox import EnedisSandbox

QUOTA = 5
DATA = "metering_data"


class MeasuredSandbox(EnedisSandbox):
    """The Enedis sandbox, recording when each data call arrived and how it was answered."""

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.data_calls: list[tuple[float, int]] = []
        self._record = threading.Lock()

    def handle(self, request):
        arrived = time.monotonic()
        response = super().handle(request)
        if DATA in request.path:
            with self._record:
                self.data_calls.append((arrived, response.status))
        return response

    def reset(self) -> None:
        with self._record:
            self.data_calls = []
        self._calls = []  # the sandbox's own quota window: each round starts with the full quota


def busiest_second(times: list[float]) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def overlaps(jobs: list[dict]) -> int:
    """Pairs of jobs of one account whose runs overlapped in time."""
    by_account = defaultdict(list)
    for job in jobs:
        if job.get("started_at") and job.get("finished_at"):
            by_account[job["message"]["account"]].append((job["started_at"], job["finished_at"]))
    count = 0
    for runs in by_account.values():
        runs.sort()
        count += sum(1 for a, b in itertools.pairwise(runs) if b[0] < a[1])
    return count


class Bench:
    def __init__(self, latency: float) -> None:
        self.redis = RedisServer().start()
        self.couch = CouchServer().start()
        self.sandbox = MeasuredSandbox().start()
        self.sandbox.latency = latency
        self.key = new_key()
        self.manifest = Registry.discover().get("enedis-dataconnect")
        self.template: dict = {}

    def env(self, prefix: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KONNECTOR_", "COZY_"))}
        return env | {
            "KONNECTOR_FLEET_REDIS": self.redis.url,
            "KONNECTOR_BROKER_URL": self.redis.url.rsplit("/", 1)[0] + "/1",
            "COUCHDB_URL": self.couch.url,
            "KONNECTOR_DB_PREFIX": prefix,
            "KONNECTOR_SECRET_KEY": self.key,
            "KONNECTOR_VISIBILITY_TIMEOUT": "20",
            "KONNECTOR_LEASE_SECONDS": "6",
            "COZY_TIME_LIMIT": "120",
        }

    def make_template(self) -> None:
        """One real first run (the backfill); its account document is what every copy starts from."""
        store = DocumentStore(CouchBackend(self.couch.url, "template-"), Writer(app="bench"))
        account = Account("template", "enedis-dataconnect", auth=self.sandbox.dev_config()["fields"])
        AccountStore(store, SecretBox(self.key)).save(account, self.manifest.secret_fields())
        env = self.env("template-") | {
            "COZY_FIELDS": json.dumps({"konnector": "enedis-dataconnect", "account": "template"})
        }
        done = subprocess.run([sys.executable, "-m", "framework", "run"], env=env, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"the template run failed: {done.stdout[-600:]}")
        self.template = {k: v for k, v in store.get("io.cozy.accounts", "template").items() if k != "_rev"}

    def round(self, label: str, accounts: int, workers: int, kill: bool = False) -> dict:
        prefix = f"{label}-"
        store = DocumentStore(CouchBackend(self.couch.url, prefix), Writer(app="bench"))
        points = sorted(p for p, c in self.sandbox.customers.items() if c.consent and not c.curve_refused)
        copies = []
        for n in range(accounts):
            doc = json.loads(json.dumps(self.template))
            doc["_id"] = f"account-{n:05d}"
            doc["auth"]["usage_point_id"] = points[n % len(points)]
            copies.append(doc)
        store.save("io.cozy.accounts", copies)
        env = self.env(prefix)
        settings = Settings.from_environment(env)
        jobs = Jobs(store)
        app = make_app(settings)
        self.sandbox.reset()
        processes = [self.worker(env) for _ in range(workers)]
        time.sleep(3)  # the workers are up before the clock starts
        started = time.monotonic()
        ids = []
        for n in range(accounts):
            for _ in range(2 if n % 10 == 0 else 1):
                job = jobs.create("enedis-dataconnect", f"account-{n:05d}", manual=False)
                enqueue(app, job["_id"])
                ids.append(job["_id"])
        killed = False
        while True:
            ended = [j for j in store.find(JOBS, {"state": {"$in": ["done", "errored"]}}, limit=100000)]
            if kill and not killed and len(ended) >= len(ids) / 3:
                os.killpg(processes[0].pid, signal.SIGKILL)
                processes[0].wait()
                killed = True
            if len(ended) == len(ids):
                break
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        for process in processes[killed:]:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait()
        every = store.find(JOBS, {"worker": "konnector"}, limit=100000)
        calls = self.sandbox.data_calls
        return {
            "round": label,
            "workers": workers,
            "jobs": len(ids),
            "seconds": round(elapsed, 1),
            "jobs_per_min": round(len(ids) / elapsed * 60, 1),
            "data_calls": len(calls),
            "busiest_second": busiest_second([t for t, _ in calls]),
            "answers_429": sum(1 for _, status in calls if status == 429),
            "double_runs": overlaps(every),
            "not_done": sum(1 for j in every if j["state"] != "done"),
            "killed_worker": killed,
            "errors": dict(Counter(j.get("error") for j in every if j["state"] != "done")),
        }

    def worker(self, env: dict[str, str]) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "framework", "worker", "--concurrency", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def close(self) -> None:
        self.sandbox.close()
        self.couch.stop()
        self.redis.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=40)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--latency", type=float, default=0.15)
    parser.add_argument("--no-kill", action="store_true", help="Skip the round that kills a worker.")
    options = parser.parse_args()
    bench = Bench(options.latency)
    try:
        bench.make_template()
        results = [bench.round(f"w{w}", options.accounts, w) for w in options.workers]
        if not options.no_kill:
            results.append(bench.round("kill", options.accounts, 2, kill=True))
    finally:
        bench.close()
    base = results[0]["jobs_per_min"]
    print(f"{options.accounts} accounts (+10 % second jobs), latency {options.latency} s, quota {QUOTA} data calls/s")
    print("| round | workers | jobs | seconds | jobs/min | × 1 worker | data calls | busiest second | 429 ", end="")
    print("| double runs | not done |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r['round']}{' (one killed)' if r['killed_worker'] else ''} | {r['workers']} | {r['jobs']} | "
            f"{r['seconds']} | {r['jobs_per_min']} | {r['jobs_per_min'] / base:.2f} | {r['data_calls']} | "
            f"{r['busiest_second']} | {r['answers_429']} | {r['double_runs']} | {r['not_done']} |"
        )
        if r["errors"]:
            print(f"  not done in round {r['round']}: {r['errors']}")


if __name__ == "__main__":
    main()
