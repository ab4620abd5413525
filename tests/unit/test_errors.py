"""The error hierarchy, the status factory and Retry-After parsing."""

from __future__ import annotations

import inspect
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from multidict import CIMultiDict

from codelinkava import errors
from codelinkava.errors import (
    AuthenticationError,
    InvalidRequestError,
    ModelNotFoundError,
    ProviderConnectionError,
    ProviderError,
    ProviderNotWorkingError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseStatusError,
    StreamError,
    StreamTruncatedError,
    UpstreamError,
    make_status_error,
    parse_retry_after,
)

# The hierarchy ---------------------------------------------------------------------

EXCEPTION_CLASSES = [
    obj
    for name, obj in vars(errors).items()
    if inspect.isclass(obj) and issubclass(obj, BaseException) and not name.startswith("_")
]


def test_every_error_class_is_exported() -> None:
    assert {cls.__name__ for cls in EXCEPTION_CLASSES} <= set(errors.__all__)
    for name in errors.__all__:
        assert hasattr(errors, name), name


@pytest.mark.parametrize("cls", [pytest.param(c, id=c.__name__) for c in EXCEPTION_CLASSES])
def test_every_class_derives_from_provider_error(cls: type[BaseException]) -> None:
    assert issubclass(cls, ProviderError)
    assert cls.__doc__, "each error says when it is raised"


@pytest.mark.parametrize(
    ("cls", "base"),
    [
        pytest.param(ResponseStatusError, ProviderError, id="ResponseStatusError"),
        pytest.param(AuthenticationError, ResponseStatusError, id="AuthenticationError"),
        pytest.param(RateLimitError, ResponseStatusError, id="RateLimitError"),
        pytest.param(ProviderConnectionError, ProviderError, id="ProviderConnectionError"),
        pytest.param(ProviderTimeoutError, ProviderError, id="ProviderTimeoutError"),
        pytest.param(ProviderTimeoutError, TimeoutError, id="ProviderTimeoutError_TimeoutError"),
        pytest.param(StreamError, ProviderError, id="StreamError"),
        pytest.param(StreamTruncatedError, StreamError, id="StreamTruncatedError"),
        pytest.param(UpstreamError, StreamError, id="UpstreamError"),
        pytest.param(InvalidRequestError, ValueError, id="InvalidRequestError_ValueError"),
        pytest.param(ProviderNotWorkingError, ProviderError, id="ProviderNotWorkingError"),
        pytest.param(ModelNotFoundError, ProviderError, id="ModelNotFoundError"),
    ],
)
def test_hierarchy(cls: type[BaseException], base: type[BaseException]) -> None:
    assert issubclass(cls, base)


@pytest.mark.parametrize(
    ("cls", "not_base"),
    [
        pytest.param(ProviderConnectionError, TimeoutError, id="connection_is_no_timeout"),
        pytest.param(ProviderTimeoutError, ProviderConnectionError, id="timeout_is_no_connect"),
        pytest.param(StreamError, ResponseStatusError, id="stream_is_no_status"),
        pytest.param(UpstreamError, StreamTruncatedError, id="upstream_is_no_truncation"),
    ],
)
def test_hierarchy_keeps_branches_apart(
    cls: type[BaseException], not_base: type[BaseException]
) -> None:
    assert not issubclass(cls, not_base)


def test_error_attributes() -> None:
    status = ResponseStatusError("m", status=502, body="b")
    assert (str(status), status.status, status.body) == ("m", 502, "b")
    limited = RateLimitError("slow down", retry_after=2.5)
    assert (limited.status, limited.retry_after, limited.body) == (429, 2.5, "")
    timeout = ProviderTimeoutError("t", phase="idle")
    assert timeout.phase == "idle"
    upstream = UpstreamError("u", code="x", type="server_error")
    assert (upstream.code, upstream.type) == ("x", "server_error")


def test_timeout_is_caught_by_except_timeout_error() -> None:
    with pytest.raises(TimeoutError):
        raise ProviderTimeoutError("idle", phase="idle")


# make_status_error -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        pytest.param(400, ResponseStatusError, id="400"),
        pytest.param(401, AuthenticationError, id="401"),
        pytest.param(403, AuthenticationError, id="403"),
        pytest.param(404, ResponseStatusError, id="404"),
        pytest.param(408, ResponseStatusError, id="408"),
        pytest.param(429, RateLimitError, id="429"),
        pytest.param(500, ResponseStatusError, id="500"),
        pytest.param(503, ResponseStatusError, id="503"),
    ],
)
def test_make_status_error_mapping(status: int, cls: type[ResponseStatusError]) -> None:
    error = make_status_error(status, "nope", {}, url="http://127.0.0.1:9/api/chat")
    assert type(error) is cls
    assert error.status == status
    assert error.body == "nope"
    assert str(error) == f"HTTP {status} from http://127.0.0.1:9/api/chat: nope"


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        pytest.param({"Retry-After": "7"}, 7.0, id="retry_after"),
        pytest.param({"retry-after-ms": "1500"}, 1.5, id="retry_after_ms"),
        pytest.param({}, None, id="none"),
        pytest.param({"Retry-After": "soon"}, None, id="garbage"),
    ],
)
def test_make_status_error_429_retry_after(
    headers: dict[str, str], retry_after: float | None
) -> None:
    error = make_status_error(429, "", headers)
    assert isinstance(error, RateLimitError)
    assert error.retry_after == retry_after


def test_make_status_error_429_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    error = make_status_error(429, "", {"Retry-After": format_datetime(when, usegmt=True)})
    assert isinstance(error, RateLimitError)
    assert error.retry_after is not None and 25 <= error.retry_after <= 31


