"""Fleet mode under load: many Enedis Data Connect accounts over several applications, 1, 2 and 4 workers.

Run:  .venv/bin/python bench/fleet.py [--accounts 1000] [--applications 10] [--workers 1 2 4]
                                      [--concurrency 4] [--latency 0.15] [--job-process fork|subprocess ...]

Everything is real and local: redis-server (broker, leases, shared quotas),
pouchdb-server (the store), the Enedis sandbox answering after ``--latency``
seconds and refusing (429) a sixth data call within a second *of one
application* — Enedis' quota of 5 calls a second counts per application
(client_id) —, and ``konnector worker`` processes (``--concurrency`` jobs at
once each), each job a process of its own (``--job-process``: forked from the
worker, the default, or a fresh interpreter). One application caps a fleet at
5 calls a second whatever its workers (1,000 daily jobs × 3 calls ≥ 600 s), so
the accounts are spread over ``--applications`` client_ids registered at the
sandbox, each with its own quota, shared by every worker through Redis.

One template account makes a first run (a short backfill); the accounts of each
round are copies of it (own ids, the application ``n mod --applications``, no
cached token), so each job is the daily incremental run: three data calls. The
copies read the template's usage point: every account of a round shares one
store (per-household databases are not built), and households with different
data would all rewrite the same time-keyed documents at once — in Cozy each
household writes its own databases. With one usage point a job finds the
documents as a previous job left them (the store writes only changes); one
run before each round (not counted) writes them first. Each round gets fresh databases,
enqueues one job per account plus a second job for every tenth account (the
lease must keep the pairs apart), and waits until every job has ended.

Printed per round: jobs a minute (and the ratio to the first round), CPU
seconds per job (workers and their jobs together, from the rusage of the
reaped worker processes), the most data calls the sandbox received within any
one second from one application (quota 5), its 429 answers, double runs (two
jobs of one account running at once) and jobs not done. The last round kills
one of two workers (SIGKILL of its process group, jobs included) when a third
of the jobs have ended: its job comes back after the visibility timeout and
every account still completes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict

from framework.accounts import Account, AccountStore
from framework.crypto import SecretBox, new_key
from framework.fleet.app import enqueue, make_app
from framework.fleet.jobprocess import MODES
from framework.fleet.jobs import JOBS, Jobs
from framework.fleet.redis_server import RedisServer
from framework.fleet.settings import Settings
from framework.registry import Registry
from framework.store import CouchBackend, DocumentStore, Writer
from framework.testing.couchdb_server import CouchServer
from konnectors.enedis_dataconnect.sandbox import EnedisSandbox

SLUG = "enedis-dataconnect"
SHORT_BACKFILL = {"curve_history_days": 7, "daily_history_days": 30, "max_power_history_days": 30}

QUOTA = 5
DATA = "metering_data"


class MeasuredSandbox(EnedisSandbox):
    """The Enedis sandbox, recording when each data call arrived, for which application, and its answer."""

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.data_calls: list[tuple[float, str, int]] = []
        self._record = threading.Lock()

    def handle(self, request):
        arrived = time.monotonic()
        response = super().handle(request)
        if DATA in request.path:
            claims = self.token_claims(request) or {}
            with self._record:
                self.data_calls.append((arrived, claims.get("client_id", "?"), response.status))
        return response

    def reset(self) -> None:
        with self._record:
            self.data_calls = []
        self.reset_quotas()  # each round starts with every application's full quota


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


def busiest_per_application(calls: list[tuple[float, str, int]]) -> dict[str, int]:
    by_application: dict[str, list[float]] = defaultdict(list)
    for arrived, application, _ in calls:
        by_application[application].append(arrived)
    return {application: busiest_second(times) for application, times in sorted(by_application.items())}


def children_cpu() -> float:
    """CPU seconds of every reaped child of this process and their reaped descendants (workers and jobs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Bench:
    def __init__(self, latency: float, applications: int, concurrency: int) -> None:
        self.redis = RedisServer().start()
        self.couch = CouchServer().start()
        self.sandbox = MeasuredSandbox().start()
        self.sandbox.latency = latency
        self.concurrency = concurrency
        self.key = new_key()
        self.manifest = Registry.discover().get(SLUG)
        self.applications = [(f"bench-app-{k:02d}", f"bench-secret-{k:02d}") for k in range(applications)]
        for client_id, secret in self.applications:
            self.sandbox.add_application(client_id, secret)
        self.templates: list[dict] = []
        self.worker_log = open(os.environ.get("BENCH_WORKER_LOG", os.devnull), "ab")  # noqa: SIM115 - for the bench's life

    def env(self, prefix: str, job_process: str = "fork") -> dict[str, str]:
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
            "KONNECTOR_JOB_PROCESS": job_process,
        }

    def make_templates(self) -> None:
        """One real first run (a short backfill), then its account as each application would hold it."""
        store = DocumentStore(CouchBackend(self.couch.url, "template-"), Writer(app="bench"))
        accounts = AccountStore(store, SecretBox(self.key))
        secret_fields = self.manifest.secret_fields()
        accounts.save(Account("template", SLUG, auth=self.sandbox.dev_config()["fields"]), secret_fields)
        env = self.env("template-") | {
            "COZY_FIELDS": json.dumps({"konnector": SLUG, "account": "template"}),
            "COZY_PARAMETERS": json.dumps(SHORT_BACKFILL),
        }
        done = subprocess.run([sys.executable, "-m", "framework", "run"], env=env, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"the template run failed: {done.stdout[-600:]}")
        template = accounts.find("template")
        for client_id, secret in self.applications:
            auth = template.auth | {"client_id": client_id, "client_secret": secret}
            copy = Account(client_id, SLUG, auth=auth, state=template.state, extra=template.extra)  # no cached token
            accounts.save(copy, secret_fields)
            self.templates.append({k: v for k, v in store.get("io.cozy.accounts", client_id).items() if k != "_rev"})

    def round(self, label: str, accounts: int, workers: int, job_process: str, kill: bool = False) -> dict:
        prefix = f"{label}-"
        store = DocumentStore(CouchBackend(self.couch.url, prefix), Writer(app="bench"))
        copies = []
        for n in range(accounts):
            doc = json.loads(json.dumps(self.templates[n % len(self.templates)]))
            doc["_id"] = f"account-{n:05d}"
            copies.append(doc)
        seed = json.loads(json.dumps(self.templates[0])) | {"_id": "seed"}
        store.save("io.cozy.accounts", [*copies, seed])
        env = self.env(prefix, job_process)
        self.seed(env)
        settings = Settings.from_environment(env)
        jobs = Jobs(store)
        app = make_app(settings)
        self.sandbox.reset()
        cpu_before = children_cpu()
        processes = [self.worker(env) for _ in range(workers)]
        time.sleep(3)  # the workers are up before the clock starts
        started = time.monotonic()
        ids = []
        for n in range(accounts):
            for _ in range(2 if n % 10 == 0 else 1):
                job = jobs.create(SLUG, f"account-{n:05d}", manual=False)
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
        cpu = children_cpu() - cpu_before
        every = store.find(JOBS, {"worker": "konnector"}, limit=100000)
        calls = self.sandbox.data_calls
        busiest = busiest_per_application(calls)
        return {
            "round": label,
            "workers": workers,
            "job_process": job_process,
            "jobs": len(ids),
            "seconds": round(elapsed, 1),
            "jobs_per_min": round(len(ids) / elapsed * 60, 1),
            "cpu_per_job": round(cpu / len(ids), 3),
            "data_calls": len(calls),
            "applications": len(busiest),
            "busiest_second": max(busiest.values(), default=0),
            "busiest_by_application": busiest,
            "answers_429": sum(1 for _, _, status in calls if status == 429),
            "double_runs": overlaps(every),
            "not_done": sum(1 for j in every if j["state"] != "done"),
            "killed_worker": killed,
            "errors": dict(Counter(j.get("error") for j in every if j["state"] != "done")),
        }

    def seed(self, env: dict[str, str]) -> None:
        """One run before the round (not counted) writes the documents every job will find unchanged.

        Without it the round's first jobs would all create the same documents at once in the
        shared store and fight over them (conflicts past the store's merge rounds).
        """
        run_env = env | {"COZY_FIELDS": json.dumps({"konnector": SLUG, "account": "seed"})}
        done = subprocess.run([sys.executable, "-m", "framework", "run"], env=run_env, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"the round's seed run failed: {done.stdout[-600:]}")

    def worker(self, env: dict[str, str]) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "framework", "worker", "--concurrency", str(self.concurrency)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.worker_log,
            start_new_session=True,
        )

    def close(self) -> None:
        self.worker_log.close()
        self.sandbox.close()
        self.couch.stop()
        self.redis.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--applications", type=int, default=10, help="client_ids the accounts are spread over")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--concurrency", type=int, default=4, help="jobs each worker runs at once")
    parser.add_argument("--latency", type=float, default=0.15)
    parser.add_argument("--job-process", nargs="+", choices=MODES, default=["fork"], help="several: interleaved")
    parser.add_argument("--no-kill", action="store_true", help="Skip the round that kills a worker.")
    options = parser.parse_args()
    bench = Bench(options.latency, options.applications, options.concurrency)
    started = time.monotonic()
    try:
        bench.make_templates()
        results = [
            bench.round(f"w{w}-{mode}", options.accounts, w, mode)
            for w in options.workers
            for mode in options.job_process
        ]
        if not options.no_kill:
            results.append(bench.round("kill", options.accounts, 2, options.job_process[0], kill=True))
    finally:
        bench.close()
    report(options, results, time.monotonic() - started)


