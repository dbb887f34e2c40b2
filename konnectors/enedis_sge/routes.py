"""Where each SGE service is posted: Enedis's own addresses, or a gateway's per-service routes.

Two layouts (the ``routes`` field picks one; by default a configured ``wso2BaseUrl``
means the gateway, as in the Ecolyo deployment's dev-config, seed 002):

- ``direct``: ``sgeBaseUrl`` (default ``https://sge-ws.enedis.fr``) + the path each official
  WSDL gives in its ``soap:address`` (``/RecherchePoint/v2.0`` …), with the client certificate.
- ``gateway``: ``wso2BaseUrl`` + ``enedis_SGE_<Service>/1.0``, the WSO2 API manager routes
  the seed quotes (it gives one route for both searches, and none for the stop order, which
  follows the same pattern).

A ``sge_routes`` parameter ({operation: path}) overrides single routes of either layout.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from framework.errors import ConfigurationError

DIRECT_BASE = "https://sge-ws.enedis.fr"

DIRECT = {
    "consulterMesuresDetaillees": "/ConsultationMesuresDetaillees/v2.0",
    "consulterMesuresDetailleesV3": "/ConsultationMesuresDetaillees/v3.0",
    "consulterDonneesTechniquesContractuelles": "/ConsultationDonneesTechniquesContractuelles/v1.0",
    "rechercherPoint": "/RecherchePoint/v2.0",
    "rechercherServicesSouscritsMesures": "/RechercheServicesSouscritsMesures/v1.0",
    "commanderCollectePublicationMesures": "/CommandeCollectePublicationMesures/v3.0",
    "commanderArretServiceSouscritMesures": "/CommandeArretServiceSouscritMesures/v1.0",
}

GATEWAY = {
    "consulterMesuresDetaillees": "/enedis_SGE_ConsultationMesuresDetaillees/1.0",
    "consulterMesuresDetailleesV3": "/enedis_SGE_ConsultationMesuresDetaillees/1.0",
    "consulterDonneesTechniquesContractuelles": "/enedis_SGE_ConsultationDonneesTechniquesContractuelles/1.0",
    "rechercherPoint": "/enedis_SGE_RechercheServicesMesures/1.0",
    "rechercherServicesSouscritsMesures": "/enedis_SGE_RechercheServicesMesures/1.0",
    "commanderCollectePublicationMesures": "/enedis_SGE_CommandeCollectePublicationMesures/1.0",
    "commanderArretServiceSouscritMesures": "/enedis_SGE_CommandeArretServiceSouscritMesures/1.0",
}


def layout(fields: Mapping[str, Any]) -> str:
    """``gateway`` or ``direct``: the ``routes`` field, else gateway when ``wso2BaseUrl`` is set."""
    chosen = fields.get("routes") or ("gateway" if fields.get("wso2BaseUrl") else "direct")
    if chosen == "gateway" and not fields.get("wso2BaseUrl"):
        raise ConfigurationError("routes is 'gateway' but wso2BaseUrl is not set")
    return chosen


def addresses(fields: Mapping[str, Any], overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The URL each operation is posted to."""
    if layout(fields) == "gateway":
        base, table = fields["wso2BaseUrl"], GATEWAY
    else:
        base, table = fields.get("sgeBaseUrl") or DIRECT_BASE, DIRECT
    unknown = set(overrides or {}) - set(table)
    if unknown:
        raise ConfigurationError(f"sge_routes names unknown operations: {', '.join(sorted(unknown))}")
    paths = {**table, **(overrides or {})}
    return {operation: base.rstrip("/") + "/" + path.lstrip("/") for operation, path in paths.items()}
