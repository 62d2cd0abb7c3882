"""Seed files as a careless user gives them: binary, words for addresses, a quote left open,
an address of another network. One clear line, never a traceback; `--skip-invalid` goes on and
case.json lists every skipped line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chainsleuth.cases.investigate import read_seed_addresses
from chainsleuth.cases.seeds import check_seeds
from chainsleuth.cluster.engine import cluster_store
from chainsleuth.core.errors import ChainsleuthError
from chainsleuth.store.ingest import ingest_blocks_dir
from chainsleuth.store.store import Store
from tests.chainbuilder import ChainBuilder, p2wpkh, spend

BTC = 10**8
MAINNET = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"  # valid, but not a regtest address


# A hand-built chain, not the session's simulated world: the tests need these exact shapes.
@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict:
    chain = ChainBuilder()
    funding = [chain.add_block(miner=p2wpkh(f"dep{k}")) for k in range(2)]
    chain.add_block([spend([(funding[0].txs[0], 0)], [(49 * BTC, p2wpkh("admin"))])])
    root = tmp_path_factory.mktemp("seeds")
    ingest_blocks_dir(chain.write(root / "blocks"), root / "store")
    cluster_store(root / "store", "multi_input", from_scratch=True)
    deposits = [
        Store.open(root / "store")
        .sql("SELECT address FROM outputs WHERE script_pubkey = ?", [p2wpkh(f"dep{k}")])
        .to_pylist()[0]["address"]
        for k in range(2)
    ]
    return {"data": root / "store", "deposits": deposits}


def careless(path: Path, deposits: list[str]) -> Path:
    path.write_text(
        "address,note\n"
        f"{deposits[0]},first deposit\n"  # line 2
        "notanaddress,a word\n"  # line 3
        "\n"
        f'"{deposits[1]},a quote never closed\n'  # line 5
        f"{MAINNET},another network\n"  # line 6
        f" {deposits[1]} ,spaces\n"  # line 7
    )
    return path


def investigate(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chainsleuth", "--data", str(data), "investigate", *args]
        + ["--no-report", "--max-hops", "3"],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_every_invalid_line_is_named_with_its_number(store: dict, tmp_path: Path) -> None:
    check = check_seeds(careless(tmp_path / "s.csv", store["deposits"]), "regtest")
    assert check.n_rows == 5
    assert check.invalid == [
        {"line": 3, "value": "notanaddress"},
        {"line": 5, "value": f"{store['deposits'][1]},a quote never closed"},
        {"line": 6, "value": MAINNET},
    ]
    assert check_seeds(tmp_path / "s.csv", "main").invalid[-1]["line"] == 7  # regtest there
    # the quote left open does not swallow the lines after it
    assert store["deposits"][1] in read_seed_addresses(tmp_path / "s.csv")


def test_invalid_seeds_stop_the_case_with_one_line(store: dict, tmp_path: Path) -> None:
    seeds = careless(tmp_path / "s.csv", store["deposits"])
    done = investigate(store["data"], "--seeds", str(seeds), "-o", str(tmp_path / "case"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    err = done.stderr
    assert str(seeds) in err and "3 of 5 lines are not valid regtest addresses" in err
    assert "line 3: 'notanaddress'" in err and "--skip-invalid" in err
    assert not (tmp_path / "case").exists()


def test_skip_invalid_goes_on_and_lists_them_all_in_case_json(store: dict, tmp_path: Path) -> None:
    seeds = careless(tmp_path / "s.csv", store["deposits"])
    case = tmp_path / "case"
    done = investigate(store["data"], "--seeds", str(seeds), "-o", str(case), "--skip-invalid")
    assert done.returncode == 0, done.stderr
    assert "skipping invalid seeds: 3 of 5 lines" in " ".join(done.stdout.split())
    meta = json.loads((case / "case.json").read_text())
    assert [x["line"] for x in meta["inputs"]["seeds"]["invalid"]] == [3, 5, 6]
    assert meta["inputs"]["seeds"]["invalid"][0]["value"] == "notanaddress"
    assert meta["service"]["seed_addresses_in_store"] == 2  # both deposits, nothing else


def test_valid_seeds_record_an_empty_list(store: dict, tmp_path: Path) -> None:
    seeds = tmp_path / "ok.csv"
    seeds.write_text("address\n" + "\n".join(store["deposits"]) + "\n")
    done = investigate(store["data"], "--seeds", str(seeds), "-o", str(tmp_path / "case"))
    assert done.returncode == 0, done.stderr
    meta = json.loads((tmp_path / "case" / "case.json").read_text())
    assert meta["inputs"]["seeds"]["invalid"] == []


@pytest.mark.parametrize(
    "content",
    [bytes(range(256)) * 8, b"address\n\xff\xfe\x00garbage\n", b"\x89PNG\r\n\x1a\n" + bytes(64)],
    ids=["random-bytes", "bad-utf8-after-header", "png"],
)
def test_a_binary_seeds_file_is_one_line_naming_it(
    store: dict, tmp_path: Path, content: bytes
) -> None:
    seeds = tmp_path / "seeds.bin"
    seeds.write_bytes(content)
    with pytest.raises(ChainsleuthError, match="not a text file"):
        read_seed_addresses(seeds)
    done = investigate(store["data"], "--seeds", str(seeds), "-o", str(tmp_path / "case"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert str(seeds) in done.stderr and "not a text file (byte offset" in done.stderr


def test_a_case_that_fails_in_setup_leaves_no_folder_it_made(store: dict, tmp_path: Path) -> None:
    """The library call (not only the CLI's checks before it): investigate() makes the case
    folder before its setup (the scratch files live there); a setup that fails removes the
    folder it made, and never one that was there before."""
    from chainsleuth.cases import investigate as inv

    seeds = tmp_path / "s.csv"
    seeds.write_text("addr\n" + "\n".join(store["deposits"]) + "\n")  # no `address` column
    with pytest.raises(ChainsleuthError, match="no column `address`"):
        inv.investigate(store["data"], seeds, tmp_path / "new" / "case", report=False)
    assert not (tmp_path / "new" / "case").exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    with pytest.raises(ChainsleuthError, match="no column `address`"):
        inv.investigate(store["data"], seeds, kept, report=False)
    assert kept.is_dir()
