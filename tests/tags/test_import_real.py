"""Importing the real public TagPacks (../shared/data/graphsense-tagpacks): exact counts, every
invalid tag with its file, line and reason, and idempotent re-import.

The expected numbers were derived by reading the data, not by running the importer: every
`packs/*.yaml` was loaded with `yaml.CSafeLoader`, each tag merged over its pack header, and
plain rules applied (the same rules `test_independent_recount_of_the_real_packs` re-applies
below, slowly, with nothing of chainsleuth.tags):

- 53 packs hold 502,792 tag entries; 3,465 have a currency other than BTC (ETH 3,087, LTC 55,
  XMR 36, TRX 36, ...): skipped, not invalid;
- 499,327 BTC tags (PROVENANCE.md says the same);
- 924 BTC tags have no confidence, neither on the tag nor in the header: all of ofac.yaml (385),
  the BTC tags of etherscamdb_tagpack.yaml (305) and miners_additional.yaml (234). PROVENANCE's
  "missing on 3,923 tags" counts every currency: etherscamdb's 2,999 ETH tags lack it too;
- 10 BTC tags hold an address that is not a Bitcoin address: one Tron address (version byte
  0x41) in ofac.yaml and nine malformed strings (bad checksums, lower-cased or truncated
  base58, a hex string);
- two of those ten are also among the 924 (ofac's Tron address, etherscamdb's bad address), so
  924 + 10 - 2 = 932 tags are invalid and 499,327 - 932 = 498,395 are imported;
- no label, source, category, abuse or actor problem: every category and abuse value is a
  concept of the taxonomy, and every actor a BTC tag names is defined in the ActorPack;
- the ActorPack defines 3,813 actors (447 with `categories: []`, which is allowed).
"""

from __future__ import annotations

import collections
import functools
from pathlib import Path

import pytest

from chainsleuth.tags import ImportReport, import_tagpacks
from tests.tags.conftest import TAGPACKS, TAXONOMIES

N_TAG_ENTRIES = 502_792
N_NON_BTC = 3_465
N_BTC = 499_327
N_INVALID = 932
N_IMPORTED = 498_395
N_ACTORS = 3_813

MISSING_CONFIDENCE = {
    "ofac.yaml": 385,
    "etherscamdb_tagpack.yaml": 305,
    "miners_additional.yaml": 234,
}

# (file, line of the `address:` key, code, address)
BAD_ADDRESSES = [
    ("etherscamdb_tagpack.yaml", 15521, "malformed_address", "1Mn386ue8o3mW9866octLNP8HFqcYsphJCV"),
    ("ofac.yaml", 1069, "non_btc_address", "TUCsTq7TofTCJRRoHk6RvhMoS2mJLm5Yzq"),
    ("plustoken.yaml", 11, "malformed_address", "1MFgcyJ7ZNSknbTBRaih6zWDE6V1A64tRYs"),
    ("plustoken.yaml", 31, "malformed_address", "14bwh6gmvol5ntwbvxqjkjdtzv4y5ebtvm"),
    ("sextortion_excello.yaml", 2867, "malformed_address", "3CD19JE8F4C48L43E3A5TH8XD45JLRXUL"),
    ("sextortion_excello.yaml", 6485, "malformed_address", "1GL9JtXPRTPetxgiJ8UcgrEECp12spD4t"),
    ("sextortion_excello.yaml", 10617, "malformed_address", "1MJzarWdCR8dXGt6vpK62f7MxcWYcVynM"),
    ("sextortion_excello.yaml", 12935, "malformed_address", "1AzdzwWHaJXytimxenzi45JVtY4FsXwLZ"),
    ("sextortion_excello.yaml", 20861, "malformed_address", "1MK4uue11JnVxjUQhq19KNSpAuyaFqBwM"),
    ("sextortion_excello.yaml", 20871, "malformed_address", "3daa7ab7451f4215c9fe53c6c739e8e534"),
]  # fmt: skip


