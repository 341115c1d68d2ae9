"""Bearer-token authentication and role checks; every request gets the caller's organisation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from healthsec.share.taxii_auth import SignInRefused, Throttle
from healthsec.store import Store
from healthsec.store.auth import AuthStore, Role, TokenInfo

bearer = HTTPBearer(auto_error=False, description="API token from `healthsec admin create-token`")

READ_ROLES = (Role.ADMIN, Role.ANALYST, Role.AUDITOR)
TRIAGE_ROLES = (Role.ADMIN, Role.ANALYST)
INGEST_ROLES = (Role.ADMIN, Role.SENSOR)
SHARING_ROLES = (Role.ADMIN, Role.ANALYST, Role.PARTNER)
ADMIN_ROLES = (Role.ADMIN,)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token id (used as the audit actor), its organisation and role."""

    token_id: str
    org: str
    role: Role
    name: str

    @property
    def actor(self) -> str:
        return f"token:{self.token_id}"


def _unauthorised(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


class TokenGate:
    """Bearer tokens checked under the TAXII sign-in's :class:`Throttle`: after repeated failures a client
    address, or a token id, waits (429 with Retry-After) and no lookup is made for it meanwhile."""

    def __init__(self, throttle: Throttle | None = None) -> None:
        self.throttle = throttle or Throttle()

    def verify(self, auth: AuthStore, token: str, client: str) -> TokenInfo:
        """The active token's record; SignInRefused (``retry_after`` set when throttled) otherwise."""
        token_id = token.strip().removeprefix("hst_").split(".", 1)[0][:16] or "-"
        self.throttle.admit(client, token_id)
        info = auth.verify(token)
        self.throttle.outcome(client, token_id, info is not None)
        if info is None:
            raise SignInRefused("invalid, expired or revoked token")
        return info


def refusal(exc: SignInRefused) -> HTTPException:
    """A refused sign-in as the HTTP error: 429 with Retry-After while throttled, else 401."""
    if exc.retry_after is not None:
        return HTTPException(429, detail=exc.reason, headers={"Retry-After": str(exc.retry_after)})
    return _unauthorised(exc.reason)


def authenticate(app: Any, token: str, client: str) -> TokenInfo:
    """Check a bearer token for ``app`` (its token gate and auth store); raise the HTTP refusal."""
    gate: TokenGate | None = getattr(app.state, "token_gate", None)
    if gate is None:
        gate = app.state.token_gate = TokenGate()
    try:
        return gate.verify(app.state.services.auth, token, client)
    except SignInRefused as exc:
        raise refusal(exc) from None


def current_principal(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The active token's principal; 401 for a missing, unknown, expired or revoked token, 429 while the
    caller is throttled. The request middleware usually checked the token already (before any body)."""
    info: TokenInfo | None = getattr(request.state, "token", None)
    if info is None:
        if creds is None or creds.scheme.lower() != "bearer":
            raise _unauthorised("missing bearer token")
        client = request.client.host if request.client is not None else "-"
        info = authenticate(request.app, creds.credentials, client)
    return Principal(token_id=info.id, org=info.org, role=info.role, name=info.name)


def require(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency that admits only the given roles (403 otherwise)."""
    allowed = frozenset(roles)

    def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in allowed:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"role {principal.role.value} may not do this (needs one of: "
                f"{', '.join(sorted(r.value for r in allowed))})",
            )
        return principal

    return check


def org_store(request: Request, principal: Principal) -> Store:
    """The store seen by the caller's organisation: every repository query is scoped by it."""
    base: Store = request.app.state.services.store
    return base.for_org(principal.org)


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    400: {"description": "Body is not decodable"},
    401: {"description": "Missing, unknown, expired or revoked token"},
    403: {"description": "The token's role may not do this"},
    413: {"description": "Request body too large"},
    429: {"description": "Too many failed sign-ins from this client or for this token; see Retry-After"},
    422: {"description": "Malformed request; 'detail' names each wrong field"},
}

Reader = Annotated[Principal, Depends(require(*READ_ROLES))]
Triager = Annotated[Principal, Depends(require(*TRIAGE_ROLES))]
Sensor = Annotated[Principal, Depends(require(*INGEST_ROLES))]
Admin = Annotated[Principal, Depends(require(*ADMIN_ROLES))]
Sharer = Annotated[Principal, Depends(require(*SHARING_ROLES))]
