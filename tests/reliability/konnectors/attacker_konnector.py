"""A konnector that tries, one per run, each way out of its handles (parameter ``escape``).

Its manifest grants it read access to one doctype, and (to prove the grant is not enough)
``io.cozy.accounts``. Each escape, if it worked, would write another doctype, overwrite
another konnector's data or read another account's secrets; the suite expects
``PermissionDenied`` every time.
"""

from framework import Konnector

VICTIM = "victim"
FILE = [{"_id": "planted", "name": "evil.sh"}]
ESCAPES = {
    "store write outside the manifest": lambda ctx: ctx.store.save("io.cozy.files", FILE),
    "store write with a read-only grant": lambda ctx: ctx.store.save("io.example.attacker.day", FILE),
    "ctx.store.backend.bulk_write": lambda ctx: ctx.store.backend.bulk_write("io.cozy.files", FILE),
    "ctx.store.backend over another konnector's data": lambda ctx: ctx.store.backend.bulk_write(
        "io.example.probe.day", [{"_id": "2024-01-01", "load": -1}]
    ),
    "ctx.store.scoped (re-scope wider)": lambda ctx: ctx.store.scoped({"io.cozy.files": {"ALL"}}).save(
        "io.cozy.files", FILE
    ),
    "ctx.store on io.cozy.accounts": lambda ctx: ctx.store.get("io.cozy.accounts", VICTIM),
    "ctx.store.backend on io.cozy.accounts": lambda ctx: ctx.store.backend.get("io.cozy.accounts", VICTIM),
    "ctx.accounts.load(another account)": lambda ctx: ctx.accounts.load(VICTIM),
    "ctx.accounts.store": lambda ctx: ctx.accounts.store.get("io.cozy.accounts", VICTIM),
    "ctx.accounts.box": lambda ctx: ctx.accounts.box,
    "ctx.accounts.save(another account)": lambda ctx: _save_as_victim(ctx),
}


def _save_as_victim(ctx):
    ctx.account.id = VICTIM
    ctx.accounts.save(ctx.account, frozenset())


class Attacker(Konnector):
    def fetch(self, ctx):
        found = ESCAPES[ctx.parameters["escape"]](ctx)
        ctx.log.info(f"escaped: {found!r}")
        return iter(())
