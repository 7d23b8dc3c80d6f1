"""Property test over the OpenAPI schema: whatever the parameters, the API never answers 5xx.

Valid requests (as the schema describes them) must also get answers that match the schema:
status, content type and body. Half the generated atlas names are a real atlas, so layers,
heads, tokens and items get exercised past the 404 for an unknown atlas. The live POST
endpoints run models and are tested directly in test_live.py.
"""

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from qkatlas.api.app import create_app


@pytest.fixture(scope="module")
def api_schema(settings, atlases):
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))
    real = atlases["gpt2"].name

    @schema.hook
    def before_generate_path_parameters(_context, strategy):
        return st.one_of(strategy, strategy.map(lambda p: {**p, "atlas": real} if isinstance(p, dict) and "atlas" in p else p))

    return schema.exclude(path_regex="^/api/attention")


def run_cases(operation, mode: GenerationMode, statuses: Counter) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case):
        response = case.call()
        statuses[response.status_code] += 1
        assert response.status_code < 500, (case.as_curl_command(), response.text)
        if mode == GenerationMode.POSITIVE:
            case.validate_response(response)
        elif response.status_code >= 400:
            assert isinstance(response.json()["detail"], str)

    try:
        check()
    except Unsatisfiable:
        assert mode == GenerationMode.NEGATIVE  # e.g. a lone string path parameter: nothing is invalid


@pytest.mark.slow
def test_no_request_gets_a_server_error(api_schema):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 14
    statuses = Counter()
    for operation in operations:
        run_cases(operation, GenerationMode.POSITIVE, statuses)
        if any(p.location == "query" for p in operation.iter_parameters()):
            run_cases(operation, GenerationMode.NEGATIVE, statuses)
    assert {200, 404, 422} <= set(statuses), statuses
