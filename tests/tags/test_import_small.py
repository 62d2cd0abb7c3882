"""TagPack and ActorPack import on small hand-written packs: inheritance, actors, every reason a
tag is refused (with its line), skipped tags, versions and idempotent re-import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chainsleuth.tags import import_tagpacks, list_tags
from chainsleuth.tags.storage import read_manifest
from tests.tags.conftest import write_pack

# real mainnet addresses (from the public packs and the genesis block)
GENESIS = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
ARCHIVE = "1Archive1n2C579dMsAu3iC6tWzuQJz8dN"
HYDRA = "1BCWMwpR4M1nYUuuYe2bmzrNuwGoF9ZAbA"
SEGWIT = "bc1qj6j6p0jdefl6pvdzx3kx8245yy5mz6q4luhzes"
P2SH = "3KvBX3jo69Qn8jHy44M33RYoeYcf8DdRBD"
TESTNET = "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn"

HEADER = """\
title: Test pack
creator: Tester
description: hand-written
label: Header label
source: https://example.org/header
currency: BTC
category: exchange
confidence: service_data
lastmod: 2024-01-02
actor: acme
"""

ACTORS = """\
title: Test actors
creator: Tester
lastmod: 2024-01-01
actors:
- id: acme
  label: ACME Exchange
  uri: https://acme.example
  categories: [exchange]
  jurisdictions: [AT]
- id: darkco
  label: Dark Co
  aliases: [dco]
  uri: http://dark.onion
  categories: [market]
