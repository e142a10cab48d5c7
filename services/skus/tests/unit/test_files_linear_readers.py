"""The linear-time rewrites read what the old regular expressions read: on short lines (where the old
expressions are still fast) both agree, for any mix of the characters they care about."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from skus.domain.files.gcode import comment_key_value
from skus.domain.files.scad import group_name

OLD_KEY_VALUE = re.compile(r"^;\s*(?P<key>[^:=]+?)\s*[:=]\s*(?P<value>.*?)\s*$")
OLD_GROUP = re.compile(r"^/\*\s*\[\s*(?P<name>[^\[\]]*?)\s*\]\s*\*/$", re.DOTALL)

LINE = st.text(alphabet=st.sampled_from([";", ":", "=", " ", "\t", "a", "B", "1", ".", "[", "]", "#"]), max_size=24)
COMMENT_BODY = st.text(alphabet=st.sampled_from([" ", "\t", "[", "]", "a", "Z", "1", "/", "*", "\n"]), max_size=24)


@given(LINE)
def test_comment_key_value_agrees_with_the_old_expression(line: str) -> None:
    old = OLD_KEY_VALUE.match(line)
    expected = None
    if old is not None and old.group("key").strip():
        expected = (old.group("key").strip(), old.group("value"))
    assert comment_key_value(line) == expected


@given(COMMENT_BODY)
def test_group_name_agrees_with_the_old_expression(body: str) -> None:
    comment = f"/*{body}*/"
    old = OLD_GROUP.match(comment)
    assert group_name(comment) == (old.group("name") if old else None)
