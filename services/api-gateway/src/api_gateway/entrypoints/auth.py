"""Who may call the API, and the gateway's own account endpoints (login, passwords, tokens, users).

Bearer tokens are for scripts, a session cookie (with a CSRF check) for the UI. `GET /api/v1/health`
(probes carry no secret), `/api/openapi.json` and `/api/docs` (the public contract, no data) and
`POST /api/v1/auth/login` are open; everything else under /api needs a credential whose role the
policy in `domain/permissions.py` allows for that method and path.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import AwareDatetime, BaseModel, Field

from api_gateway.domain import commands
from api_gateway.domain.auth import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    USERNAME,
    Account,
    ApiToken,
    Principal,
    Role,
    same_secret,
)
from api_gateway.domain.permissions import SAFE_METHODS, required_role
from api_gateway.entrypoints.problems import Forbidden, Unauthorized
from api_gateway.service_layer import handlers, views
from api_gateway.service_layer.handlers import Deps
from api_gateway.service_layer.unit_of_work import GatewayUnitOfWork
from servicekit.documented import documented
from servicekit.pagination import Page

SESSION_COOKIE = "pf_session"
CSRF_COOKIE = "pf_csrf"
CSRF_HEADER = "X-CSRF-Token"
ANONYMOUS = Principal(id="anonymous", name="anonymous", via="anonymous", role=Role.ADMIN, credential="anonymous")

Authenticate = Callable[[Request], Awaitable[Principal]]
UowFactory = Callable[[], GatewayUnitOfWork]


def authenticator(uow_factory: UowFactory, deps: Deps, *, disabled: bool) -> Authenticate:
    """The caller of a request and whether its role may make it (403 problem otherwise)."""

    async def identify(request: Request) -> Principal:
        if disabled:
            return ANONYMOUS
        header = request.headers.get("authorization")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("use Authorization: Bearer <token>")
            return await views.principal_for_token(token.strip(), uow_factory(), deps)
        session = request.cookies.get(SESSION_COOKIE)
        if session:
            principal = await views.principal_for_session(session, uow_factory(), deps)
            if request.method not in SAFE_METHODS:
                sent, expected = request.headers.get(CSRF_HEADER, ""), request.cookies.get(CSRF_COOKIE, "")
                if not sent or not expected or not same_secret(sent, expected):
                    raise Forbidden(f"{CSRF_HEADER} header must match the {CSRF_COOKIE} cookie")
            return principal
        raise Unauthorized("authentication required: send Authorization: Bearer <token> or log in")

    async def authenticate(request: Request) -> Principal:
        principal = await identify(request)
        needed = required_role(request.method, request.url.path)
        if not principal.role.allows(needed):
            raise Forbidden(
                f"{request.method} {request.url.path} needs the {needed.value} role; "
                f"this credential has the {principal.role.value} role",
                extra={"required_role": needed.value, "role": principal.role.value},
            )
        return principal

    return authenticate


# --- bodies ------------------------------------------------------------------------------------------


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class LoginReply(BaseModel):
    username: str
    role: Role
    csrf_token: str
    expires_at: datetime


class Me(BaseModel):
    id: str
    name: str
    via: str
    role: Role = Field(description="viewer (reads), operator (runs the farm), admin (also printers, users, tokens)")
    expires_at: datetime | None = Field(None, description="When this credential stops working by itself.")


NEW_PASSWORD = documented(minLength=MIN_PASSWORD_LENGTH)
"""`password_problem`'s length rule in the OpenAPI document (its own message stays the one a client sees)."""


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)
    new_password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH, json_schema_extra=NEW_PASSWORD)


class NewToken(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: Role | None = Field(None, description="At most the creator's role; the creator's role when absent.")
    expires_at: AwareDatetime | None = Field(
        None, description="When the token stops working; 90 days from now when absent, at most 365 days."
    )


class TokenInfo(BaseModel):
    id: str
    name: str
    hint: str
    role: Role
    owner_id: str | None = Field(description="The account that created it; null for one made with API_TOKEN.")
    created_at: datetime
    expires_at: datetime | None


class IssuedTokenReply(TokenInfo):
    token: str = Field(description="The secret; shown only in this reply.")


class User(BaseModel):
    id: str
    username: str
    role: Role
    disabled: bool
    created_at: datetime
    password_changed_at: datetime | None


class NewUserRequest(BaseModel):
    username: str = Field(min_length=1, max_length=128, json_schema_extra=documented(pattern=USERNAME.pattern))
    role: Role = Role.VIEWER
    password: str | None = Field(
        None,
        max_length=MAX_PASSWORD_LENGTH,
        description="Generated (and returned once) when absent.",
        json_schema_extra=NEW_PASSWORD,
    )


class CreatedUser(User):
    password: str | None = Field(description="The generated first password, only when none was given.")


class UserChange(BaseModel):
    role: Role | None = None
    disabled: bool | None = Field(None, description="A disabled account's sessions, tokens and streams end.")


class PasswordReset(BaseModel):
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH, json_schema_extra=NEW_PASSWORD)


def _token_info(t: ApiToken) -> TokenInfo:
    return TokenInfo(
        id=t.id, name=t.name, hint=t.hint, role=t.role, owner_id=t.account_id, created_at=t.created_at,
        expires_at=t.expires_at,
    )


def _user(a: Account) -> User:
    return User(
        id=a.id, username=a.username, role=a.role, disabled=not a.active, created_at=a.created_at,
        password_changed_at=a.password_changed_at,
    )


def client_address(request: Request) -> str | None:
    """The peer as the server resolved it (uvicorn applies X-Forwarded-For only from FORWARDED_ALLOW_IPS)."""
    return request.client.host if request.client else None


