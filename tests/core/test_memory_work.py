"""Work that reads only memory never queues behind database work: `toolkit.from_memory` does not
use anyio's default thread pool, which every database call shares."""

from __future__ import annotations

import anyio

from flowscope.mcp import toolkit


async def test_memory_work_runs_while_the_database_pool_is_full():
    pool = anyio.to_thread.current_default_thread_limiter()
    saved, holders = pool.total_tokens, [object() for _ in range(pool.total_tokens)]
    for holder in holders:  # every database thread busy
        await pool.acquire_on_behalf_of(holder)
    try:
        with anyio.move_on_after(0.3) as blocked:
            await anyio.to_thread.run_sync(sum, [1, 2])
        assert blocked.cancelled_caught  # a database call would wait here
        with anyio.fail_after(10):
            assert await toolkit.from_memory(10, sum, [1, 2]) == 3  # small: in the event loop
            assert await toolkit.from_memory(toolkit.INLINE_ITEMS + 1, sum, [1, 2]) == 3  # large: own pool
    finally:
        for holder in holders:
            pool.release_on_behalf_of(holder)
        pool.total_tokens = saved
