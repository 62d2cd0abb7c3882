"""The line-keeping YAML reader gives what `yaml.safe_load` gives (as TagPacks need it)."""

from __future__ import annotations

import pytest
import yaml

from chainsleuth.tags.yamlread import LineDict, LineList, YamlError, load_with_lines

DOC = """\
title: "quoted: title"
creator: Someone
lastmod: 2021-11-12
is_public: yes
count: 12
empty:
nothing: ~
flow: {a: 1, b: [x, 'y']}
anchored: &A
  k: v
alias: *A
block: |
  two
  lines
folded: >
  one
  line
tags:
- address: 1abc
  label: '007'
  is_cluster_definer: false
- {address: 2def, label: "x\\ty"}
"""


def _plain(value):  # type: ignore[no-untyped-def]
    """safe_load's value with what we keep as text (numbers, dates) turned to text."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    return str(value)


def test_values_match_safe_load_with_numbers_and_dates_as_text() -> None:
    assert load_with_lines(DOC) == _plain(yaml.safe_load(DOC))


def test_mappings_and_lists_remember_their_lines() -> None:
    doc = load_with_lines(DOC)
    assert isinstance(doc, LineDict) and doc.line == 1
    assert doc.key_lines["title"] == 1 and doc.key_lines["tags"] == 18
    tags = doc["tags"]
    assert isinstance(tags, LineList) and tags.line == 19
    assert [t.line for t in tags] == [19, 22]
    assert tags[0].key_lines == {"address": 19, "label": 20, "is_cluster_definer": 21}


def test_a_syntax_error_names_its_line() -> None:
    with pytest.raises(YamlError) as info:
        load_with_lines("a: 1\nb: [2\nc: 3\n")
    assert info.value.line in (2, 3, 4)


def test_an_empty_document_is_none() -> None:
    assert load_with_lines("") is None