# --- routes ------------------------------------------------------------------------------------------


def router(
    uow_factory: UowFactory, deps: Deps, authenticate: Authenticate, *, cookie_secure: bool, session_seconds: int
) -> APIRouter:
    api = APIRouter(prefix="/api/v1/auth", tags=["gateway: access"])
    Caller = Annotated[Principal, Depends(authenticate)]

    @api.post(
        "/login",
        response_model=LoginReply,
        responses={401: {"description": "Wrong username or password"},
                   429: {"description": "Too many failed logins for this user or address (Retry-After)"},
                   503: {"description": "Every password-hashing slot is busy (Retry-After)"}},
    )
    async def login(body: LoginRequest, request: Request, response: Response) -> LoginReply:
        """Open. Sets the `pf_session` (HttpOnly) and `pf_csrf` cookies."""
        cmd = commands.Login(body.username, body.password, client_address(request))
        issued = await handlers.login(cmd, uow_factory(), deps)
        max_age = session_seconds
        response.set_cookie(
            SESSION_COOKIE, issued.secret, max_age=max_age, httponly=True, samesite="strict", secure=cookie_secure
        )
        response.set_cookie(
            CSRF_COOKIE, issued.csrf_token, max_age=max_age, httponly=False, samesite="strict", secure=cookie_secure
        )
        return LoginReply(
            username=issued.account.username, role=issued.account.role, csrf_token=issued.csrf_token,
            expires_at=issued.expires_at,
        )

    @api.post("/logout", status_code=204)
    async def logout(request: Request, _: Caller) -> Response:
        """Ends the session (and any event stream it holds open)."""
        session = request.cookies.get(SESSION_COOKIE)
        if session:
            await handlers.logout(commands.Logout(session), uow_factory(), deps)
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, secure=cookie_secure, httponly=True, samesite="strict")
        response.delete_cookie(CSRF_COOKIE, secure=cookie_secure, samesite="strict")
        return response

    @api.get("/me", response_model=Me)
    async def me(caller: Caller) -> Me:
        return Me(id=caller.id, name=caller.name, via=caller.via, role=caller.role, expires_at=caller.expires_at)

    @api.post("/password", status_code=204)
    async def change_password(body: PasswordChange, caller: Caller) -> Response:
        """Your own password. Your other sessions end; the first-admin file goes once its password changed."""
        cmd = commands.ChangeOwnPassword(caller, body.current_password, body.new_password)
        await handlers.change_own_password(cmd, uow_factory(), deps)
        return Response(status_code=204)

    @api.post("/tokens", status_code=201, response_model=IssuedTokenReply)
    async def create_token(body: NewToken, caller: Caller) -> IssuedTokenReply:
        """A token with a role no higher than yours and an expiry."""
        cmd = commands.CreateToken(caller, body.name, body.role, body.expires_at)
        issued = await handlers.create_token(cmd, uow_factory(), deps)
        return IssuedTokenReply(**_token_info(issued.token).model_dump(), token=issued.secret)

    @api.get("/tokens", response_model=Page[TokenInfo])
    async def list_tokens(caller: Caller) -> Page[TokenInfo]:
        """Your tokens; an admin sees all of them."""
        return Page(items=[_token_info(t) for t in await views.tokens(caller, uow_factory())])

    @api.delete("/tokens/{token_id}", status_code=204)
    async def revoke_token(token_id: str, caller: Caller) -> Response:
        """Your own token, or any token for an admin. Streams it holds open are closed."""
        await handlers.revoke_token(commands.RevokeToken(caller, token_id), uow_factory(), deps)
        return Response(status_code=204)

    return api


def users_router(uow_factory: UowFactory, deps: Deps, authenticate: Authenticate) -> APIRouter:
    api = APIRouter(prefix="/api/v1/users", tags=["gateway: access"])
    Caller = Annotated[Principal, Depends(authenticate)]

    @api.get("", response_model=Page[User])
    async def list_users(caller: Caller) -> Page[User]:
        """Admins only, like every /users route."""
        return Page(items=[_user(a) for a in await views.users(caller, uow_factory())])

    @api.post("", status_code=201, response_model=CreatedUser)
    async def create_user(body: NewUserRequest, caller: Caller, response: Response) -> CreatedUser:
        """Invite someone: the account exists at once; without a password one is generated and shown once."""
        cmd = commands.CreateUser(caller, body.username, body.role, body.password)
        created = await handlers.create_user(cmd, uow_factory(), deps)
        response.headers["Location"] = f"/api/v1/users/{created.account.id}"
        return CreatedUser(**_user(created.account).model_dump(), password=created.password)

    @api.get("/{user_id}", response_model=User)
    async def get_user(user_id: str, caller: Caller) -> User:
        return _user(await views.user(caller, user_id, uow_factory()))

    @api.patch("/{user_id}", response_model=User)
    async def update_user(user_id: str, body: UserChange, caller: Caller) -> User:
        """Role and disabled. The last active admin can be neither demoted nor disabled (409)."""
        cmd = commands.UpdateUser(caller, user_id, role=body.role, disabled=body.disabled)
        return _user(await handlers.update_user(cmd, uow_factory(), deps))

    @api.post("/{user_id}/password", status_code=204)
    async def reset_password(user_id: str, body: PasswordReset, caller: Caller) -> Response:
        """Set someone's password (e.g. a forgotten one); all their sessions end."""
        await handlers.set_user_password(commands.SetUserPassword(caller, user_id, body.password), uow_factory(), deps)
        return Response(status_code=204)

    return api