def report(options: argparse.Namespace, results: list[dict], total: float) -> None:
    base = results[0]["jobs_per_min"]
    print(
        f"{options.accounts} accounts (+10 % second jobs) over {options.applications} applications, "
        f"{options.concurrency} jobs at once per worker, latency {options.latency} s, "
        f"quota {QUOTA} data calls/s per application; {total:.0f} s in all"
    )
    print("| round | workers | job process | jobs | seconds | jobs/min | × first | CPU s/job | data calls ", end="")
    print("| busiest second (one application) | 429 | double runs | not done |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r['round']}{' (one killed)' if r['killed_worker'] else ''} | {r['workers']} | {r['job_process']} | "
            f"{r['jobs']} | {r['seconds']} | {r['jobs_per_min']} | {r['jobs_per_min'] / base:.2f} | "
            f"{r['cpu_per_job']} | {r['data_calls']} | {r['busiest_second']} of {QUOTA} "
            f"({r['applications']} applications) | {r['answers_429']} | {r['double_runs']} | {r['not_done']} |"
        )
        if r["errors"]:
            print(f"  not done in round {r['round']}: {r['errors']}")
    for r in results:
        print(f"busiest second per application, {r['round']}: {r['busiest_by_application']}")


if __name__ == "__main__":
    main()
