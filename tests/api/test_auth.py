"""Keys, scopes, the audit log, rate limits and the loopback rule, on a store with a key store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from chainsleuth.api.app import create_app
from chainsleuth.cli import app as cli_app
from tests.api.conftest import API, error_model


@pytest.fixture(scope="module")
def keyed(small_world: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("keyed") / "data"
    shutil.copytree(small_world[1], data)
    return data


def _create(data: Path, scope: str) -> str:
    result = CliRunner().invoke(
        cli_app, ["--data", str(data), "keys", "create", "--scope", scope, "--name", scope]
    )
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]  # alone on the last line
    assert key.startswith("cs_") and " " not in key and len(key) > 40
    assert key[3].isalnum()  # the key id never reads as a CLI option
    return key


def test_serve_refuses_another_interface_without_keys(tmp_path: Path, keyed: Path) -> None:
    bare = tmp_path / "data"
    shutil.copytree(keyed, bare, ignore=shutil.ignore_patterns("api"))
    result = CliRunner().invoke(
        cli_app, ["--data", str(bare), "serve", "--host", "0.0.0.0", "--port", "1"]
    )
    assert result.exit_code != 0
    message = str(result.exception)
    assert "refusing to listen on 0.0.0.0 without API keys" in message
    assert "\n" not in message


def test_keys_scopes_audit_and_hash_at_rest(keyed: Path) -> None:
    read = _create(keyed, "read")
    investigate = _create(keyed, "investigate")
    admin = _create(keyed, "admin")
    for key in (read, investigate, admin):  # only hashes at rest, nowhere in the data dir
        for f in keyed.rglob("*"):
            if f.is_file() and f.stat().st_size < 50_000_000:
                assert key.encode() not in f.read_bytes(), f
    listed = CliRunner().invoke(cli_app, ["--data", str(keyed), "keys", "list", "--json"])
    assert "sha256" not in listed.output and read[3:11] in listed.output

    with TestClient(create_app(keyed, rate=0)) as c:
        assert c.get(f"{API}/health").json()["auth"] == "keys"  # health needs no key
        r = c.get(f"{API}/status")
        assert r.status_code == 401 and error_model(r.json())
        assert r.headers["www-authenticate"] == "Bearer"
        bad = c.get(f"{API}/status", headers={"Authorization": "Bearer cs_nope"})
        assert bad.status_code == 401 and error_model(bad.json())

        def h(key: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {key}"}

        me = c.get(f"{API}/me", headers=h(read)).json()
        assert me == {"key_id": read[3:11], "scope": "read", "auth": "keys"}
        assert c.get(f"{API}/status", headers=h(read)).status_code == 200
        tag = {"address": "x", "label": "y", "source": "z"}
        r = c.post(f"{API}/tags", json=tag, headers=h(read))
        assert r.status_code == 403 and error_model(r.json())
        assert c.post(f"{API}/tags", json=tag, headers=h(investigate)).status_code == 400
        for key in (read, investigate):
            assert c.get(f"{API}/audit", headers=h(key)).status_code == 403
            r = c.post(f"{API}/sql", json={"query": "SELECT 1"}, headers=h(key))
            assert r.status_code == 403
        r = c.post(f"{API}/sql", json={"query": "SELECT 42 AS answer"}, headers=h(admin))
        assert r.status_code == 200 and r.json()["rows"] == [[42]]
        log = c.get(f"{API}/audit?limit=1000", headers=h(admin)).json()["items"]
        # what a POST asked is in the log too: the SQL text, the address tagged
        asked = [e.get("detail") for e in log if e["path"] == f"{API}/sql" and e["status"] == 200]
        assert asked == [{"sql": "SELECT 42 AS answer", "limit": 1000}]
        tagged = [e for e in log if e["path"] == f"{API}/tags" and e["status"] == 400]
        assert tagged and tagged[0]["detail"] == {"address": "x", "label": "y"}
        seen = {(e["key_id"], e["path"], e["status"]) for e in log}
        assert ("anonymous", f"{API}/status", 401) in seen
        assert (read[3:11], f"{API}/status", 200) in seen
        assert (read[3:11], f"{API}/tags", 403) in seen
        assert (investigate[3:11], f"{API}/audit", 403) in seen

        revoked = CliRunner().invoke(cli_app, ["--data", str(keyed), "keys", "revoke", read[3:11]])
        assert revoked.exit_code == 0, revoked.output
        assert c.get(f"{API}/status", headers=h(read)).status_code == 401
    lines = (keyed / "api" / "audit.jsonl").read_text().splitlines()
    assert len(lines) >= len(log)


def test_rate_limit_per_key(keyed: Path) -> None:
    key = _create(keyed, "read")
    other = _create(keyed, "read")
    with TestClient(create_app(keyed, rate=1.0, burst=3)) as c:
        codes = [
            c.get(f"{API}/me", headers={"Authorization": f"Bearer {key}"}).status_code
            for _ in range(5)
        ]
        assert codes[:3] == [200, 200, 200] and codes[-1] == 429
        r = c.get(f"{API}/me", headers={"Authorization": f"Bearer {key}"})
        assert error_model(r.json()) and int(r.headers["retry-after"]) >= 1
        # another key has its own bucket
        assert c.get(f"{API}/me", headers={"Authorization": f"Bearer {other}"}).status_code == 200


def test_cors_only_for_a_named_origin(keyed: Path) -> None:
    with TestClient(create_app(keyed, cors_origins=["http://127.0.0.1:9999"])) as c:
        r = c.get(f"{API}/health", headers={"Origin": "http://127.0.0.1:9999"})
        assert r.headers["access-control-allow-origin"] == "http://127.0.0.1:9999"
        r = c.get(f"{API}/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers


def test_a_network_server_never_falls_back_to_open(tmp_path: Path, keyed: Path) -> None:
    bare = tmp_path / "data"
    shutil.copytree(keyed, bare, ignore=shutil.ignore_patterns("api"))
    with TestClient(create_app(bare, require_keys=True)) as c:
        assert c.get(f"{API}/health").json()["auth"] == "keys"
        r = c.get(f"{API}/status")
        assert r.status_code == 401 and error_model(r.json())
