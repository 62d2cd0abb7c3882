"""The explorer's browser tests: the real app under uvicorn on loopback, a real store built from
the small simulated world, and Debian's Chromium driven by Playwright (`executable_path`; never
Playwright's own browser download). Chromium missing fails the tests, never skips them: CI
(.ci/run) installs it.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class WebWorld:
    root: Path
    store: Path
    seeds: Path  # the world's deposit list (the seized service's addresses)


@pytest.fixture(scope="session")
def web_world(small_world: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> WebWorld:
    """A copy of the session's small world store (the explorer writes tags, cases and the
    audit log into it; `small_world` is shared read-only)."""
    world, store = small_world
    root = tmp_path_factory.mktemp("web")
    shutil.copytree(store, root / "store")
    return WebWorld(root, root / "store", world / "seeds" / "deposits.csv")


class Server:
    """uvicorn serving `app` on 127.0.0.1 (a free port) in a thread, stopped by `close`."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.host = f"{host}:{port}"
        self.url = f"http://{self.host}"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve(data_dir: Path) -> Server:
    from chainsleuth.api.app import create_app

    return Server(create_app(data_dir))


@pytest.fixture(scope="session")
def web_server(web_world: WebWorld) -> Iterator[Server]:
    server = serve(web_world.store)
    try:
        yield server
    finally:
        server.close()


def launch_chromium(playwright: Any) -> Any:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail(
            "chromium not found: the explorer's browser tests need it "
            "(Debian/Ubuntu: apt-get install chromium; .ci/run installs it)"
        )
    return playwright.chromium.launch(
        executable_path=executable,
        args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        + ["--disable-background-networking"],
    )


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        pytest.fail(f"playwright is not installed ({e}): pip install -e '.[dev]'")
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            yield browser
        finally:
            browser.close()
