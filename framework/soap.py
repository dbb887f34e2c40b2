"""SOAP for konnectors: zeep clients from the konnector's own WSDL/XSD, on our HTTP session.

The client sends through a :class:`~framework.http.ProviderSession`, so SOAP
calls get the same timeouts, retries, rate limit, mutual TLS and redacted
logging as REST calls. Answers are parsed with DTDs and entities forbidden.
A SOAP fault becomes a typed job error that keeps the provider's code and text
(Enedis puts them in ``detail/erreur/resultat@code``). :func:`call` binds the answer
to the WSDL (strict); :func:`send` reads it by name, so that elements a later version of the
service adds never fail a run, and :func:`need` names an element that is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import requests
import zeep
import zeep.exceptions
from lxml import etree
from zeep.transports import Transport

from .errors import KonnectorError, LoginFailed, VendorDown
from .http import ProviderSession, server_error
from .safexml import UnsafeXml, parse

ENVELOPE = "http://schemas.xmlsoap.org/soap/envelope/"

SETTINGS = zeep.Settings(strict=True, xml_huge_tree=False, forbid_dtd=True, forbid_entities=True, forbid_external=True)


class SoapFault(VendorDown):
    """A SOAP fault no mapping names: the provider's code and text are kept."""

    def __init__(self, message: str, provider_code: str) -> None:
        super().__init__(message)
        self.provider_code = provider_code


def is_outage(response: requests.Response) -> bool:
    """A 5xx that is not a SOAP fault: SOAP 1.1 sends faults as HTTP 500, and they are answers."""
    fault = b"Fault>" in response.content[:65536] and "xml" in response.headers.get("Content-Type", "")
    return server_error(response) and not fault


def client(wsdl: Path, session: ProviderSession) -> zeep.Client:
    """A zeep client for a WSDL file shipped with the konnector (never fetched from the network).

    The session is told that SOAP faults are answers, not outages to retry.
    """
    session.transient = is_outage
    return zeep.Client(str(wsdl), transport=Transport(session=session, timeout=session.timeout[0]), settings=SETTINGS)


def service(soap_client: zeep.Client, address: str, binding: str | None = None) -> Any:
    """The operations of ``binding`` (default: the WSDL's only binding) sent to ``address``."""
    bindings = list(soap_client.wsdl.bindings)
    if binding is None and len(bindings) != 1:
        raise ValueError(f"the WSDL has {len(bindings)} bindings; name one")
    return soap_client.create_service(binding or bindings[0], address)


def fault_code(fault: zeep.exceptions.Fault) -> tuple[str, str]:
    """The provider's code and text: from a ``code`` attribute in the detail, else the faultcode."""
    if fault.detail is not None:
        for element in fault.detail.iter():
            if element.get("code"):
                return element.get("code"), (element.text or fault.message or "").strip()
    return str(fault.code or "Fault"), (fault.message or "").strip()


def call(
    operation: Callable[..., Any],
    *,
    faults: Mapping[str, type[KonnectorError]] | None = None,
    **arguments: Any,
) -> Any:
    """Call a SOAP operation; map a fault to the error class ``faults`` gives for its code."""
    try:
        return operation(**arguments)
    except zeep.exceptions.Fault as fault:
        code, text = fault_code(fault)
        error_class = (faults or {}).get(code)
        message = f"{code}: {text}"
        raise (error_class(message) if error_class else SoapFault(message, code)) from None
    except (zeep.exceptions.DTDForbidden, zeep.exceptions.EntitiesForbidden):
        raise VendorDown("SOAP service sent XML with a DTD or entities; refused for safety") from None
    except zeep.exceptions.TransportError as exc:
        raise VendorDown(f"SOAP service answered HTTP {exc.status_code} without a fault") from None
    except (zeep.exceptions.XMLSyntaxError, zeep.exceptions.ValidationError, zeep.exceptions.XMLParseError) as exc:
        raise VendorDown(f"SOAP service sent a malformed answer: {exc}") from None


def send(
    service: Any,
    operation: str,
    *,
    faults: Mapping[str, type[KonnectorError]] | None = None,
    **arguments: Any,
) -> etree._Element:
    """Call ``operation``; return the answer's body element, unbound from the WSDL.

    zeep builds the request from the konnector's WSDL (so what we send has the
    declared shape), but the answer is only parsed safely, not checked against it:
    real services add optional elements and attributes across versions, so the
    caller reads what it needs by name (:func:`need`). A fault is mapped as in :func:`call`.
    """
    try:
        with service._client.settings(raw_response=True):
            response = getattr(service, operation)(**arguments)
    except zeep.exceptions.ValidationError as exc:
        raise VendorDown(f"the {operation} request could not be built: {exc}") from None
    return answer(response, operation, faults)


def answer(
    response: requests.Response, operation: str, faults: Mapping[str, type[KonnectorError]] | None = None
) -> etree._Element:
    """The first element of a SOAP answer's body; a fault becomes a typed error keeping its code."""
    if response.status_code in (401, 403) and b"Fault>" not in response.content[:65536]:
        raise LoginFailed(f"the SOAP service refused our credentials (HTTP {response.status_code}) on {operation}")
    try:
        envelope = parse(response.content, name=f"the {operation} answer", max_bytes=64 * 1024 * 1024)
    except UnsafeXml as exc:
        if response.status_code != 200:
            raise VendorDown(
                f"SOAP service answered HTTP {response.status_code} to {operation} without a fault"
            ) from None
        raise VendorDown(f"SOAP service sent a malformed answer to {operation}: {exc}") from None
    body = envelope.find(f"{{{ENVELOPE}}}Body")
    if body is None or len(body) == 0:
        raise VendorDown(f"SOAP service sent no body in its answer to {operation}")
    first = body[0]
    if first.tag == f"{{{ENVELOPE}}}Fault":
        code, text = _fault_of(first)
        error_class = (faults or {}).get(code)
        message = f"{code}: {text}"
        raise error_class(message) if error_class else SoapFault(message, code)
    if response.status_code != 200:
        raise VendorDown(f"SOAP service answered HTTP {response.status_code} to {operation}")
    return first


def _fault_of(fault: etree._Element) -> tuple[str, str]:
    detail = fault.find("detail")
    if detail is not None:
        for element in detail.iter():
            if isinstance(element.tag, str) and element.get("code"):
                return element.get("code"), (element.text or fault.findtext("faultstring") or "").strip()
    return (fault.findtext("faultcode") or "Fault").strip(), (fault.findtext("faultstring") or "").strip()


def need(element: etree._Element, path: str, operation: str) -> etree._Element:
    """The child at ``path`` (unqualified names, ``a/b``); a clear ``VendorDown`` naming it if absent."""
    found = element.find(path)
    if found is None:
        raise VendorDown(f"the {operation} answer has no {path} element, which we need")
    return found


def need_text(element: etree._Element, path: str, operation: str) -> str:
    """The text at ``path``: missing or empty is a ``VendorDown`` naming the element."""
    text = (need(element, path, operation).text or "").strip()
    if not text:
        raise VendorDown(f"the {operation} answer has an empty {path} element, which we need")
    return text
