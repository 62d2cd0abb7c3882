"""Analysts' own tags: `add_tag` and CSV import, with the same provenance fields as TagPacks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from chainsleuth.core.errors import ChainsleuthError
from chainsleuth.tags import TagError, add_tag, import_csv, import_tagpacks, list_tags, remove_tags

GENESIS = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
SEGWIT = "bc1qj6j6p0jdefl6pvdzx3kx8245yy5mz6q4luhzes"
P2SH = "3KvBX3jo69Qn8jHy44M33RYoeYcf8DdRBD"


def test_an_analyst_tag_records_who_when_source_and_confidence(tmp_path: Path) -> None:
    before = dt.datetime.now(dt.UTC)
    row = add_tag(
        tmp_path,
        GENESIS,
        label="Seller X",
        category="market",
        source="case 17, exhibit 3",
        confidence="ownership",
        actor="sellerx",
        created_by="alice",
    )
    (tag,) = list_tags(tmp_path, address=GENESIS)
    assert tag["tag_id"] == row["tag_id"]
    assert (tag["label"], tag["category"], tag["actor"], tag["source"]) == (
        "Seller X",
        "market",
        "sellerx",
        "case 17, exhibit 3",
    )
    assert (tag["confidence"], tag["confidence_level"]) == ("ownership", 100)
    assert (tag["origin"], tag["tagpack"], tag["created_by"]) == ("analyst", "analyst", "alice")
    assert before - dt.timedelta(seconds=1) <= tag["created_at"] <= dt.datetime.now(dt.UTC)


def test_an_analyst_tag_without_confidence_gets_forensic_investigation(tmp_path: Path) -> None:
    add_tag(tmp_path, GENESIS, label="x", source="case 1", created_by="bob")
    (tag,) = list_tags(tmp_path)
    assert (tag["confidence"], tag["confidence_level"]) == ("forensic_investigation", 70)


def test_adding_the_same_tag_again_updates_it(tmp_path: Path) -> None:
    first = add_tag(tmp_path, GENESIS, label="x", source="case 1", category="exchange")
    second = add_tag(tmp_path, GENESIS, label="x", source="case 1", category="market")
    add_tag(tmp_path, SEGWIT, label="y", source="case 1")
    assert first["tag_id"] == second["tag_id"]
    tags = list_tags(tmp_path)
    assert len(tags) == 2
    assert [t["category"] for t in tags if t["address"] == GENESIS] == ["market"]


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"address": "nope"}, "malformed address"),
        ({"category": "bourse"}, "category 'bourse'"),
        ({"confidence": "sure"}, "confidence 'sure'"),
        ({"address": "TUCsTq7TofTCJRRoHk6RvhMoS2mJLm5Yzq"}, "Tron"),
        ({"label": " "}, "no label"),
    ],
)
def test_an_invalid_analyst_tag_is_refused_with_the_reason(
    tmp_path: Path, kwargs: dict[str, str], reason: str
) -> None:
    args = {"address": GENESIS, "label": "x", "source": "case 1", **kwargs}
    address = args.pop("address")
    with pytest.raises(TagError, match=reason) as info:
        add_tag(tmp_path, address, **args)  # type: ignore[arg-type]
    assert isinstance(info.value, ChainsleuthError)
    assert list_tags(tmp_path) == []


def test_an_analyst_may_name_a_new_actor(tmp_path: Path) -> None:
    row = add_tag(tmp_path, GENESIS, label="x", source="s", actor="new_actor")
    assert row["actor"] == "new_actor" and "new_actor" in row["warnings"][0]


def test_csv_import_stores_every_valid_row_and_reports_bad_rows_by_line(tmp_path: Path) -> None:
    path = tmp_path / "case-17.csv"
    path.write_text(
        "address,label,category,source,confidence,actor,created_by\n"
        f"{GENESIS},Seller X,market,case 17,ownership,sellerx,alice\n"
        f"{SEGWIT},Exchange Y,exchange,case 17,,,\n"  # no confidence: --confidence default
        "nope,Bad,market,case 17,forensic,,\n"
        f'{P2SH},"Label, with comma",bourse,case 17,forensic,,\n'
    )
    report = import_csv(tmp_path / "data", path, confidence="forensic_investigation")
    assert (report.imported, report.invalid) == (2, 2)
    assert [(p.line, p.code) for p in report.errors()] == [
        (4, "malformed_address"),
        (5, "unknown_category"),
    ]
    tags = {t["address"]: t for t in list_tags(tmp_path / "data")}
    assert tags[GENESIS]["created_by"] == "alice" and tags[GENESIS]["confidence"] == "ownership"
    assert tags[SEGWIT]["confidence"] == "forensic_investigation"
    assert tags[GENESIS]["tagpack"] == "csv/case-17" and tags[GENESIS]["origin"] == "analyst"
    assert tags[GENESIS]["pack_line"] == 2


def test_csv_reimport_replaces_the_file_s_tags_without_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text(f"address,label,source,confidence\n{GENESIS},A,s,forensic\n")
    import_csv(tmp_path / "data", path)
    again = import_csv(tmp_path / "data", path)
    assert again.packs[0].unchanged and len(list_tags(tmp_path / "data")) == 1
    path.write_text(f"address,label,source,confidence\n{SEGWIT},B,s,forensic\n")
    import_csv(tmp_path / "data", path)
    assert [t["address"] for t in list_tags(tmp_path / "data")] == [SEGWIT]


def test_csv_without_address_column_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("addr,label\nx,y\n")
    report = import_csv(tmp_path / "data", path)
    assert [p.code for p in report.errors()] == ["missing_header_field"]
    assert report.packs[0].rejected


def test_csv_files_can_be_given_to_import_tagpacks(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text(f"address,label,source,confidence\n{GENESIS},A,s,forensic\n")
    report = import_tagpacks(tmp_path / "data", [path])
    assert report.imported == 1 and report.packs[0].name == "csv/x"


def test_removing_an_analyst_tag_keeps_it_in_the_history(tmp_path: Path) -> None:
    row = add_tag(tmp_path, GENESIS, label="x", source="s")
    add_tag(tmp_path, SEGWIT, label="y", source="s")
    assert remove_tags(tmp_path, [row["tag_id"]]) == 1
    assert [t["address"] for t in list_tags(tmp_path)] == [SEGWIT]
    from chainsleuth.tags import history

    assert [h["action"] for h in history(tmp_path)] == ["add", "add", "remove"]


def test_tagpack_tags_cannot_be_removed_one_by_one(tmp_path: Path) -> None:
    pack = tmp_path / "p.yaml"
    pack.write_text(
        "title: t\ncreator: c\nlabel: l\nsource: s\ncurrency: BTC\nconfidence: forensic\n"
        f"tags:\n- address: {GENESIS}\n"
    )
    import_tagpacks(tmp_path / "data", [pack])
    (tag,) = list_tags(tmp_path / "data")
    with pytest.raises(TagError, match="re-import"):
        remove_tags(tmp_path / "data", [tag["tag_id"]])
