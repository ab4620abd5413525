"""The gateway's error mapping (`server/errors.py`): statuses, relayed upstream errors, the
scrubbing of upstream addresses, and the OpenAI-shaped payload."""

from __future__ import annotations

import json
from typing import Any

import pytest

from codelinkava import errors
from codelinkava.server.errors import (
    error_payload,
    error_response,
    provider_error_response,
    public_message,
    relayed_error,
    status_for,
)


def upstream_body(**error: Any) -> str:
    return json.dumps({"error": error})


# error_payload / error_response ----------------------------------------------------------


def test_error_payload_shape() -> None:
    assert error_payload("m", "t") == {
        "error": {"message": "m", "type": "t", "code": None, "param": None}
    }
    assert error_payload("m", "t", "c", "p") == {
        "error": {"message": "m", "type": "t", "code": "c", "param": "p"}
    }


def test_error_response_carries_status_headers_and_payload() -> None:
    response = error_response(418, "m", "t", "c", {"X-A": "1"}, param="p")
    assert response.status_code == 418
    assert response.headers["x-a"] == "1"
    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.body) == error_payload("m", "t", "c", "p")


# status_for ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (errors.InvalidRequestError("x"), (400, "invalid_request_error", "invalid_request", {})),
        (errors.ModelNotFoundError("x"), (404, "invalid_request_error", "model_not_found", {})),
        (errors.RateLimitError("x"), (429, "rate_limit_error", "upstream_rate_limited", {})),
        (errors.ProviderTimeoutError("x"), (504, "upstream_error", "upstream_timeout", {})),
        (errors.ProviderNotWorkingError("x"), (503, "upstream_error", "provider_not_working", {})),
        (errors.ProviderConnectionError("x"), (502, "upstream_error", "upstream_unreachable", {})),
        (errors.StreamError("x"), (502, "upstream_error", "upstream_bad_stream", {})),
        (errors.StreamTruncatedError("x"), (502, "upstream_error", "upstream_bad_stream", {})),
        (errors.UpstreamError("x"), (502, "upstream_error", "upstream_bad_stream", {})),
        (errors.ProviderError("x"), (500, "server_error", "provider_error", {})),
        (
            errors.AuthenticationError("x", status=401),
            (502, "upstream_error", "upstream_status_401", {}),
        ),
        (
            errors.ResponseStatusError("x", status=500),
            (502, "upstream_error", "upstream_status_500", {}),
        ),
    ],
)
def test_status_for_each_error(exc: errors.ProviderError, expected: tuple[Any, ...]) -> None:
    assert status_for(exc) == expected


@pytest.mark.parametrize("status", [400, 404, 413, 422])
def test_client_fault_statuses_are_passed_on(status: int) -> None:
    exc = errors.ResponseStatusError("x", status=status, body="<html>no</html>")
    assert status_for(exc) == (status, "invalid_request_error", f"upstream_status_{status}", {})


@pytest.mark.parametrize(
    ("retry_after", "header"), [(0.2, "1"), (2.4, "2"), (2.6, "3"), (60, "60")]
)
def test_retry_after_is_rounded_to_at_least_a_second(retry_after: float, header: str) -> None:
    exc = errors.RateLimitError("x", retry_after=retry_after)
    assert status_for(exc)[3] == {"Retry-After": header}


# relayed_error ---------------------------------------------------------------------------


def test_an_upstream_error_object_is_relayed_with_its_status() -> None:
    body = upstream_body(message="quota", type="insufficient_quota", code="quota", param=None)
    exc = errors.RateLimitError("x", body=body, retry_after=5)
    assert relayed_error(exc) == (429, json.loads(body)["error"])
    assert status_for(exc) == (429, "insufficient_quota", "quota", {"Retry-After": "5"})


def test_a_relayed_error_without_code_or_type_gets_ours() -> None:
    exc = errors.ResponseStatusError("x", status=503, body=upstream_body(message="m", code=7))
    assert status_for(exc) == (503, "upstream_error", "7", {})
    exc = errors.ResponseStatusError("x", status=500, body=upstream_body(message="m", type="t"))
    assert status_for(exc) == (500, "t", "upstream_status_500", {})


def test_a_relayed_status_is_kept_even_for_server_faults() -> None:
    # unlike an unrelayable 500 (which becomes 502), a relayed one keeps its status
    exc = errors.ResponseStatusError("x", status=500, body=upstream_body(message="m", type="t"))
    assert status_for(exc)[0] == 500


