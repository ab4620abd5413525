"""`validate_messages`, the one check every provider applies, and `text_of`."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from codelinkava.errors import InvalidRequestError
from codelinkava.types import text_of, validate_messages


def test_valid_messages_come_back_as_dict_copies() -> None:
    first = {"role": "system", "content": "Be brief."}
    messages = [first, {"role": "user", "content": "Hi"}]
    checked = validate_messages(messages)
    assert checked == messages
    assert checked is not messages
    assert checked[0] is not first
    checked[0]["content"] = "changed"
    assert first["content"] == "Be brief."


@pytest.mark.parametrize(
    "messages",
    [
        pytest.param(({"role": "user", "content": "Hi"},), id="tuple"),
        pytest.param([MappingProxyType({"role": "user", "content": "Hi"})], id="mapping_item"),
        pytest.param(
            [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}], id="content_parts"
        ),
        pytest.param(
            [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": None, "tool_calls": []},
                {"role": "tool", "content": "42", "tool_call_id": "1"},
            ],
            id="assistant_without_content",
        ),
        pytest.param(
            [{"role": r, "content": "x"} for r in ("system", "developer", "user", "assistant")],
            id="every_common_role",
        ),
    ],
)
def test_validate_messages_accepts(messages: Any) -> None:
    checked = validate_messages(messages)
    assert checked == [dict(m) for m in messages]
    assert all(type(m) is dict for m in checked)


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        pytest.param("Hello", "not str", id="str"),
        pytest.param(b"Hello", "not bytes", id="bytes"),
        pytest.param({"role": "user", "content": "Hi"}, "not dict", id="a_single_dict"),
        pytest.param(None, "not NoneType", id="none"),
        pytest.param(5, "not int", id="number"),
        pytest.param(iter([{"role": "user", "content": "Hi"}]), "must be a list", id="iterator"),
        pytest.param([], "empty", id="empty_list"),
        pytest.param((), "empty", id="empty_tuple"),
    ],
)
def test_validate_messages_rejects_the_container(messages: Any, match: str) -> None:
    with pytest.raises(InvalidRequestError, match=match) as info:
        validate_messages(messages)
    assert isinstance(info.value, ValueError)


GOOD = {"role": "user", "content": "Hi"}


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        pytest.param(["Hi"], r"messages\[0\] must be a dict.*not str", id="str_item"),
        pytest.param([GOOD, None], r"messages\[1\] must be a dict.*not NoneType", id="none_item"),
        pytest.param([GOOD, GOOD, ("user", "Hi")], r"messages\[2\].*not tuple", id="tuple_item"),
        pytest.param([{"content": "Hi"}], r"messages\[0\] has role None", id="no_role"),
        pytest.param(
            [GOOD, {"role": "robot", "content": "x"}],
            r"messages\[1\] has role 'robot'",
            id="unknown_role",
        ),
        pytest.param(
            [{"role": "User", "content": "x"}],
            r"messages\[0\] has role 'User'",
            id="capitalised_role",
        ),
        pytest.param([{"role": 1, "content": "x"}], r"messages\[0\] has role 1", id="int_role"),
        pytest.param(
            [GOOD, {"role": "user", "content": 5}],
            r"messages\[1\]\.content must be a string.*not int",
            id="int_content",
        ),
        pytest.param(
            [{"role": "user", "content": {"text": "x"}}],
            r"messages\[0\]\.content must be a string.*not dict",
            id="dict_content",
        ),
        pytest.param([{"role": "user"}], r"messages\[0\] \(user\) has no content", id="no_content"),
        pytest.param(
            [{"role": "system", "content": None}],
            r"messages\[0\] \(system\) has no",
            id="null_content",
        ),
    ],
)
def test_validate_messages_names_the_bad_item(messages: Any, match: str) -> None:
    with pytest.raises(InvalidRequestError, match=match):
        validate_messages(messages)


def test_role_error_lists_the_roles() -> None:
    with pytest.raises(InvalidRequestError, match=r"expected one of .*assistant.*user"):
        validate_messages([{"role": "bot", "content": "x"}])


@pytest.mark.parametrize(
    ("content", "text"),
    [
        pytest.param("plain", "plain", id="str"),
        pytest.param("", "", id="empty_str"),
        pytest.param(None, "", id="none"),
        pytest.param(
            [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "ab", id="text_parts"
        ),
        pytest.param(
            [{"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "c"}],
            "c",
            id="image_part_ignored",
        ),
        pytest.param([{"type": "text", "text": None}], "", id="null_text"),
        pytest.param([{"type": "text", "text": 5}], "", id="non_string_text"),
        pytest.param(["a", "b"], "ab", id="string_parts"),
        pytest.param(42, "", id="number"),
    ],
)
def test_text_of(content: Any, text: str) -> None:
    assert text_of(content) == text
