"""Cases started through the API: `investigate` in one background worker thread.

Each case has a folder `DATA/api/cases/<case_id>/` holding the uploaded `seeds.csv`,
`status.json` (status, progress, times, error; replaced atomically on every change) and, under
`files/`, what `investigate` writes. One case runs at a time (a case reads the whole chain);
the others wait in order. A case left queued or running by a stopped server is marked failed
when the next server starts, so a status never stays "running" for ever.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import queue
import re
import secrets
import threading
from pathlib import Path
from typing import Any

from chainsleuth.api.security import api_dir
from chainsleuth.core.errors import ChainsleuthError

CASE_ID = re.compile(r"^c[0-9]{8}-[0-9a-f]{8}$")
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")
MAX_SEEDS_BYTES = 20 * 1024 * 1024


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class CaseRunner:
    """Queue, run and report the investigations of one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.root = api_dir(self.data_dir) / "cases"
        self._queue: queue.Queue[str] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._mark_orphans()

    def _mark_orphans(self) -> None:
        if not self.root.exists():
            return
        for path in self.root.glob("*/status.json"):
            status = json.loads(path.read_text())
            if status["status"] in ("queued", "running"):
                status.update(
                    status="failed", finished=_now(), error="the server stopped during the case"
                )
                self._write(path.parent.name, status)

    def folder(self, case_id: str) -> Path:
        if not CASE_ID.match(case_id) or not (self.root / case_id / "status.json").exists():
            raise ChainsleuthError(f"no case {case_id!r}")
        return self.root / case_id

    def _write(self, case_id: str, status: dict[str, Any]) -> None:
        path = self.root / case_id / "status.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(status, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)

    def status(self, case_id: str) -> dict[str, Any]:
        status: dict[str, Any] = json.loads((self.folder(case_id) / "status.json").read_text())
        return status

    def all(self) -> list[dict[str, Any]]:
        if not self.root.exists():
            return []
        ids = sorted(
            (p.parent.name for p in self.root.glob("*/status.json")), reverse=True
        )  # newest first: ids start with the date
        return [self.status(i) for i in ids if CASE_ID.match(i)]

    def start(self, seeds: bytes, options: dict[str, Any], name: str | None, by: str) -> str:
        """Queue a case; returns its id. `options` are investigate's keyword arguments."""
        if len(seeds) > MAX_SEEDS_BYTES:
            raise ChainsleuthError(f"the seed file is over {MAX_SEEDS_BYTES:,} bytes")
        case_id = f"c{dt.datetime.now(dt.UTC):%Y%m%d}-{secrets.token_hex(4)}"
        folder = self.root / case_id
        folder.mkdir(parents=True)
        (folder / "seeds.csv").write_bytes(seeds)
        self._write(
            case_id,
            {
                "case_id": case_id,
                "name": name or case_id,
                "status": "queued",
                "progress": {"step": "queued", "done": 0, "total": None},
                "created": _now(),
                "created_by": by,
                "started": None,
                "finished": None,
                "error": None,
                "options": options,
                "summary": None,
            },
        )
        self._queue.put(case_id)
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="cases", daemon=True)
                self._thread.start()
        return case_id

    def close(self, timeout: float = 30.0) -> None:
        """Wait for the worker to finish its case (it stops once the queue is empty)."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _work(self) -> None:
        while True:
            try:
                case_id = self._queue.get(timeout=1.0)
            except queue.Empty:
                return
            self._run(case_id)

    def _run(self, case_id: str) -> None:
        from chainsleuth.cases.investigate import investigate
        from chainsleuth.cases.seeds import check_seeds, record_invalid_seeds
        from chainsleuth.store.store import Store

        status = self.status(case_id)
        status.update(status="running", started=_now())
        self._write(case_id, status)
        folder = self.root / case_id
        options = dict(status["options"])
        skip_invalid = options.pop("skip_invalid", False)

        def progress(step: str, done: int, total: int | None) -> None:
            status["progress"] = {"step": step, "done": done, "total": total}
            self._write(case_id, status)

        try:
            seeds = folder / "seeds.csv"
            check = check_seeds(seeds, Store.open(self.data_dir).network.name)
            if check.invalid and not skip_invalid:
                raise ChainsleuthError(
                    f"seeds.csv: {check.describe()}; fix them, or start the case with "
                    "skip_invalid=true"
                )
            try:
                summary = investigate(
                    self.data_dir, seeds, folder / "files", progress=progress, **options
                )
            except ChainsleuthError as e:
                if not options.get("pdf") or "PDF" not in str(e) and "Pango" not in str(e):
                    raise
                options["pdf"] = False  # no Pango here: the case still gives report.html
                summary = investigate(
                    self.data_dir, seeds, folder / "files", progress=progress, **options
                )
            record_invalid_seeds(folder / "files" / "case.json", check)
            status.update(
                status="done",
                finished=_now(),
                progress={"step": "done", "done": 1, "total": 1},
                summary={
                    k: (str(v) if isinstance(v, Path) else v)
                    for k, v in summary.__dict__.items()
                    if k != "out_dir"
                },
            )
        except ChainsleuthError as e:
            status.update(status="failed", finished=_now(), error=" ".join(str(e).split()))
        except Exception as e:  # a bug: the case fails with its type, the server goes on
            status.update(
                status="failed", finished=_now(), error=f"internal error: {type(e).__name__}: {e}"
            )
        self._write(case_id, status)

    def files(self, case_id: str) -> list[dict[str, Any]]:
        out = self.folder(case_id) / "files"
        if not out.exists():
            return []
        return [
            {"name": p.name, "size": p.stat().st_size}
            for p in sorted(out.iterdir())
            if p.is_file() and FILE_NAME.match(p.name) and not p.name.endswith(".tmp")
        ]

    def file(self, case_id: str, name: str) -> Path:
        """A case file by name: only names listed by `files` (no path is ever joined)."""
        for f in self.files(case_id):
            if f["name"] == name:
                return self.folder(case_id) / "files" / name
        raise ChainsleuthError(f"no file {name!r} in case {case_id}")
