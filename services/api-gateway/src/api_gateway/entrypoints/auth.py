"""Who may call the API: bearer tokens for scripts, a session cookie (with CSRF check) for the UI.

`GET /api/v1/health` (probes carry no secret), `/api/openapi.json` and `/api/docs` (the public
contract, no data) and `POST /api/v1/auth/login` are open; everything else under /api needs one.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from api_gateway.domain.auth import Principal, same_secret
from api_gateway.entrypoints.problems import Forbidden, Unauthorized
from api_gateway.service_layer.access import Access
from servicekit.pagination import Page

SESSION_COOKIE = "pf_session"
CSRF_COOKIE = "pf_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ANONYMOUS = Principal(id="anonymous", name="anonymous", via="anonymous")

Authenticate = Callable[[Request], Awaitable[Principal]]


def authenticator(access: Access, *, disabled: bool) -> Authenticate:
    async def authenticate(request: Request) -> Principal:
        if disabled:
            return ANONYMOUS
        header = request.headers.get("authorization")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("use Authorization: Bearer <token>")
            return await access.authenticate_token(token.strip())
        session = request.cookies.get(SESSION_COOKIE)
        if session:
            principal = await access.authenticate_session(session)
            if request.method not in SAFE_METHODS:
                sent, expected = request.headers.get(CSRF_HEADER, ""), request.cookies.get(CSRF_COOKIE, "")
                if not sent or not expected or not same_secret(sent, expected):
                    raise Forbidden(f"{CSRF_HEADER} header must match the {CSRF_COOKIE} cookie")
            return principal
        raise Unauthorized("authentication required: send Authorization: Bearer <token> or log in")

    return authenticate


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


class LoginReply(BaseModel):
    username: str
    csrf_token: str
    expires_at: datetime


class Me(BaseModel):
    id: str
    name: str
    via: str


class NewToken(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class TokenInfo(BaseModel):
    id: str
    name: str
    hint: str
    created_at: datetime


class IssuedTokenReply(TokenInfo):
    token: str = Field(description="The secret; shown only in this reply.")


def router(access: Access, authenticate: Authenticate, *, cookie_secure: bool, session_seconds: int) -> APIRouter:
    api = APIRouter(prefix="/api/v1/auth", tags=["gateway"])
    Caller = Annotated[Principal, Depends(authenticate)]

    @api.post("/login", response_model=LoginReply)
    async def login(body: LoginRequest, response: Response) -> LoginReply:
        issued = await access.login(body.username, body.password)
        max_age = session_seconds
        response.set_cookie(
            SESSION_COOKIE, issued.secret, max_age=max_age, httponly=True, samesite="strict", secure=cookie_secure
        )
        response.set_cookie(
            CSRF_COOKIE, issued.csrf_token, max_age=max_age, httponly=False, samesite="strict", secure=cookie_secure
        )
        return LoginReply(username=issued.account.username, csrf_token=issued.csrf_token, expires_at=issued.expires_at)

    @api.post("/logout", status_code=204)
    async def logout(request: Request, _: Caller) -> Response:
        session = request.cookies.get(SESSION_COOKIE)
        if session:
            await access.logout(session)
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE)
        response.delete_cookie(CSRF_COOKIE)
        return response

    @api.get("/me", response_model=Me)
    async def me(caller: Caller) -> Me:
        return Me(id=caller.id, name=caller.name, via=caller.via)

    @api.post("/tokens", status_code=201, response_model=IssuedTokenReply)
    async def create_token(body: NewToken, caller: Caller) -> IssuedTokenReply:
        issued = await access.create_token(body.name, caller)
        t = issued.token
        return IssuedTokenReply(id=t.id, name=t.name, hint=t.hint, created_at=t.created_at, token=issued.secret)

    @api.get("/tokens", response_model=Page[TokenInfo])
    async def list_tokens(_: Caller) -> Page[TokenInfo]:
        tokens = await access.list_tokens()
        return Page(items=[TokenInfo(id=t.id, name=t.name, hint=t.hint, created_at=t.created_at) for t in tokens])

    @api.delete("/tokens/{token_id}", status_code=204)
    async def revoke_token(token_id: str, _: Caller) -> Response:
        await access.revoke_token(token_id)
        return Response(status_code=204)

    return api
