"""Property-based API test (schemathesis) against the OpenAPI document: no server error, responses conform."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from service_helpers import make_tenant, seed

from healthsec.api import create_app
from healthsec.config import load_settings
from healthsec.store import Store


def _build(tmp: Path) -> tuple[schemathesis.schemas.BaseSchema, dict[str, str]]:
    store = Store.open(str(tmp / "fuzz.db"), "fuzz")
    tenant = make_tenant(store, "fuzz-a")
    make_tenant(store, "fuzz-b")
    seed(store, tenant.org)
    app = create_app(load_settings(db="sqlite:///unused.db"), store=store)
    return schemathesis.openapi.from_asgi("/openapi.json", app), tenant.headers("admin")


_TMP = Path(__import__("tempfile").mkdtemp(prefix="healthsec-fuzz-"))
schema, ADMIN = _build(_TMP)


@pytest.mark.integration
@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_errors(case: schemathesis.Case) -> None:
    case.headers = {**(case.headers or {}), **ADMIN}
    response = case.call()
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
    case.validate_response(
        response, checks=(status_code_conformance, content_type_conformance, response_schema_conformance)
    )
