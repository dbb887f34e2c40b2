"""A cozy-stack double: the HTTP routes a konnector uses, over the CouchDB-compatible test server.

Built from cozy-stack's source and docs (cozy/cozy-stack): ``web/data/data.go``,
``web/data/replication.go`` and ``web/data/accounts.go`` (the data API),
``web/middlewares/permissions.go``, ``model/permission/{claims,doctype,match}.go`` (tokens
and permissions), ``model/account/{credentials,type,accounts}.go`` (account encryption,
OAuth refresh, soft deletion), ``web/accounts/oauth.go`` (the refresh route) and
``docs/data-system.md``, ``docs/konnectors-workflow.md``. What it does as the stack does:

- a konnector token is a JWT (HS512) with audience ``konn``, subject the slug, issuer
  the instance domain and no ``exp``: it expires 30 minutes after ``iat``
  (``KonnectorTokenValidityDuration``); an expired token is ``400 Expired token`` with
  ``WWW-Authenticate: Bearer error="invalid_token" ...``, no token ``401``;
- permissions are the installed manifest's, per doctype (``*`` and ``prefix.*``
  wildcards) and verb (``ALL`` when none is listed); a refusal is ``403`` with
  ``{"error": "code=403, message=Forbidden"}``; reserved doctypes
  (``io.cozy.accounts.soft_deleted``…) and malformed doctype names are refused too;
- ``_all_docs``, ``_bulk_docs`` and ``_index`` are proxied to CouchDB as they are;
  ``_find`` caps ``limit`` at 1,000 (100 by default) and answers ``{docs, limit, next,
  bookmark}``; create answers ``201 {ok, id, rev, type, data}``, update ``200`` with the
  same shape, delete ``{ok, id, rev, type, deleted}``; a GET answers the document with
  ``_type``;
- accounts: ``auth.password`` is stored as ``auth.credentials_encrypted`` and
  ``secret dob code answer access_token refresh_token appSecret session`` (in ``auth``
  and in ``data.auth``) as ``<name>_encrypted``; a GET with a konnector token decrypts
  them, and re-encrypts (so rewrites) an account found in clear; ``?rev=`` reads the
  soft-deleted copy kept in ``io.cozy.accounts.soft_deleted`` when an account is deleted;
- ``POST /accounts/:type/:id/refresh`` calls the account type's token endpoint with the
  account's refresh token and the application's client id and secret, saves the new
  tokens and answers the account as a JSON:API object; a refused refresh token
  (``invalid_grant``/``invalid_token``) is ``401`` with code ``oauth_refresh_invalid_token``.
  Like the stack, which round-trips the account through its ``Account`` struct, the
  refresh keeps only the fields that struct knows.

Encryption uses Fernet rather than the stack's NaCl boxes: only the stored shape matters
to a konnector, which never sees the ciphertext's format.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import jwt
import requests
import uvicorn
from cryptography.fernet import Fernet
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

AUDIENCE = "konn"
TOKEN_VALIDITY = 30 * 60
"""``consts.KonnectorTokenValidityDuration``."""
EXPIRED_CHALLENGE = 'Bearer error="invalid_token" error_description="The access token expired"'
MAX_FIND_LIMIT = 1000
"""``consts.MaxItemsPerPageForMango``."""
ACCOUNTS = "io.cozy.accounts"
SOFT_DELETED = "io.cozy.accounts.soft_deleted"
RESERVED = {SOFT_DELETED, "io.cozy.account_types", "io.cozy.permissions", "io.cozy.sessions", "io.cozy.jobs.events"}
"""Some of ``model/permission/doctype.go``'s block list: never reachable through ``/data``."""
WRITE_RESERVED = {"io.cozy.jobs", "io.cozy.triggers", "io.cozy.apps", "io.cozy.konnectors", "io.cozy.files"}
"""Readable, but only the stack writes them."""
ENCRYPTED_NAMES = ("secret", "dob", "code", "answer", "access_token", "refresh_token", "appSecret", "session")
ACCOUNT_FIELDS = frozenset(
    (
        "_id",
        "_rev",
        "relationships",
        "cozyMetadata",
        "account_type",
        "name",
        "folderPath",
        "defaultFolderPath",
        "identifier",
        "auth",
        "oauth",
        "oauth_callback_results",
        "data",
        "state",
        "twoFACode",
        "mutedErrors",
        "token",
        "user_id",
        "manual_cleaning",
    )
)
"""``model/account.Account``'s JSON fields: what survives a refresh."""
BASIC_FIELDS = frozenset(
    (
        "login",
        "email",
        "identifier",
        "new_identifier",
        "accountName",
        "password",
        "credentials_encrypted",
        "token",
    )
)
OAUTH_FIELDS = ["access_token", "token_type", "expires_at", "refresh_token", "client_id", "client_secret", "query"]
_DOCTYPE_NAME = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")


