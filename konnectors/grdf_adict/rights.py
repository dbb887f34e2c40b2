"""GRDF access-right states (``etat_droit_acces``): what each means for the person.

GRDF writes states with accents and not always the same way (``A valider`` and ``À valider``,
``Révoquée`` and ``Révoqué``, ``Active`` and ``Actif``: the values of ADICT v1.9 as independent
clients list them). States are compared after Unicode normalisation (accents dropped, case
folded, spaces collapsed), then looked up in :data:`STATES`:

=================  ========  =========================================================
state              meaning   for the person
=================  ========  =========================================================
Active / Actif     collect   the right is in force: data is collected
A valider          wait      declared, awaiting the holder's approval of GRDF's e-mail
A revérifier       wait      GRDF is checking the proof of consent again
Révoquée / Révoqué consent   revoked (by the holder or us): consent again
Refusée / Refusé   consent   the holder refused the e-mail request: consent again
Obsolète           consent   ended or replaced by another right: consent again
=================  ========  =========================================================

An unknown state is treated as ``consent`` and named in the message.
"""

from __future__ import annotations

import unicodedata
from typing import Any

COLLECT, WAIT, CONSENT = "collect", "wait", "consent"
STATES = {
    "active": COLLECT,
    "actif": COLLECT,
    "a valider": WAIT,
    "a reverifier": WAIT,
    "revoquee": CONSENT,
    "revoque": CONSENT,
    "refusee": CONSENT,
    "refuse": CONSENT,
    "obsolete": CONSENT,
}
REVOKED = "Révoquée"
"""The state a revocation sets (``PATCH droit_acces/{id}``)."""


def normalised(state: Any) -> str:
    """``À  Valider`` → ``a valider``: accents dropped, case folded, spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", str(state or ""))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.replace("_", " ").casefold().split())


def meaning(state: Any) -> str:
    return STATES.get(normalised(state), CONSENT)


def rights_of(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Access rights from a ``droits_acces`` answer: one per object, or wrapped in ``liste_acces``."""
    found = []
    for item in objects:
        wrapped = item.get("liste_acces")
        if isinstance(wrapped, list):
            found.extend(r for r in wrapped if isinstance(r, dict))
        elif "id_pce" in item or "etat_droit_acces" in item:
            found.append(item)
    return found
