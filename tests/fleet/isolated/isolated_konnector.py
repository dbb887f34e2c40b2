"""A konnector that shows whether its jobs are processes of their own.

``mode`` ``leak``: stores its pid, its parent's, its job id, and whether an earlier
job left this module's global set (then sets it: a leak, had the jobs shared a
process). ``abort``: the process dies at once (SIGABRT), as a crash in native code would.
"""

import os

from framework import Konnector

RUNS = "io.example.run"
LEFT_BY_AN_EARLIER_JOB: list[str] = []


class Isolated(Konnector):
    def start(self, ctx):
        if ctx.fields["mode"] == "abort":
            os.abort()
        job = os.environ.get("COZY_JOB_ID", "")
        run = {"_id": job, "pid": os.getpid(), "ppid": os.getppid(), "inherited": list(LEFT_BY_AN_EARLIER_JOB)}
        LEFT_BY_AN_EARLIER_JOB.append(job)
        ctx.store.save(RUNS, [run])