def test_real_packs_import_the_exact_numbers_of_tags(
    real_import: tuple[Path, ImportReport],
) -> None:
    _, report = real_import
    assert report.imported == N_IMPORTED
    assert report.skipped_non_btc == N_NON_BTC
    assert report.invalid == N_INVALID
    assert dict(report.skipped) == {"non_btc": N_NON_BTC}
    assert report.imported + report.invalid + report.skipped_non_btc == N_TAG_ENTRIES
    assert report.duplicates == 0


def test_real_packs_fail_for_missing_confidence_and_bad_addresses_only(
    real_import: tuple[Path, ImportReport],
) -> None:
    _, report = real_import
    assert report.problems_by_code("error") == {
        "missing_confidence": 924,
        "malformed_address": 9,
        "non_btc_address": 1,
    }
    assert report.problems_by_code("warning") == {}


def test_missing_confidence_is_reported_per_pack_without_a_confidence(
    real_import: tuple[Path, ImportReport],
) -> None:
    _, report = real_import
    per_file = collections.Counter(
        Path(p.file).name for p in report.problems if p.code == "missing_confidence"
    )
    assert per_file == MISSING_CONFIDENCE


def test_each_bad_address_is_reported_with_its_file_line_and_reason(
    real_import: tuple[Path, ImportReport],
) -> None:
    _, report = real_import
    found = sorted(
        (Path(p.file).name, p.line, p.code, p.message)
        for p in report.problems
        if p.code in ("malformed_address", "non_btc_address")
    )
    assert [(f, line, code) for f, line, code, _ in found] == sorted(
        (f, line, code) for f, line, code, _ in BAD_ADDRESSES
    )
    for (file, line, _, address), (_, _, _, message) in zip(
        sorted(BAD_ADDRESSES), found, strict=True
    ):
        assert address in message
        # the line is where the address is written in the file
        text = (TAGPACKS / "packs" / file).read_text().splitlines()[line - 1]
        assert text.split("address:", 1)[1].strip().strip("'\"") == address


def test_the_tron_address_is_named_as_such(real_import: tuple[Path, ImportReport]) -> None:
    _, report = real_import
    (tron,) = [p for p in report.problems if p.code == "non_btc_address"]
    assert "Tron" in tron.message and "not a Bitcoin address" in tron.message


def test_a_tag_with_two_errors_lists_both(real_import: tuple[Path, ImportReport]) -> None:
    _, report = real_import
    at_1069 = {p.code for p in report.problems if p.file.endswith("ofac.yaml") and p.line == 1069}
    assert at_1069 == {"missing_confidence", "non_btc_address"}


def test_real_actorpack_imports_every_actor(real_import: tuple[Path, ImportReport]) -> None:
    _, report = real_import
    assert report.actors == N_ACTORS
    (actorpack,) = [p for p in report.packs if p.kind == "actorpack"]
    assert actorpack.rows == N_ACTORS and not actorpack.rejected


def test_real_tags_keep_their_pack_and_inherited_fields(
    real_import: tuple[Path, ImportReport],
) -> None:
    from chainsleuth.tags import list_tags

    data_dir, _ = real_import
    (tag,) = list_tags(data_dir, address="1Archive1n2C579dMsAu3iC6tWzuQJz8dN")
    assert tag["label"] == "Internet Archive"  # from the header of demo.yaml
    assert tag["category"] == "organization"
    assert tag["actor"] == "internet_archive"
    assert tag["confidence"] == "service_data" and tag["confidence_level"] == 50
    assert tag["source"] == "https://archive.org/donate/cryptocurrency"
    assert tag["tagpack"] == "demo" and tag["pack_line"] == 12
    assert tag["created_by"] == "GraphSense Core Team"


