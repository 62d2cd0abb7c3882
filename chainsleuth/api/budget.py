"""The time budget of a service call (docs/design/api.md, "Bounded work")."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Request

from chainsleuth.api.errors import ApiError


async def bounded(request: Request, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a service call in a worker thread under the time budget: 422 `budget_exceeded`
    when it takes longer (the answer is dropped; the thread finishes in the background)."""
    state = request.app.state
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(state.executor, lambda: fn(*args, **kwargs))
    try:
        return await asyncio.wait_for(asyncio.shield(future), timeout=state.time_budget_s)
    except TimeoutError:
        raise ApiError(
            "budget_exceeded",
            f"the query ran past its time budget of {state.time_budget_s:g} s: narrow it "
            "(fewer hops, a shorter from/to window, a higher min_value, a smaller limit)",
        ) from None
