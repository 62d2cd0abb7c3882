"""`chainsleuth tags ...` and `chainsleuth entity` through the real CLI (typer app and process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from chainsleuth.cli import app
from tests.tags.conftest import store_addresses, write_clusters, write_pack

ACTORS = (
    "title: t\ncreator: c\nlastmod: 2024-01-01\nactors:\n- id: acme\n  label: ACME\n"
    "  uri: https://acme.example\n  categories: [exchange]\n"
)


def _run(data: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["--data", str(data), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _pack(folder: Path, addresses: list[str]) -> Path:
    tags = "".join(f"- address: {a}\n" for a in addresses)
    return write_pack(
        folder,
        "acme.yaml",
        "title: ACME tags\ncreator: tester\nlabel: ACME hot wallet\nsource: https://acme.example\n"
        f"currency: BTC\ncategory: exchange\nconfidence: service_data\nactor: acme\ntags:\n{tags}"
        "- address: nope\n",
    )


def test_import_add_list_and_entity_through_the_cli(store_dir: Path) -> None:
    ids = store_addresses(store_dir)
    write_clusters(store_dir, [[9, 555, 533]])
    actors = write_pack(store_dir.parent / "actors", "actors.yaml", ACTORS)
    pack = _pack(store_dir.parent / "packs", [ids[9]])
    out = json.loads(_run(store_dir, "tags", "import", str(actors), str(pack), "--json"))
    assert (out["imported"], out["invalid"], out["actors"]) == (1, 1, 1)
    assert out["errors_by_code"] == {"malformed_address": 1}
    (problem,) = out["problems"]
    assert problem["line"] == 11 and problem["file"] == str(pack)

    added = json.loads(
        _run(store_dir, "tags", "add", ids[555], "--label", "ACME deposit", "--category",
             "exchange", "--source", "case 1", "--actor", "acme", "--by", "alice", "--json")
    )  # fmt: skip
    assert added["created_by"] == "alice" and added["confidence"] == "forensic_investigation"

    by_address = json.loads(_run(store_dir, "tags", "list", "--address", ids[9], "--json"))
    assert [t["label"] for t in by_address] == ["ACME hot wallet"]
    by_actor = json.loads(_run(store_dir, "tags", "list", "--actor", "acme", "--json"))
    assert len(by_actor) == 2
    by_category = json.loads(_run(store_dir, "tags", "list", "--category", "service", "--json"))
    assert len(by_category) == 2
    cluster = json.loads(_run(store_dir, "tags", "list", "--cluster", ids[533], "--json"))
    assert cluster["cluster"]["cluster_id"] == 9 and len(cluster["tags"]) == 2

    info = json.loads(_run(store_dir, "entity", "ACME", "--json"))
    assert info["actor"] == "acme" and [c["cluster_id"] for c in info["clusters"]] == [9]
    assert info["totals"]["n_addresses"] == 3

    text = _run(store_dir, "entity", "acme")
    assert "Entity acme" in text and "received" in text
    shown = _run(store_dir, "tags", "list", "--cluster", "9")
    assert "Cluster attribution" in shown and "2 tag(s)" in shown
    assert "1 tag(s)" in _run(store_dir, "tags", "list", "--label", "deposit")
    assert "version" in _run(store_dir, "tags", "history")
    assert "tagged cluster" in _run(store_dir, "tags", "recompute")


def test_import_prints_counts_and_problems(tmp_path: Path) -> None:
    pack = _pack(tmp_path / "packs", ["1Archive1n2C579dMsAu3iC6tWzuQJz8dN"])
    problems = tmp_path / "problems.csv"
    text = _run(tmp_path / "data", "tags", "import", str(pack), "--problems", str(problems))
    assert "1 tags imported" in text and "malformed_address 1" in text
    rows = problems.read_text().splitlines()
    assert rows[0] == "file,line,severity,code,message"
    assert any(r.startswith(f"{pack},11,error,malformed_address") for r in rows)
    assert any(r.startswith(f"{pack},8,warning,unknown_actor") for r in rows)


def test_a_user_error_is_one_line_without_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from chainsleuth.cli import main; main()", "--data",
         str(tmp_path), "tags", "add", "not-an-address", "--label", "x", "--category", "user", "--source", "y"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "500"},  # rich wraps at the terminal width otherwise
    )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "malformed address" in lines[0], result.stderr
