"""``_engine.lend_terms``: the running loop's bridge and a plain call's lend terms in one call (the
awaited client's and manager's way in), the same terms as ``LoopBridge.lend_terms``."""

from __future__ import annotations

import asyncio

from orroute import _engine


def test_each_event_loop_gets_its_own_bridge_and_notifier() -> None:
    async def terms() -> tuple[object, ...]:
        b, lend_to, loop_fd, timeout = _engine.lend_terms(False)
        assert b is _engine.bridge()
        assert (lend_to, loop_fd, timeout) == b.lend_terms(False)
        return b, lend_to

    first = asyncio.run(terms())
    second = asyncio.run(terms())  # the bridge asked for last is the first loop's: not used
    assert first[0] is not second[0]
    assert first[1] is not second[1]
    assert first[1] is first[0].notifier  # type: ignore[attr-defined]


def test_no_lending_while_other_calls_of_the_loop_are_awaited() -> None:
    async def main() -> None:
        b = _engine.bridge()
        _, lend_to, loop_fd, timeout = _engine.lend_terms()
        assert lend_to is b.notifier and loop_fd >= 0
        assert timeout == -1.0  # nothing ready, no timer: no limit
        b.waiters[0] = asyncio.get_running_loop().create_future()
        try:
            assert _engine.lend_terms() == (b, None, None, None)
            assert _engine.lend_terms(True, b) == (b, None, None, None)
            assert _engine.lend_terms(False)[1] is b.notifier  # whatever the waiters
        finally:
            del b.waiters[0]
        handle = asyncio.get_running_loop().call_later(30, lambda: None)
        try:
            timeout = _engine.lend_terms()[3]
            assert timeout is not None and 29 < timeout <= 30  # until the next timer
        finally:
            handle.cancel()
        asyncio.get_running_loop().call_soon(lambda: None)
        assert _engine.lend_terms()[3] is None  # a callback ready: not served here

    asyncio.run(main())
