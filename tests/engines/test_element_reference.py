"""The one ``@name`` rule every engine uses to find an element in a prompt."""

from __future__ import annotations

import pytest

from happyhorse.engines.base import Element


@pytest.mark.parametrize(
    ("prompt", "mentioned"),
    [
        ("@cat sleeps", True),
        ("a dog chases @cat.", True),
        ("(@cat)", True),
        ("@cat_2 sleeps", False),  # another name: underscores and digits belong to names
        ("@cats sleep", False),
        ("@Cat sleeps", False),  # names are case-sensitive, as the contract's uniqueness check is
        ("cat sleeps", False),
        ("mail@cat", True),  # an @ inside a word still refers: the rule is the @ and the whole name
        ("@caté", True),  # a non-ASCII letter is not a name character ([A-Za-z0-9_]), so @cat ends there
    ],
)
def test_whole_name_after_at(prompt: str, mentioned: bool) -> None:
    assert Element("cat", "", []).mentioned_in(prompt) is mentioned


def test_names_with_regex_characters_are_literal() -> None:
    assert not Element("a.b", "", []).mentioned_in("@axb")