"""


def _import(tmp_path: Path, text: str, name: str = "pack.yaml", **kw: object):  # type: ignore[no-untyped-def]
    path = write_pack(tmp_path / "packs", name, text)
    return import_tagpacks(tmp_path / "data", [path], **kw)  # type: ignore[arg-type]


def _problems(report):  # type: ignore[no-untyped-def]
    return [(p.line, p.code) for p in report.problems if p.severity == "error"]


# ------------------------------------------------------------------------------ inheritance
def test_header_fields_are_inherited_by_every_tag(tmp_path: Path) -> None:
    _import(tmp_path, HEADER + f"tags:\n- address: {GENESIS}\n- address: {SEGWIT}\n")
    tags = list_tags(tmp_path / "data")
    assert [t["address"] for t in tags] == sorted([GENESIS, SEGWIT])
    for t in tags:
        assert (t["label"], t["category"], t["actor"], t["confidence"]) == (
            "Header label",
            "exchange",
            "acme",
            "service_data",
        )
        assert t["source"] == "https://example.org/header" and t["lastmod"] == "2024-01-02"
        assert t["created_by"] == "Tester" and t["tagpack"] == "pack"


def test_a_tag_field_overrides_the_header(tmp_path: Path) -> None:
    _import(
        tmp_path,
        HEADER
        + f"tags:\n- address: {GENESIS}\n  label: Own label\n  category: market\n"
        + "  confidence: ownership\n  actor: darkco\n  source: https://example.org/own\n",
    )
    (t,) = list_tags(tmp_path / "data")
    assert (t["label"], t["category"], t["actor"], t["confidence"], t["confidence_level"]) == (
        "Own label",
        "market",
        "darkco",
        "ownership",
        100,
    )
    assert t["source"] == "https://example.org/own"


def test_an_unknown_header_field_is_a_warning(tmp_path: Path) -> None:
    report = _import(tmp_path, HEADER + f"colour: blue\ntags:\n- address: {GENESIS}\n")
    assert report.imported == 1
    assert [(p.line, p.code) for p in report.warnings() if p.code == "unknown_field"] == [
        (11, "unknown_field")
    ]


def test_is_public_defaults_to_false_and_is_inherited(tmp_path: Path) -> None:
    _import(tmp_path, HEADER + f"is_public: true\ntags:\n- address: {GENESIS}\n")
    _import(tmp_path, HEADER + f"tags:\n- address: {SEGWIT}\n", name="private.yaml")
    from chainsleuth.tags import TagLookup

    with TagLookup.open(tmp_path / "data") as lookup:
        rows = lookup.query("SELECT address, is_public FROM tags ORDER BY address")
    assert {r["address"]: r["is_public"] for r in rows} == {GENESIS: True, SEGWIT: False}


def test_context_mapping_is_stored_as_json(tmp_path: Path) -> None:
    _import(tmp_path, HEADER + f"tags:\n- address: {GENESIS}\n  context:\n    refs: [a, b]\n")
    from chainsleuth.tags import TagLookup

    with TagLookup.open(tmp_path / "data") as lookup:
        (row,) = lookup.query("SELECT context FROM tags")
    assert json.loads(row["context"]) == {"refs": ["a", "b"]}


# ------------------------------------------------------------------------------------ actors
def test_actor_references_resolve_against_the_actorpack(tmp_path: Path) -> None:
    actors = write_pack(tmp_path / "actors", "actors.yaml", ACTORS)
    pack = write_pack(tmp_path / "packs", "pack.yaml", HEADER + f"tags:\n- address: {GENESIS}\n")
    report = import_tagpacks(tmp_path / "data", [pack, actors])  # actors first, whatever order
    assert report.actors == 2
    assert report.problems == []
    from chainsleuth.tags import TagLookup

    with TagLookup.open(tmp_path / "data") as lookup:
        actor = lookup.actor("ACME Exchange")
        alias = lookup.actor("dco")
    assert actor is not None and actor["id"] == "acme" and actor["jurisdictions"] == ["AT"]
    assert alias is not None and alias["id"] == "darkco"


def test_an_unknown_actor_is_a_warning_and_the_tag_is_kept(tmp_path: Path) -> None:
    report = _import(tmp_path, HEADER + f"tags:\n- address: {GENESIS}\n  actor: nobody\n")
    assert report.imported == 1 and report.invalid == 0
    (warning,) = [p for p in report.problems if p.code == "unknown_actor" and "nobody" in p.message]
    assert warning.severity == "warning" and warning.line == 13


def test_actor_problems_are_warnings_with_lines(tmp_path: Path) -> None:
    text = (
        ACTORS
        + "- id: odd\n  label: Odd\n  uri: x\n  categories: [no_such]\n  jurisdictions: [XX]\n"
    )
    path = write_pack(tmp_path / "actors", "actors.yaml", text)
    report = import_tagpacks(tmp_path / "data", [path])
    assert report.actors == 3
    codes = {(p.code, p.line, p.severity) for p in report.problems}
    assert codes == {("unknown_category", 18, "warning"), ("unknown_jurisdiction", 19, "warning")}


def test_an_actor_without_a_mandatory_field_is_left_out(tmp_path: Path) -> None:
    text = ACTORS + "- id: nolabel\n  uri: x\n  categories: []\n"
    report = import_tagpacks(tmp_path / "data", [write_pack(tmp_path / "actors", "a.yaml", text)])
    assert report.actors == 2
    assert _problems(report) == [(15, "missing_actor_field")]


# --------------------------------------------------------------------------- invalid tags
@pytest.mark.parametrize(
    ("tag", "code"),
    [
        ("  category: no_such_category\n", "unknown_category"),
        ("  abuse: no_such_abuse\n", "unknown_abuse"),
        ("  confidence: very_sure\n", "unknown_confidence"),
        ("  concepts: [exchange, nope]\n", "unknown_concept"),
        ("  tag_type: rumour\n", "unknown_tag_type"),
        ("  lastmod: yesterday\n", "bad_lastmod"),
        ("  is_cluster_definer: maybe\n", "bad_field_type"),
        ("  label: [a, b]\n", "bad_field_type"),
    ],
)
def test_an_invalid_field_is_reported_on_its_line(tmp_path: Path, tag: str, code: str) -> None:
    report = _import(tmp_path, HEADER + f"tags:\n- address: {GENESIS}\n{tag}")
    assert report.imported == 0 and report.invalid == 1
    assert _problems(report) == [(13, code)]


@pytest.mark.parametrize(
    ("address", "code"),
    [
        ("TUCsTq7TofTCJRRoHk6RvhMoS2mJLm5Yzq", "non_btc_address"),  # Tron
        ("'0xFA8E3920daF271daB92Be9B87d9998DDd94FEF08'", "non_btc_address"),  # Ethereum
        ("Le3gXVa4SshHs3TmdrWNC434ceDQtsjMt8", "non_btc_address"),  # Litecoin
        ("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", "malformed_address"),  # checksum
        ("bc1qj6j6p0jdefl6pvdzx3kx8245yy5mz6q4luhzez", "malformed_address"),  # bech32 checksum
        ("not-an-address", "malformed_address"),
        (TESTNET, "wrong_network"),
    ],
)
def test_a_non_bitcoin_or_malformed_address_under_btc_is_invalid(
    tmp_path: Path, address: str, code: str
) -> None:
    report = _import(tmp_path, HEADER + f"tags:\n- address: {GENESIS}\n- address: {address}\n")
    assert report.imported == 1 and report.invalid == 1
    assert _problems(report) == [(13, code)]


def test_missing_confidence_is_invalid_when_the_header_gives_none(tmp_path: Path) -> None:
    header = HEADER.replace("confidence: service_data\n", "")
    report = _import(
        tmp_path,
        header + f"tags:\n- address: {GENESIS}\n- address: {SEGWIT}\n  confidence: forensic\n",
    )
    assert report.imported == 1
    assert _problems(report) == [(11, "missing_confidence")]


@pytest.mark.parametrize(
    ("field", "code"), [("label", "missing_label"), ("source", "missing_source")]
)
def test_missing_label_or_source_is_invalid(tmp_path: Path, field: str, code: str) -> None:
    header = "".join(line + "\n" for line in HEADER.splitlines() if not line.startswith(field))
    report = _import(tmp_path, header + f"tags:\n- address: {GENESIS}\n")
    assert _problems(report) == [(11, code)]


def test_a_tag_without_currency_is_invalid(tmp_path: Path) -> None:
    header = HEADER.replace("currency: BTC\n", "")
    report = _import(
        tmp_path, header + f"tags:\n- address: {GENESIS}\n  currency: BTC\n- address: {SEGWIT}\n"
    )
    assert report.imported == 1 and _problems(report) == [(13, "missing_currency")]


def test_inherited_bad_value_is_reported_on_the_header_line(tmp_path: Path) -> None:
    header = HEADER.replace("category: exchange", "category: bourse")
    report = _import(tmp_path, header + f"tags:\n- address: {GENESIS}\n- address: {SEGWIT}\n")
    assert report.invalid == 2
    assert _problems(report) == [(7, "unknown_category"), (7, "unknown_category")]


def test_invalid_tags_do_not_stop_the_rest_of_the_pack_or_other_packs(tmp_path: Path) -> None:
    bad = write_pack(
        tmp_path / "packs",
        "bad.yaml",
        HEADER
        + f"tags:\n- address: nope\n- address: {HYDRA}\n  category: bourse\n- address: {P2SH}\n",
    )
    good = write_pack(tmp_path / "packs", "good.yaml", HEADER + f"tags:\n- address: {GENESIS}\n")
    report = import_tagpacks(tmp_path / "data", [bad, good])
    assert (report.imported, report.invalid) == (2, 2)
    assert {t["address"] for t in list_tags(tmp_path / "data")} == {P2SH, GENESIS}


# ------------------------------------------------------------------------------- skipped
def test_non_btc_tags_are_skipped_and_counted(tmp_path: Path) -> None:
    report = _import(
        tmp_path,
        HEADER
        + f"tags:\n- address: {GENESIS}\n- address: '0xFA8E3920daF271daB92Be9B87d9998DDd94FEF08'\n"
        + "  currency: ETH\n- address: Le3gXVa4SshHs3TmdrWNC434ceDQtsjMt8\n  currency: LTC\n"
        + "- address: whatever\n  network: XMR\n",
    )
    assert (report.imported, report.skipped_non_btc, report.invalid) == (1, 3, 0)


def test_currency_is_case_insensitive_and_network_wins(tmp_path: Path) -> None:
    report = _import(
        tmp_path,
        HEADER
        + f"tags:\n- address: {GENESIS}\n  currency: btc\n- address: {SEGWIT}\n  network: ETH\n",
    )
    assert (report.imported, report.skipped_non_btc) == (1, 1)


def test_a_transaction_tag_is_skipped(tmp_path: Path) -> None:
    report = _import(tmp_path, HEADER + "tags:\n- tx_hash: " + "ab" * 32 + "\n")
    assert report.skipped == {"tx_tag": 1} and report.imported == 0


# ------------------------------------------------------------------------------ pack level
def test_a_pack_without_title_or_creator_is_rejected(tmp_path: Path) -> None:
    report = _import(
        tmp_path, HEADER.replace("creator: Tester\n", "") + f"tags:\n- address: {GENESIS}\n"
    )
    assert report.imported == 0 and report.invalid == 1
    assert _problems(report) == [(1, "missing_header_field")]
    assert report.packs[0].rejected


def test_a_yaml_syntax_error_names_its_line_and_other_files_still_import(tmp_path: Path) -> None:
    broken = write_pack(
        tmp_path / "packs", "broken.yaml", "title: x\ntags:\n- address: [unclosed\n"
    )
    good = write_pack(tmp_path / "packs", "good.yaml", HEADER + f"tags:\n- address: {GENESIS}\n")
    report = import_tagpacks(tmp_path / "data", [tmp_path / "packs"])
    (problem,) = report.errors()
    assert problem.file == str(broken) and problem.code == "yaml_error" and problem.line >= 3
    assert report.imported == 1 and good.exists()


def test_a_yaml_file_that_is_no_pack_is_reported(tmp_path: Path) -> None:
    report = _import(tmp_path, "just: a mapping\n", name="other.yaml")
    assert _problems(report) == [(1, "not_a_pack")]


def test_duplicate_tags_in_one_pack_are_kept_once(tmp_path: Path) -> None:
    report = _import(tmp_path, HEADER + f"tags:\n- address: {GENESIS}\n- address: {GENESIS}\n")
    assert (report.imported, report.duplicates) == (1, 1)
    assert [(p.line, p.code) for p in report.warnings() if p.code == "duplicate_tag"] == [
        (13, "duplicate_tag")
    ]


# ------------------------------------------------------------------- versions, idempotence
def test_reimporting_the_same_pack_changes_nothing(tmp_path: Path) -> None:
    text = HEADER + f"tags:\n- address: {GENESIS}\n- address: {SEGWIT}\n"
    first = _import(tmp_path, text)
    manifest = read_manifest(tmp_path / "data")
    second = _import(tmp_path, text)
    assert first.version == second.version == 1
    assert second.imported == 2 and second.added == 0 and second.packs[0].unchanged
    assert read_manifest(tmp_path / "data") == manifest
    assert len(list_tags(tmp_path / "data")) == 2


def test_a_changed_pack_is_a_new_version_that_replaces_its_tags(tmp_path: Path) -> None:
    _import(tmp_path, HEADER + f"tags:\n- address: {GENESIS}\n- address: {SEGWIT}\n")
    before = {t["address"]: t for t in list_tags(tmp_path / "data")}
    report = _import(tmp_path, HEADER + f"tags:\n- address: {GENESIS}\n- address: {P2SH}\n")
    assert report.version == 2 and (report.added, report.removed) == (1, 1)
    after = {t["address"]: t for t in list_tags(tmp_path / "data")}
    assert set(after) == {GENESIS, P2SH}
    assert after[GENESIS]["tag_id"] == before[GENESIS]["tag_id"]
    assert after[GENESIS]["created_at"] == before[GENESIS]["created_at"]  # first seen kept
    history = read_manifest(tmp_path / "data")["history"]
    assert [h["version"] for h in history] == [1, 2]
    old, new = history[1]["changes"][0]["previous_file"], history[1]["changes"][0]["file"]
    assert old != new and (tmp_path / "data" / "tags" / old).exists()  # versions are kept


def test_the_same_pack_in_another_folder_is_the_same_pack(tmp_path: Path) -> None:
    text = HEADER + f"tags:\n- address: {GENESIS}\n"
    a = write_pack(tmp_path / "a" / "packs", "x.yaml", text)
    b = write_pack(tmp_path / "b" / "packs", "x.yaml", text)
    import_tagpacks(tmp_path / "data", [a])
    again = import_tagpacks(tmp_path / "data", [b])
    assert again.packs[0].unchanged and len(list_tags(tmp_path / "data")) == 1


def test_tags_lookups_filter_by_label_category_and_actor(tmp_path: Path) -> None:
    actors = write_pack(tmp_path / "actors", "actors.yaml", ACTORS)
    pack = write_pack(
        tmp_path / "packs",
        "p.yaml",
        HEADER
        + f"tags:\n- address: {GENESIS}\n- address: {HYDRA}\n  label: Hydra Market\n"
        + "  category: market\n  actor: darkco\n  abuse: drugs\n",
    )
    import_tagpacks(tmp_path / "data", [actors, pack])
    data = tmp_path / "data"
    assert [t["address"] for t in list_tags(data, actor="darkco")] == [HYDRA]
    assert [t["address"] for t in list_tags(data, label="hydra")] == [HYDRA]
    assert [t["address"] for t in list_tags(data, category="drugs")] == [HYDRA]  # abuse too
    assert sorted(t["address"] for t in list_tags(data, category="service")) == sorted(
        [GENESIS, HYDRA]
    )  # narrower concepts (exchange, market) included
    assert [t["address"] for t in list_tags(data, address=f" {GENESIS} ")] == [GENESIS]


def test_dropping_a_pack_removes_its_tags_as_a_new_version(tmp_path: Path) -> None:
    from chainsleuth.tags import TagError, drop_pack

    _import(tmp_path, HEADER + f"tags:\n- address: {GENESIS}\n")
    assert drop_pack(tmp_path / "data", "pack") == 1
    assert list_tags(tmp_path / "data") == []
    assert [h["action"] for h in read_manifest(tmp_path / "data")["history"]] == ["import", "drop"]
    with pytest.raises(TagError, match="no pack named"):
        drop_pack(tmp_path / "data", "pack")