@pytest.mark.parametrize(
    "exc",
    [
        errors.ProviderError("x"),
        errors.UpstreamError("x", code="c", type="t"),  # a stream error is not a status error
        errors.AuthenticationError("x", status=401, body=upstream_body(message="m", type="t")),
        errors.AuthenticationError("x", status=403, body=upstream_body(message="m", type="t")),
        errors.ResponseStatusError("x", status=500, body="<html>{}</html>"),
        errors.ResponseStatusError("x", status=500, body="{not json"),
        errors.ResponseStatusError("x", status=500, body="[1]"),
        errors.ResponseStatusError("x", status=500, body='{"error": "text"}'),
        errors.ResponseStatusError("x", status=500, body='{"detail": {}}'),
        errors.ResponseStatusError("x", status=500, body=upstream_body(message=3, type="t")),
        errors.ResponseStatusError("x", status=500, body=upstream_body(message="m")),
        errors.ResponseStatusError("x", status=500, body=upstream_body(type="t", code="c")),
        errors.ResponseStatusError("x", status=500, body="{" * 100_000),
    ],
)
def test_bodies_that_are_not_relayed(exc: errors.ProviderError) -> None:
    assert relayed_error(exc) is None


def test_leading_blank_space_before_the_object_is_fine() -> None:
    exc = errors.ResponseStatusError(
        "x", status=400, body="\n  " + upstream_body(message="m", type="t")
    )
    assert relayed_error(exc) is not None


# public_message ----------------------------------------------------------------------------


def test_addresses_are_scrubbed_from_messages() -> None:
    exc = errors.ProviderError(
        "GET https://api.example.com:8443/v1/chat?key=sk-secret failed; "
        "could not connect to 10.0.0.5:8080, then from [::1]:9000 at host.internal:1."
    )
    message = public_message(exc)
    assert "example.com" not in message
    assert "sk-secret" not in message
    assert "10.0.0.5" not in message and "::1" not in message and "host.internal" not in message
    assert message == (
        "GET the upstream failed; could not connect to the upstream, "
        "then from the upstream at the upstream."
    )


def test_a_url_keeps_the_punctuation_that_ends_a_sentence() -> None:
    message = public_message(errors.ProviderError("see (http://a.b/c), or http://d.e/f."))
    assert message == "see (the upstream), or the upstream."


def test_relayed_messages_are_scrubbed_too() -> None:
    body = upstream_body(message="backend http://10.1.2.3:9/v1 said no", type="t")
    exc = errors.ResponseStatusError("status 400 from http://up/", status=400, body=body)
    assert public_message(exc) == "backend the upstream said no"


def test_credential_failures_never_quote_the_upstream() -> None:
    body = upstream_body(message="Incorrect API key provided: sk-abc***", type="invalid_key")
    exc = errors.AuthenticationError("401 from https://api.x/v1", status=401, body=body)
    message = public_message(exc)
    assert message == (
        "the upstream refused the gateway's credentials (HTTP 401); ask the gateway's operator"
    )
    assert "sk-abc" not in message


def test_connection_and_timeout_messages_are_generic() -> None:
    assert (
        public_message(errors.ProviderConnectionError("connect to 10.0.0.1:443 refused"))
        == "the upstream could not be reached"
    )
    assert (
        public_message(errors.ProviderTimeoutError("x", phase="first_chunk"))
        == "the upstream did not answer in time (first_chunk)"
    )
    assert (
        public_message(errors.ProviderTimeoutError("x"))
        == "the upstream did not answer in time (timeout)"
    )


def test_an_address_without_a_preposition_is_not_scrubbed() -> None:
    # _HOST_PORT only matches after "to", "from" or "at": a bare host:port stays
    assert public_message(errors.ProviderError("upstream 10.0.0.5:8080 broke")) == (
        "upstream 10.0.0.5:8080 broke"
    )


# provider_error_response -------------------------------------------------------------------


def test_provider_error_response_names_the_param() -> None:
    response = provider_error_response(errors.InvalidRequestError("n must be 1", param="n"))
    assert response.status_code == 400
    assert json.loads(response.body) == error_payload(
        "n must be 1", "invalid_request_error", "invalid_request", "n"
    )


def test_provider_error_response_relays_the_upstream_param() -> None:
    body = upstream_body(
        message="bad temperature", type="invalid_request_error", code=None, param="temperature"
    )
    response = provider_error_response(errors.ResponseStatusError("x", status=400, body=body))
    assert response.status_code == 400
    assert json.loads(response.body) == error_payload(
        "bad temperature", "invalid_request_error", "upstream_status_400", "temperature"
    )


def test_provider_error_response_sets_retry_after() -> None:
    response = provider_error_response(errors.RateLimitError("slow down", retry_after=3))
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert json.loads(response.body)["error"]["param"] is None