def test_reimporting_unchanged_real_packs_writes_nothing(
    real_import: tuple[Path, ImportReport],
) -> None:
    data_dir, first = real_import
    files_before = sorted(p for p in (data_dir / "tags").rglob("*") if p.is_file())
    manifest_before = (data_dir / "tags" / "manifest.json").read_text()
    again = import_tagpacks(
        data_dir,
        [TAGPACKS / "packs" / name for name in ("ofac.yaml", "plustoken.yaml", "hydra.yaml")],
    )
    assert again.version == first.version
    assert all(p.unchanged for p in again.packs)
    assert again.added == 0 and again.removed == 0
    assert sorted(p for p in (data_dir / "tags").rglob("*") if p.is_file()) == files_before
    assert (data_dir / "tags" / "manifest.json").read_text() == manifest_before


@functools.cache
def _vocabularies() -> tuple[set[str], set[str], set[str]]:
    """Concept ids, confidence ids and actor ids, read from the shared files (once per process)."""
    import csv

    import yaml

    concepts = {
        v["id"]
        for k, v in yaml.safe_load(
            (TAXONOMIES / "graphsense" / "concepts.yaml").read_text()
        ).items()
        if k != "scheme"
    }
    with open(TAXONOMIES / "graphsense" / "confidence.csv", newline="") as f:
        confidences = {row[0] for row in list(csv.reader(f))[1:]}
    actors = {
        a["id"]
        for a in yaml.load(
            (TAGPACKS / "actors" / "graphsense.actorpack.yaml").read_bytes(),
            Loader=yaml.CBaseLoader,
        )["actors"]
    }
    return concepts, confidences, actors


def _recount_file(path: Path) -> collections.Counter[str]:
    """Counts for one pack with PyYAML (all scalars as text), the shared taxonomy files and
    plain rules; nothing of chainsleuth.tags is used."""
    import yaml

    from chainsleuth.core.address import AddressError, decode_address

    concepts, confidences, actors = _vocabularies()
    counts: collections.Counter[str] = collections.Counter()
    pack = yaml.load(path.read_bytes(), Loader=yaml.CBaseLoader)
    header = {k: v for k, v in pack.items() if k != "tags"}
    for entry in pack["tags"]:
        tag = {**header, **entry}
        counts["entries"] += 1
        if str(tag.get("currency")).upper() != "BTC":
            counts["non_btc"] += 1
            continue
        bad = []
        try:
            if "main" not in decode_address(tag["address"])[2]:
                bad.append("network")
        except AddressError:
            bad.append("address")
        if tag.get("confidence") not in confidences:
            bad.append("confidence")
        for key in ("category", "abuse"):
            if tag.get(key) is not None and tag[key] not in concepts:
                bad.append(key)
        if not tag.get("label") or not tag.get("source"):
            bad.append("label/source")
        if tag.get("actor") is not None and tag["actor"] not in actors:
            counts["unknown_actor"] += 1
        counts["invalid" if bad else "imported"] += 1
        for b in bad:
            counts[b] += 1
    counts["actors"] = len(actors)
    return counts


@pytest.mark.slow
def test_independent_recount_of_the_real_packs() -> None:
    """The numbers above, recounted independently (one process per CPU, about 10 s)."""
    import os
    from concurrent.futures import ProcessPoolExecutor

    files = sorted((TAGPACKS / "packs").glob("*.yaml"), key=lambda p: -p.stat().st_size)
    counts: collections.Counter[str] = collections.Counter()
    with ProcessPoolExecutor(max_workers=max(2, min(8, os.cpu_count() or 2))) as pool:
        for c in pool.map(_recount_file, files):
            actors = c.pop("actors")
            counts.update(c)
    assert counts["entries"] == N_TAG_ENTRIES
    assert counts["non_btc"] == N_NON_BTC
    assert counts["invalid"] == N_INVALID
    assert counts["imported"] == N_IMPORTED
    assert (counts["confidence"], counts["address"]) == (924, 10)
    assert counts["unknown_actor"] == 0 and actors == N_ACTORS