def test_make_status_error_without_headers() -> None:
    error = make_status_error(429, "")
    assert isinstance(error, RateLimitError)
    assert error.retry_after is None
    assert str(error) == "HTTP 429: (empty body)"


def test_make_status_error_html_body_preview() -> None:
    body = "<!DOCTYPE html>\n<html>\n  <head><title>502 Bad Gateway</title></head>\n" + (
        "<p>filler</p>\n" * 200
    )
    error = make_status_error(502, body)
    message = str(error)
    # The start of the body, on one line, cut at the preview length.
    assert message.startswith("HTTP 502: <!DOCTYPE html> <html> <head><title>502 Bad Gateway")
    assert "\n" not in message
    assert message.endswith("...")
    assert len(message) <= len("HTTP 502: ") + errors.BODY_PREVIEW_CHARS + 3
    assert error.body == body  # the whole body stays on the exception


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(
            {
                "error": {
                    "message": "Incorrect API key provided: sk-...",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            },
            "Incorrect API key provided: sk-...",
            id="openai",
        ),
        pytest.param({"error": "model not found"}, "model not found", id="error_string"),
        pytest.param({"detail": "Not Found"}, "Not Found", id="fastapi_detail"),
        pytest.param({"message": "Too many requests"}, "Too many requests", id="message"),
    ],
)
def test_make_status_error_json_message_extracted(body: dict[str, object], reason: str) -> None:
    error = make_status_error(401, json.dumps(body))
    assert str(error) == f"HTTP 401: {reason}"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param('{"error": {"code": 5}}', id="error_without_message"),
        pytest.param('{"detail": [{"msg": "field required"}]}', id="detail_list"),
        pytest.param("[1, 2]", id="array"),
        pytest.param("[" * 100_000, id="nested_too_deep"),
    ],
)
def test_make_status_error_json_without_message_previews_body(body: str) -> None:
    error = make_status_error(400, body)
    assert str(error).startswith("HTTP 400: " + body[:20])


def test_make_status_error_long_json_message_truncated() -> None:
    body = json.dumps({"error": {"message": "m" * 10_000}})
    message = str(make_status_error(500, body))
    assert message == "HTTP 500: " + "m" * errors.BODY_PREVIEW_CHARS + "..."


# parse_retry_after ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"Retry-After": "5"}, 5.0, id="seconds"),
        pytest.param({"Retry-After": "0"}, 0.0, id="zero"),
        pytest.param({"Retry-After": " 2.5 "}, 2.5, id="fraction_padded"),
        pytest.param({"retry-after-ms": "250"}, 0.25, id="ms"),
        pytest.param({"retry-after-ms": "0"}, 0.0, id="ms_zero"),
        pytest.param({"Retry-After": "9", "retry-after-ms": "1500"}, 1.5, id="ms_wins"),
        pytest.param({"RETRY-AFTER": "3"}, 3.0, id="upper_case"),
        pytest.param({"Retry-After-Ms": "3000"}, 3.0, id="ms_mixed_case"),
        pytest.param({"retry-after": "4"}, 4.0, id="lower_case"),
        pytest.param({}, None, id="absent"),
        pytest.param({"Content-Type": "text/plain"}, None, id="other_headers"),
        pytest.param({"Retry-After": "-1"}, None, id="negative"),
        pytest.param({"Retry-After": "nan"}, None, id="nan"),
        pytest.param({"Retry-After": "inf"}, None, id="inf"),
        pytest.param({"Retry-After": "1e400"}, None, id="overflow_to_inf"),
        pytest.param({"Retry-After": "soon"}, None, id="garbage"),
        pytest.param({"Retry-After": ""}, None, id="empty"),
        pytest.param({"Retry-After": "Wed, 99 Foo 2015"}, None, id="bad_date"),
        pytest.param({"Retry-After": "Wed, 21 Oct 99999 07:28:00 GMT"}, None, id="year_99999"),
        pytest.param(
            {"retry-after-ms": "-5", "Retry-After": "2"}, 2.0, id="ms_negative_falls_back"
        ),
        pytest.param({"retry-after-ms": "nan", "Retry-After": "2"}, 2.0, id="ms_nan_falls_back"),
        pytest.param({"retry-after-ms": "inf", "Retry-After": "2"}, 2.0, id="ms_inf_falls_back"),
        pytest.param({"retry-after-ms": "x", "Retry-After": "2"}, 2.0, id="ms_garbage_falls_back"),
        pytest.param({"retry-after-ms": "inf"}, None, id="ms_inf_alone"),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers) == expected


def test_parse_retry_after_http_date_in_the_future() -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    value = parse_retry_after({"Retry-After": format_datetime(when, usegmt=True)})
    assert value is not None and 115 <= value <= 121


def test_parse_retry_after_http_date_in_the_past_is_zero() -> None:
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0


def test_parse_retry_after_reads_a_multidict() -> None:
    headers = CIMultiDict([("retry-after", "11"), ("Content-Type", "application/json")])
    assert parse_retry_after(headers) == 11.0


@pytest.fixture
def local_zone_not_utc() -> Iterator[None]:
    """Run with the local time zone five hours behind UTC."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "EST5"
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


@pytest.mark.parametrize(
    "zone", [pytest.param("-0000", id="minus_zero"), pytest.param("", id="none")]
)
@pytest.mark.usefixtures("local_zone_not_utc")
def test_parse_retry_after_date_without_zone_is_gmt(zone: str) -> None:
    # A date without a usable zone is still GMT (RFC 9110), not the local time.
    when = datetime.now(UTC) + timedelta(seconds=60)
    header = when.strftime("%a, %d %b %Y %H:%M:%S ") + zone
    value = parse_retry_after({"Retry-After": header.strip()})
    assert value is not None and 55 <= value <= 61
