"""Property-based API test (schemathesis) against the OpenAPI document with every check: no server error,
responses conform to the schema (status, content type, headers, body), 405s name the allowed methods."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.config._checks import NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance
from service_helpers import make_tenant, seed

from healthsec.api import create_app
from healthsec.api.auth import TokenGate
from healthsec.config import load_settings
from healthsec.share.taxii_auth import Throttle
from healthsec.store import Store

MAX_EXAMPLES = 15  # per operation: bounded so the suite stays fast
# derandomised (hypothesis draws from a fixed seed per operation) and no example database: CI sees the same
# cases on every run, so a pass cannot turn into a failure by chance
# MISSED (docs/service.md): the two FHIR routes publish no request-body schema yet (an AuditEvent or a
# Bundle, answered with an OperationOutcome), so the two data checks are left out there; every other check
# runs there too, and every check on the other 57 operations.
_FHIR = "no published body schema (a FHIR AuditEvent or Bundle, answered with an OperationOutcome)"
DATA_CHECKS_OPEN = {"POST /api/v1/fhir": _FHIR, "POST /api/v1/fhir/AuditEvent": _FHIR}
EXCLUDED = [positive_data_acceptance, negative_data_rejection]
# 413 (more events than a batch may hold: the document's maxItems) is a refusal too
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"]
            }
        }
    }
)


def _build(tmp: Path) -> tuple[schemathesis.schemas.BaseSchema, dict[str, str]]:
    store = Store.open(str(tmp / "fuzz.db"), "fuzz")
    tenant = make_tenant(store, "fuzz-a")
    make_tenant(store, "fuzz-b")
    seed(store, tenant.org)
    app = create_app(load_settings(db="sqlite:///unused.db"), store=store)
    # the checks send many requests without or with a wrong token from one address: no back-off here
    # (test_hardening.py tests it), or every later request of the run would get 429
    app.state.token_gate = TokenGate(Throttle(free=10**9))
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG), tenant.headers("admin")


_TMP = Path(__import__("tempfile").mkdtemp(prefix="healthsec-fuzz-"))
schema, ADMIN = _build(_TMP)
TRIED: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def _report() -> object:
    yield
    print(
        f"\nschemathesis: {len(TRIED)} cases over {len(set(TRIED))} operations, every check "
        f"(positive/negative data checks on all but {len(DATA_CHECKS_OPEN)})"
    )


@pytest.mark.integration
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_never_errors(case: schemathesis.Case) -> None:
    TRIED.append(case.operation.label)
    excluded = EXCLUDED if case.operation.label in DATA_CHECKS_OPEN else []
    # a 10,000-event batch is detected in-process before the answer: 10 s (the default) is not enough
    # on the shared CI machine (a read timeout, not a finding)
    response = case.call_and_validate(headers=ADMIN, excluded_checks=excluded, timeout=120)
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
