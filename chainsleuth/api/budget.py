"""The time budget of a service call (docs/design/api.md, "Bounded work")."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import Request

from chainsleuth.api.errors import ApiError

_START = threading.Lock()


def executor(state: Any) -> ThreadPoolExecutor:
    """The app's worker threads, started on first use (again after `close_app`)."""
    with _START:
        if state.executor is None:
            state.executor = ThreadPoolExecutor(max_workers=state.workers, thread_name_prefix="api")
        pool: ThreadPoolExecutor = state.executor
        return pool


async def bounded(request: Request, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a service call in a worker thread under the time budget: 422 `budget_exceeded`
    when it takes longer (the answer is dropped; the thread finishes in the background)."""
    state = request.app.state
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(executor(state), lambda: fn(*args, **kwargs))
    try:
        return await asyncio.wait_for(asyncio.shield(future), timeout=state.time_budget_s)
    except TimeoutError:
        raise ApiError(
            "budget_exceeded",
            f"the query ran past its time budget of {state.time_budget_s:g} s: narrow it "
            "(lower max_hops, a shorter from/to window, a higher min_value, a smaller limit)",
        ) from None
