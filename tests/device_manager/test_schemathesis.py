"""Property-based run of the whole OpenAPI document, in process, as an admin: no 5xx, every response conforms.

Bounded (derandomized, 15 examples per operation) so it stays well under three minutes. The token-consuming auth
operations are excluded: logout would revoke the shared admin token, login and refresh are rate limited and have
their own tests. Each operation runs as its own Hypothesis test (schemathesis.pytest's fixture loader does not
support pytest 9), and every failing operation is reported, not only the first.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXCLUDED = r"^/api/v1/auth/(login|logout|refresh)$"
NO_INPUTS = r"^/api/v1/pki/device-ca\.crl$"  # public, no parameters, no token: nothing negative to generate
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "15"))  # 15: ~45 s for both runs; 25: ~2 min


def run_operation(operation, headers: dict, mode: GenerationMode, checks: list) -> None:
    """Hypothesis-drive one operation and validate every response."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    def check(case):
        case.call_and_validate(headers=headers, checks=checks)

    check()


def run_document(app, auth, mode: GenerationMode, checks: list) -> None:
    """Every operation of the document; fails once, listing every failing operation."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app).exclude(path_regex=EXCLUDED)
    if mode == GenerationMode.NEGATIVE:
        schema = schema.exclude(path_regex=NO_INPUTS)
    failures, ran = {}, 0
    for result in schema.get_all_operations():
        operation = result.ok()
        ran += 1
        try:
            run_operation(operation, auth["admin"], mode, checks)
        except (Exception, BaseExceptionGroup) as exc:  # collect every operation's failure, then fail once
            failures[operation.label] = f"{type(exc).__name__}: {str(exc)[:1500]}"
    assert ran > 40, f"only {ran} operations in the document"
    assert not failures, "\n\n".join(f"{label}\n{text}" for label, text in failures.items())


@pytest.fixture(scope="module")
def s3_app(make_app, s3_server):
    """The app with its object store (firmware uploads and the S3 archive need one to answer anything but 503)."""
    return make_app(s3_endpoint=f"127.0.0.1:{s3_server.port}", s3_access_key="test", s3_secret_key="testtest",
                    firmware_bucket="schemathesis-firmware")


@pytest.mark.slow
def test_valid_requests_get_conforming_responses(s3_app, auth):
    """Positive data: no 5xx, documented status codes, content types and bodies that match their schemas."""
    run_document(s3_app, auth, GenerationMode.POSITIVE, CHECKS)


@pytest.mark.slow
def test_invalid_requests_never_cause_a_server_error(s3_app, auth):
    """Negative data (wrong types, out-of-range values, missing fields): refused with 4xx, never a 5xx."""
    run_document(s3_app, auth, GenerationMode.NEGATIVE, [not_a_server_error, status_code_conformance])