class StackError(Exception):
    """An error answer: status and body, as ``couchdbStyleErrorHandler`` writes it."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(body)
        self.status, self.body, self.headers = status, body, headers or {}


def _http_error(status: int, message: str) -> StackError:
    """An ``echo.HTTPError`` as the data API's error handler renders it."""
    return StackError(status, {"error": f"code={status}, message={message}"})


FORBIDDEN = 403


@dataclass
class AccountType:
    """An ``io.cozy.account_types`` document (the application's OAuth registration)."""

    id: str
    token_endpoint: str
    client_id: str
    client_secret: str
    token_mode: str = "form"
    """``form`` (client id and secret in the body) or ``basic`` (HTTP Basic)."""


@dataclass
class Call:
    method: str
    path: str
    status: int
    slug: str | None = None
    query: str = ""


@dataclass
class StackDouble:
    """One instance (``alice.cozy.localhost``) of a cozy-stack, on a free loopback port.

    ``install(manifest)`` installs a konnector (its permissions), ``token(slug)`` gives
    what ``COZY_CREDENTIALS`` holds, ``create_account``/``delete_account`` act as the
    Home and the stack do around a job. ``calls`` records every request answered.
    """

    couchdb_url: str
    prefix: str
    domain: str = "alice.cozy.localhost"
    ca_bundle: str | None = None
    """A CA the refresh route trusts when calling a provider sandbox over HTTPS."""
    manifests: dict[str, dict[str, Any]] = field(default_factory=dict)
    account_types: dict[str, AccountType] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._secret = secrets.token_bytes(64)
        self._fernet = Fernet(Fernet.generate_key())
        parts = urlsplit(self.couchdb_url)
        self._couch = requests.Session()
        if parts.username:
            self._couch.auth = (parts.username, parts.password or "")
        netloc = f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname or ""
        self._couch_base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # lifecycle

    def start(self) -> StackDouble:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        config = uvicorn.Config(self.app(), log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the stack double did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server:
            self._server.should_exit = True
        if self._thread:
            self._thread.join(10)
        self._couch.close()

    def __enter__(self) -> StackDouble:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # what the Home, the admin and the stack itself do

    def install(self, manifest: dict[str, Any]) -> None:
        """Install a konnector: its manifest's permissions become its token's."""
        for permission in manifest.get("permissions", {}).values():
            doctype = permission["type"]
            if doctype not in ("*",) and not _DOCTYPE_NAME.match(doctype.removesuffix(".*")):
                raise ValueError(f"manifest of {manifest['slug']}: {doctype} is not a valid doctype name")
        self.manifests[manifest["slug"]] = manifest

    def token(self, slug: str, issued_at: float | None = None) -> str:
        """A konnector token as ``BuildKonnectorToken`` makes it."""
        claims = {"aud": [AUDIENCE], "iss": self.domain, "iat": int(issued_at or time.time()), "sub": slug}
        return jwt.encode(claims, self._secret, algorithm="HS512")

    def create_account(self, doc: dict[str, Any]) -> dict[str, Any]:
        """``POST /data/io.cozy.accounts`` as the Home does (credentials encrypted); the stored doc."""
        doc = {"_id": doc.get("_id") or uuid.uuid4().hex, **doc}
        self._encrypt_account(doc)
        self._ensure_db(ACCOUNTS)
        result = self._couch_json("POST", f"{self._db(ACCOUNTS)}/_bulk_docs", json={"docs": [doc]})[0]
        if "error" in result:
            raise StackError(409, result)
        return {**doc, "_rev": result["rev"]}

    def replace_account(self, doc: dict[str, Any]) -> str:
        """The Home saving an edited account (``PUT /data/io.cozy.accounts/:id``, encrypted); its new rev."""
        doc = dict(doc)
        self._encrypt_account(doc)
        return self._couch_json("PUT", f"{self._db(ACCOUNTS)}/{quote(doc['_id'], safe='')}", json=doc)["rev"]

    def delete_account(self, account_id: str) -> str:
        """Delete an account as the stack does: soft-deleted copy first; the revision the on-delete job gets."""
        doc = self._couch_json("GET", f"{self._db(ACCOUNTS)}/{quote(account_id, safe='')}")
        copy = {k: v for k, v in doc.items() if k != "_rev"}
        copy["soft_deleted_rev"] = doc["_rev"]
        self._ensure_db(SOFT_DELETED)
        self._couch_json("POST", f"{self._db(SOFT_DELETED)}/_bulk_docs", json={"docs": [copy]})
        self._couch_json("POST", f"{self._db(ACCOUNTS)}/_bulk_docs", json={"docs": [{**doc, "_deleted": True}]})
        return doc["_rev"]

    def stored(self, doctype: str, doc_id: str) -> dict[str, Any] | None:
        """A document as CouchDB holds it (what the stack wrote, encrypted fields and all)."""
        response = self._couch.get(f"{self._couch_base}/{self._db(doctype)}/{quote(doc_id, safe='')}", timeout=10)
        return response.json() if response.status_code == 200 else None

    def delete_stored(self, doctype: str, doc: dict[str, Any]) -> None:
        """Delete a document as the stack does internally (``couchdb.DeleteDoc``)."""
        path = f"{self._db(doctype)}/{quote(doc['_id'], safe='')}"
        self._couch_json("DELETE", path, params={"rev": doc["_rev"]})

    def all_docs(self, doctype: str) -> Iterator[dict[str, Any]]:
        """Every live document of a doctype, design documents aside."""
        response = self._couch.get(
            f"{self._couch_base}/{self._db(doctype)}/_all_docs", params={"include_docs": "true"}, timeout=30
        )
        if response.status_code == 404:
            return iter(())
        return (row["doc"] for row in response.json()["rows"] if not row["id"].startswith("_design/"))

    # the HTTP application

    def app(self) -> Starlette:
        routes = [
            Route("/data/{doctype}/_all_docs", self._all_docs, methods=["GET", "POST"]),
            Route("/data/{doctype}/_bulk_docs", self._bulk_docs, methods=["POST"]),
            Route("/data/{doctype}/_find", self._find, methods=["POST"]),
            Route("/data/{doctype}/_index", self._index, methods=["POST"]),
            Route("/data/{doctype}/_design_docs", self._design_docs, methods=["GET"]),
            Route("/data/{doctype}/", self._create, methods=["POST"]),
            Route("/data/{doctype}/{docid:path}", self._get, methods=["GET"]),
            Route("/data/{doctype}/{docid:path}", self._put, methods=["PUT"]),
            Route("/data/{doctype}/{docid:path}", self._delete, methods=["DELETE"]),
            Route("/accounts/{account_type}/{account_id}/refresh", self._refresh, methods=["POST"]),
        ]
        return Starlette(routes=routes)

    def _handler(function):
        """Run a route: authenticate, call, turn :class:`StackError` into its answer, record the call."""

        async def route(self: StackDouble, request: Request) -> Response:
            slug = None
            try:
                slug = self._authenticate(request)
                status, body = await function(self, request, slug)
                response: Response = JSONResponse(body, status)
            except StackError as error:
                response = JSONResponse(error.body, error.status, headers=error.headers)
            self.calls.append(Call(request.method, request.url.path, response.status_code, slug, request.url.query))
            return response

        return route

    # authentication and permissions

    def _authenticate(self, request: Request) -> str:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            raise _http_error(401, "No token in request")
        try:
            claims = jwt.decode(
                header[7:], self._secret, algorithms=["HS512"], options={"verify_aud": False, "verify_iat": False}
            )
        except jwt.PyJWTError:
            raise _http_error(400, "Invalid JWT token") from None
        audience = claims.get("aud")
        if audience != [AUDIENCE] and audience != AUDIENCE:
            raise _http_error(400, "Invalid JWT token")
        if claims.get("iss") != self.domain:
            raise _http_error(400, "Invalid JWT token")
        if claims.get("iat", 0) + TOKEN_VALIDITY < time.time():
            error = _http_error(400, "Expired token")
            error.headers["WWW-Authenticate"] = EXPIRED_CHALLENGE
            raise error
        if claims.get("sub") not in self.manifests:
            raise _http_error(400, "Invalid JWT token")
        return claims["sub"]

    def _allow(self, slug: str, verb: str, doctype: str) -> None:
        """``AllowWholeType``: some rule of the konnector's permissions covers the doctype and verb."""
        for permission in self.manifests[slug].get("permissions", {}).values():
            rule_type = permission["type"]
            covers = rule_type in (doctype, "*") or (
                rule_type.endswith(".*") and (doctype + ".").startswith(rule_type[:-1])
            )
            verbs = permission.get("verbs") or ["ALL"]
            if covers and ("ALL" in verbs or verb in verbs):
                return
        raise _http_error(FORBIDDEN, "Forbidden")

    @staticmethod
    def _check_doctype(doctype: str, write: bool) -> None:
        """``CheckReadable``/``CheckWritable``: a valid name, not a reserved doctype."""
        if not _DOCTYPE_NAME.match(doctype):
            raise _http_error(FORBIDDEN, f"{doctype} is not a valid doctype name")
        if doctype in RESERVED or (write and doctype in WRITE_RESERVED):
            raise _http_error(FORBIDDEN, f"reserved doctype {doctype} {'unwritable' if write else 'unreadable'}")

    # CouchDB

    def _db(self, doctype: str) -> str:
        return quote(self.prefix + doctype.replace(".", "-"), safe="")

    def _ensure_db(self, doctype: str) -> None:
        self._couch.put(f"{self._couch_base}/{self._db(doctype)}", timeout=10)

    def _couch_json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._couch.request(method, f"{self._couch_base}/{path}", timeout=60, **kwargs)
        if response.status_code >= 400:
            raise StackError(response.status_code, _couch_error(response))
        return response.json()

    async def _proxy(self, request: Request, doctype: str, path: str) -> tuple[int, Any]:
        """Forward to CouchDB as ``couchdb.Proxy`` does: same query, same body, CouchDB's answer."""
        body = await request.body()
        url = f"{self._couch_base}/{self._db(doctype)}/{path}"

        def send() -> requests.Response:
            return self._couch.request(
                request.method,
                url,
                params=list(request.query_params.multi_items()),
                data=body or None,
                headers={"Content-Type": "application/json", "Accept": "application/json"},
                timeout=60,
            )

        response = await run_in_threadpool(send)
        return response.status_code, response.json()

    async def _couch_async(self, method: str, path: str, **kwargs: Any) -> Any:
        return await run_in_threadpool(self._couch_json, method, path, **kwargs)

    # routes

    @_handler
    async def _all_docs(self, request: Request, slug: str) -> tuple[int, Any]:
        doctype = request.path_params["doctype"]
        self._check_doctype(doctype, write=False)
        self._allow(slug, "GET", doctype)
        return await self._proxy(request, doctype, "_all_docs")

    @_handler
    async def _design_docs(self, request: Request, slug: str) -> tuple[int, Any]:
        """``GET /data/:doctype/_design_docs``, proxied to CouchDB's ``_design_docs`` (which
        pouchdb-server lacks: the design-document range of ``_all_docs`` answers the same)."""
        doctype = request.path_params["doctype"]
        self._check_doctype(doctype, write=False)
        self._allow(slug, "GET", doctype)
        params = {**dict(request.query_params), "startkey": '"_design/"', "endkey": '"_design0"'}
        response = await run_in_threadpool(
            self._couch.get, f"{self._couch_base}/{self._db(doctype)}/_all_docs", params=params, timeout=60
        )
        return response.status_code, response.json()

    @_handler
    async def _bulk_docs(self, request: Request, slug: str) -> tuple[int, Any]:
        doctype = request.path_params["doctype"]
        self._allow(slug, "POST", doctype)
        self._check_doctype(doctype, write=True)
        await run_in_threadpool(self._ensure_db, doctype)
        return await self._proxy(request, doctype, "_bulk_docs")

    @_handler
    async def _index(self, request: Request, slug: str) -> tuple[int, Any]:
        doctype = request.path_params["doctype"]
        self._check_doctype(doctype, write=False)
        self._allow(slug, "GET", doctype)
        await run_in_threadpool(self._ensure_db, doctype)
        return await self._proxy(request, doctype, "_index")

    @_handler
    async def _find(self, request: Request, slug: str) -> tuple[int, Any]:
        doctype = request.path_params["doctype"]
        query = await _json_body(request)
        self._check_doctype(doctype, write=False)
        self._allow(slug, "GET", doctype)
        limit = query.get("limit")
        if not isinstance(limit, int | float) or isinstance(limit, bool) or limit > MAX_FIND_LIMIT:
            limit = 100
        query["limit"] = limit
        answer = await self._couch_async("POST", f"{self._db(doctype)}/_find", json=query)
        docs = answer.get("docs", [])
        out = {"docs": docs, "limit": limit, "next": len(docs) >= limit, "bookmark": answer.get("bookmark", "")}
        if answer.get("warning"):
            out["warning"] = answer["warning"]
        return 200, out

    @_handler
    async def _get(self, request: Request, slug: str) -> tuple[int, Any]:
        doctype, doc_id = request.path_params["doctype"], request.path_params["docid"]
        if doctype == ACCOUNTS:
            return 200, await run_in_threadpool(self._get_account, slug, doc_id, request.query_params.get("rev"))
        self._check_doctype(doctype, write=False)
        self._allow(slug, "GET", doctype)
        doc = await self._couch_async("GET", f"{self._db(doctype)}/{quote(doc_id, safe='')}")
        return 200, {**doc, "_type": doctype}

    def _get_account(self, slug: str, doc_id: str, rev: str | None) -> dict[str, Any]:
        path = f"{self._db(ACCOUNTS)}/{quote(doc_id, safe='')}"
        doc = None
        if rev:
            try:
                copy = self._couch_json("GET", f"{self._db(SOFT_DELETED)}/{quote(doc_id, safe='')}")
                doc = copy if copy.get("soft_deleted_rev") == rev else None
            except StackError:
                doc = None
            if doc is None:
                doc = self._couch_json("GET", path, params={"rev": rev})
        else:
            doc = self._couch_json("GET", path)
        self._allow(slug, "GET", ACCOUNTS)
        if not rev and self._encrypt_account(doc):
            doc["_rev"] = self._couch_json("PUT", path, json=doc)["rev"]
        self._decrypt_account(doc)
        return {**doc, "_type": ACCOUNTS}

    @_handler
    async def _create(self, request: Request, slug: str) -> tuple[int, Any]:
        doctype = request.path_params["doctype"]
        doc = await _json_body(request)
        if doctype != ACCOUNTS:
            self._check_doctype(doctype, write=True)
        self._allow(slug, "POST", doctype)
        if doctype == ACCOUNTS:
            self._encrypt_account(doc)
            doc["cozyMetadata"] = _metadata_from_claims(slug)
        doc.pop("_id", None)
        doc.pop("_rev", None)
        doc["_id"] = uuid.uuid4().hex
        return 201, await run_in_threadpool(self._write_new, doctype, doc)

    def _write_new(self, doctype: str, doc: dict[str, Any]) -> dict[str, Any]:
        self._ensure_db(doctype)
        answer = self._couch_json("PUT", f"{self._db(doctype)}/{quote(doc['_id'], safe='')}", json=doc)
        doc["_rev"] = answer["rev"]
        return {"ok": True, "id": doc["_id"], "rev": answer["rev"], "type": doctype, "data": {**doc, "_type": doctype}}

    @_handler
    async def _put(self, request: Request, slug: str) -> tuple[int, Any]:
        doctype, doc_id = request.path_params["doctype"], request.path_params["docid"]
        doc = await _json_body(request)
        doc.pop("_type", None)  # JSONDoc.UnmarshalJSON takes it out of the body
        if doctype != ACCOUNTS:
            self._check_doctype(doctype, write=True)
        if bool(doc.get("_id")) != bool(doc.get("_rev")):
            raise _http_error(
                400,
                "You must either provide an _id and _rev in document (update) or neither (create with fixed id).",
            )
        if doc.get("_id") and doc["_id"] != doc_id:
            raise _http_error(400, "document _id doesnt match url")
        if not doc.get("_id"):
            doc["_id"] = doc_id
            self._allow(slug, "POST", doctype)
            if doctype == ACCOUNTS:
                self._encrypt_account(doc)
            return 200, await run_in_threadpool(self._write_new, doctype, doc)
        self._allow(slug, "PUT", doctype)
        if doctype == ACCOUNTS:
            self._encrypt_account(doc)
            doc.setdefault("cozyMetadata", _metadata_from_claims(slug))
        answer = await self._couch_async("PUT", f"{self._db(doctype)}/{quote(doc_id, safe='')}", json=doc)
        doc["_rev"] = answer["rev"]
        if doctype == ACCOUNTS:
            self._decrypt_account(doc)
        return 200, {"ok": True, "id": doc_id, "rev": answer["rev"], "type": doctype, "data": {**doc, "_type": doctype}}

    @_handler
    async def _delete(self, request: Request, slug: str) -> tuple[int, Any]:
        doctype, doc_id = request.path_params["doctype"], request.path_params["docid"]
        header, query = request.headers.get("if-match", ""), request.query_params.get("rev", "")
        if header and query and header != query:
            raise _http_error(400, "If-Match Header and rev query parameters mismatch")
        rev = header or query
        if not rev:
            raise _http_error(400, "delete without revision")
        self._check_doctype(doctype, write=True)
        path = f"{self._db(doctype)}/{quote(doc_id, safe='')}"
        await self._couch_async("GET", path)
        self._allow(slug, "DELETE", doctype)
        answer = await self._couch_async("DELETE", path, params={"rev": rev})
        return 200, {"ok": True, "id": doc_id, "rev": answer["rev"], "type": doctype, "deleted": True}

    @_handler
    async def _refresh(self, request: Request, slug: str) -> tuple[int, Any]:
        account_id = request.path_params["account_id"]
        return 200, await run_in_threadpool(self._refresh_account, slug, account_id)

    def _refresh_account(self, slug: str, account_id: str) -> dict[str, Any]:
        path = f"{self._db(ACCOUNTS)}/{quote(account_id, safe='')}"
        stored = self._couch_json("GET", path)
        self._allow(slug, "GET", ACCOUNTS)
        account = _as_account_struct(stored)
        account_type = self.account_types.get(account.get("account_type", ""))
        if account_type is None:
            raise StackError(404, {"error": "not_found", "reason": "account type not found"})
        oauth = account.get("oauth")
        if not oauth:
            raise StackError(500, {"error": "this account cannot be refreshed"})
        if not oauth.get("refresh_token"):
            oauth["client_id"], oauth["client_secret"] = account_type.client_id, account_type.client_secret
        else:
            oauth.update(self._token_refresh(account_type, oauth["refresh_token"]))
        account["_rev"] = self._couch_json("PUT", path, json=account)["rev"]
        attributes = {k: v for k, v in account.items() if k not in ("_id", "_rev")}
        return {
            "data": {
                "type": ACCOUNTS,
                "id": account_id,
                "attributes": attributes,
                "meta": {"rev": account["_rev"]},
                "links": {"self": f"/data/{ACCOUNTS}/{account_id}"},
            }
        }

    def _token_refresh(self, account_type: AccountType, refresh_token: str) -> dict[str, Any]:
        """``AccountType.RefreshAccount``: the provider's token endpoint, form or Basic auth."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        auth = None
        if account_type.token_mode == "basic":
            auth = (account_type.client_id, account_type.client_secret)
        else:
            form.update(client_id=account_type.client_id, client_secret=account_type.client_secret)
        response = requests.post(
            account_type.token_endpoint,
            data=form,
            auth=auth,
            headers={"Accept": "application/json"},
            timeout=30,
            verify=self.ca_bundle or True,
        )
        try:
            answer = response.json()
        except ValueError:
            raise StackError(500, {"error": f"oauth service responded with status {response.status_code}"}) from None
        if response.status_code != 200:
            if answer.get("error") in ("invalid_grant", "invalid_token"):
                raise StackError(
                    401,
                    {
                        "errors": [
                            {
                                "status": "401",
                                "title": "Unauthorized",
                                "code": "oauth_refresh_invalid_token",
                                "detail": "OAuth refresh token is invalid or expired; reconnect account.",
                            }
                        ]
                    },
                )
            raise StackError(500, {"error": f"oauth service responded with status {response.status_code}"})
        changes: dict[str, Any] = {}
        if answer.get("access_token"):
            changes["access_token"] = answer["access_token"]
        if answer.get("expires_in"):
            expires = time.time() + float(answer["expires_in"])
            changes["expires_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))
        if answer.get("refresh_token"):
            changes["refresh_token"] = answer["refresh_token"]
        return changes

    # account encryption (model/account/credentials.go)

    def _encrypt_account(self, doc: dict[str, Any]) -> bool:
        """Encrypt in place as ``encryptMap``: ``auth``, then ``data.auth``; True if anything was."""
        auth = doc.get("auth")
        if not isinstance(auth, dict):
            return False
        encrypted = False
        cloned: dict[str, Any] = {}
        for key, value in auth.items():
            if key == "password":
                login = auth.get("login", "")
                cloned["credentials_encrypted"] = self._seal([login, value])
                encrypted = True
            elif key in ENCRYPTED_NAMES:
                cloned[f"{key}_encrypted"] = self._seal(value)
                encrypted = True
            else:
                cloned.setdefault(key, value)
        doc["auth"] = cloned
        data = doc.get("data")
        if isinstance(data, dict) and self._encrypt_account(data):
            encrypted = True
        return encrypted

    def _decrypt_account(self, doc: dict[str, Any]) -> None:
        auth = doc.get("auth")
        if not isinstance(auth, dict):
            return
        cloned: dict[str, Any] = {}
        for key, value in auth.items():
            if not key.endswith("_encrypted") or not isinstance(value, str):
                cloned[key] = value
            elif key == "credentials_encrypted":
                cloned["login"], cloned["password"] = self._open(value)
            else:
                cloned[key.removesuffix("_encrypted")] = self._open(value)
        doc["auth"] = cloned
        if isinstance(doc.get("data"), dict):
            self._decrypt_account(doc["data"])

    def _seal(self, value: Any) -> str:
        return self._fernet.encrypt(json.dumps(value).encode()).decode()

    def _open(self, token: str) -> Any:
        return json.loads(self._fernet.decrypt(token.encode()))


def _couch_error(response: requests.Response) -> dict[str, Any]:
    """``couchdb.Error.JSON()``: how the stack renders a CouchDB error it got through its own client."""
    try:
        body = response.json()
    except ValueError:
        body = {"error": "wrong_json", "reason": response.text[:200]}
    reason = body.get("reason") or body.get("message") or ""
    return {"ok": False, "status": str(response.status_code), "error": body.get("error"), "reason": reason}


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise _http_error(400, str(exc)) from None
    if not isinstance(body, dict):
        raise _http_error(400, "json: cannot unmarshal into a document")
    return body


def _metadata_from_claims(slug: str) -> dict[str, Any]:
    """``CozyMetadataFromClaims``: the konnector's slug as creator and updater."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "doctypeVersion": "",
        "metadataVersion": 1,
        "createdAt": now,
        "createdByApp": slug,
        "updatedAt": now,
        "updatedByApps": [{"slug": slug, "date": now}],
    }


def _as_account_struct(doc: dict[str, Any]) -> dict[str, Any]:
    """The account after a round trip through ``model/account.Account``: unknown fields dropped."""
    account = {k: v for k, v in doc.items() if k in ACCOUNT_FIELDS}
    if isinstance(account.get("auth"), dict):
        account["auth"] = {k: v for k, v in account["auth"].items() if k in BASIC_FIELDS}
    if isinstance(account.get("oauth"), dict):
        account["oauth"] = {k: v for k, v in account["oauth"].items() if k in OAUTH_FIELDS}
    return account
