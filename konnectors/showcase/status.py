"""Why a konnector wrote what it wrote: one sentence per account, from its stored state.

The runner keeps ``last_run`` in each account's state (when, documents written, documents
fetched, or the error code); with the rate limiters and the bookmark kept there too, this says
whether "nothing new" means already up to date, already stored by another konnector, a used-up
provider quota, or a consent the account holder still has to give.
"""

from __future__ import annotations

from typing import Any

from framework.accounts import DOCTYPE as ACCOUNTS
from framework.runner import LAST_RUN
from framework.store import DocumentStore


def accounts(store: DocumentStore) -> list[tuple[str, str, dict[str, Any]]]:
    """``(slug, account id, state)`` of every account in the store, by slug."""
    found = [(doc.get("account_type", "?"), doc["_id"], doc.get("data") or {}) for doc in store.id_range(ACCOUNTS)]
    return sorted(found)


def explain(slug: str, state: dict[str, Any], store: DocumentStore, doctypes: frozenset[str]) -> str:
    """One sentence: what the last run did, and when it wrote nothing, why."""
    last = state.get(LAST_RUN)
    if not last:
        return "not run yet"
    if error := last.get("error"):
        if error.startswith("USER_ACTION_NEEDED"):
            return f"consent pending: the account holder must act at the provider ({error})"
        return f"last run failed with {error}"
    if last.get("written"):
        return f"wrote {last['written']:,} documents ({last['at']})"
    if last.get("offered"):
        other = _first_writer(store, doctypes, slug)
        by = f", written first by {other}" if other else ""
        return f"nothing new: the {last['offered']:,} documents fetched were already stored{by}"
    if any(limit.get("tokens", 1) < 1 for limit in (state.get("rate_limits") or {}).values()):
        return "nothing new: the provider's quota is used up; the stored data stays until the next allowed call"
    if state.get("bookmark") is not None:
        return "nothing new: already up to date (the provider had nothing after the bookmark)"
    return "nothing new: the provider offered no data"


def _first_writer(store: DocumentStore, doctypes: frozenset[str], slug: str) -> str | None:
    """Another konnector that created this konnector's documents first, if any."""
    for doctype in sorted(doctypes):
        doc = next(store.id_range(doctype), None)
        creator = (doc or {}).get("cozyMetadata", {}).get("createdByApp")
        if creator and creator != slug:
            return creator
    return None
