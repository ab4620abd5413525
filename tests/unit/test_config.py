"""Timeouts and the split between the library's options and the request body."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from codelinkava import Timeouts
from codelinkava.config import ClientOptions, split_options
from codelinkava.errors import InvalidRequestError, ProviderError
from codelinkava.retry import DEFAULT_RETRY_POLICY, RetryPolicy

# Timeouts -----------------------------------------------------------------------


def test_timeouts_defaults() -> None:
    timeouts = Timeouts()
    assert (timeouts.connect, timeouts.first_chunk, timeouts.idle, timeouts.total) == (
        10.0,
        60.0,
        30.0,
        None,
    )


def test_timeouts_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Timeouts().idle = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, Timeouts(), id="none_is_defaults"),
        pytest.param(5, Timeouts(connect=5, first_chunk=5, idle=5, total=None), id="int"),
        pytest.param(2.5, Timeouts(connect=2.5, first_chunk=2.5, idle=2.5, total=None), id="float"),
        pytest.param({"idle": 5}, Timeouts(idle=5), id="mapping_one_field"),
        pytest.param(
            {"connect": 1, "first_chunk": 2, "idle": 3, "total": 4},
            Timeouts(connect=1, first_chunk=2, idle=3, total=4),
            id="mapping_all_fields",
        ),
        pytest.param({"idle": None}, Timeouts(idle=None), id="mapping_switches_one_off"),
        pytest.param({}, Timeouts(), id="empty_mapping"),
    ],
)
def test_timeouts_coerce(value: Any, expected: Timeouts) -> None:
    assert Timeouts.coerce(value) == expected


def test_timeouts_coerce_keeps_a_timeouts() -> None:
    timeouts = Timeouts(total=120)
    assert Timeouts.coerce(timeouts) is timeouts


@pytest.mark.parametrize(
    ("value", "match"),
    [
        pytest.param(True, "number", id="bool"),
        pytest.param(False, "number", id="false"),
        pytest.param(-1, "> 0", id="negative"),
        pytest.param(0, "> 0", id="zero"),
        pytest.param(float("nan"), "> 0", id="nan"),
        pytest.param(float("inf"), "finite", id="inf"),
        pytest.param("5", "not str", id="string"),
        pytest.param([5], "not list", id="list"),
        pytest.param({"idle": -2}, "idle", id="mapping_negative"),
        pytest.param({"idle": True}, "idle", id="mapping_bool"),
        pytest.param({"idle": "3"}, "idle", id="mapping_string"),
        pytest.param({"read": 5}, "unknown timeout field.*read", id="unknown_field"),
        pytest.param({"idle": 1, "pool": 2, "read": 3}, "pool, read", id="unknown_fields"),
        pytest.param({1: 2}, "unknown timeout field.*1", id="non_string_key"),
    ],
)
def test_timeouts_coerce_rejects(value: Any, match: str) -> None:
    with pytest.raises(InvalidRequestError, match=match) as info:
        Timeouts.coerce(value)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ProviderError)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"connect": True}, id="bool"),
        pytest.param({"first_chunk": -0.5}, id="negative"),
        pytest.param({"total": 0}, id="zero"),
        pytest.param({"idle": float("inf")}, id="inf"),
        pytest.param({"idle": "30"}, id="string"),
    ],
)
def test_timeouts_constructor_validates(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequestError):
        Timeouts(**kwargs)


# split_options ---------------------------------------------------------------------


def test_split_options_removes_library_options_from_the_body() -> None:
    kwargs = {
        "temperature": 0.2,
        "top_p": 0.9,
        "stream": False,
        "timeout": 5,
        "max_retries": 0,
        "proxy": "http://127.0.0.1:3128",
        "headers": {"X-Trace": "1"},
    }
    original = dict(kwargs)
    options, body = split_options(kwargs)
    assert body == {"temperature": 0.2, "top_p": 0.9, "stream": False}
    assert options == ClientOptions(
        timeouts=Timeouts(connect=5, first_chunk=5, idle=5),
        retry=RetryPolicy(max_retries=0),
        proxy="http://127.0.0.1:3128",
        headers={"X-Trace": "1"},
    )
    assert kwargs == original  # the caller's dict is left alone


def test_split_options_defaults() -> None:
    options, body = split_options({})
    assert body == {}
    assert options.timeouts == Timeouts()
    assert options.max_retries == DEFAULT_RETRY_POLICY.max_retries == 2
    assert options.proxy is None
    assert options.headers == {}


@pytest.mark.parametrize(
    ("kwargs", "attribute", "expected"),
    [
        pytest.param({"max_retries": None}, "max_retries", 2, id="max_retries_none"),
        pytest.param({"max_retries": 5}, "max_retries", 5, id="max_retries_five"),
        pytest.param({"proxy": None}, "proxy", None, id="proxy_none"),
        pytest.param({"proxy": ""}, "proxy", None, id="proxy_empty"),
        pytest.param({"headers": None}, "headers", {}, id="headers_none"),
        pytest.param({"timeout": None}, "timeouts", Timeouts(), id="timeout_none"),
        pytest.param(
            {"timeout": Timeouts(total=9)}, "timeouts", Timeouts(total=9), id="timeout_object"
        ),
        pytest.param({"timeout": {"idle": 4}}, "timeouts", Timeouts(idle=4), id="timeout_mapping"),
    ],
)
def test_split_options_accepts(kwargs: dict[str, Any], attribute: str, expected: Any) -> None:
    options, body = split_options(kwargs)
    assert getattr(options, attribute) == expected
    assert body == {}


def test_split_options_copies_headers() -> None:
    headers = {"X-A": "1"}
    options, _ = split_options({"headers": headers})
    headers["X-B"] = "2"
    assert options.headers == {"X-A": "1"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"max_retries": -1}, "max_retries", id="max_retries_negative"),
        pytest.param({"max_retries": 1.5}, "max_retries", id="max_retries_float"),
        pytest.param({"max_retries": True}, "max_retries", id="max_retries_bool"),
        pytest.param({"max_retries": "2"}, "max_retries", id="max_retries_string"),
        pytest.param({"proxy": 8080}, "proxy", id="proxy_number"),
        pytest.param({"headers": [("X-A", "1")]}, "headers", id="headers_list"),
        pytest.param({"headers": []}, "headers", id="headers_empty_list"),
        pytest.param({"headers": "X-A: 1"}, "headers", id="headers_string"),
        pytest.param({"headers": {"X-A": 1}}, "headers", id="headers_int_value"),
        pytest.param({"headers": {1: "a"}}, "headers", id="headers_int_name"),
        pytest.param({"timeout": -3}, "timeout", id="timeout_negative"),
        pytest.param({"timeout": "fast"}, "timeout", id="timeout_string"),
    ],
)
def test_split_options_rejects(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidRequestError, match=match) as info:
        split_options(kwargs)
    assert isinstance(info.value, ValueError)


def test_invalid_request_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        split_options({"max_retries": -1})
