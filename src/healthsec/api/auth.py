"""Bearer-token authentication and role checks; every request gets the caller's organisation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from healthsec.store import Store
from healthsec.store.auth import AuthStore, Role

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


def current_principal(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The active token's principal; 401 for a missing, unknown, expired or revoked token."""
    if creds is None or creds.scheme.lower() != "bearer":
        raise _unauthorised("missing bearer token")
    auth: AuthStore = request.app.state.services.auth
    info = auth.verify(creds.credentials)
    if info is None:
        raise _unauthorised("invalid, expired or revoked token")
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
    422: {"description": "Malformed request; 'detail' names each wrong field"},
}

Reader = Annotated[Principal, Depends(require(*READ_ROLES))]
Triager = Annotated[Principal, Depends(require(*TRIAGE_ROLES))]
Sensor = Annotated[Principal, Depends(require(*INGEST_ROLES))]
Admin = Annotated[Principal, Depends(require(*ADMIN_ROLES))]
Sharer = Annotated[Principal, Depends(require(*SHARING_ROLES))]
