"""Asynchronous scalar functions (``async def eval``) run from the engine's synchronous calls.

Each call of an asynchronous function runs its coroutine to completion on an
event loop that belongs to the calling Python thread: one loop per thread,
made on first use and kept for the following calls (creating a loop per call,
as ``asyncio.run`` does, costs far more than the call).  The loop runs only
during a call, so a coroutine's background tasks advance only while some
call on that thread is running.

Cancellation.  The engine interrupts a call by raising an exception in its
thread, which Python only notices while it runs bytecode.  An idle event loop
would sit in ``select`` until its next timer (an ``asyncio.sleep(30)`` for
30 s), so the loop's selector waits at most :data:`POLL_SECONDS` at a time:
an interrupted call that awaits ends within that.  The exception may land in
the loop's own machinery rather than in the coroutine, leaving the loop with
a task that never finished; such a loop is not reused.  The next asynchronous
call on the same thread closes what it left (see :func:`_discard`) and starts
a fresh loop; until then the unfinished coroutine stays suspended, held by
the thread (at most one per thread), and runs no code.  This clean-up waits for the next call because an
interrupted call may be trapped (every line raises again, see
``pyudf._host.Cancelled``), where no clean-up code could run.
"""

import asyncio
import functools
import selectors
import threading

POLL_SECONDS = 0.005
"""The longest an event loop waits in ``select`` before it runs Python again."""


class _PollingSelector(selectors.DefaultSelector):
    """The platform's selector, waiting at most POLL_SECONDS per select."""

    def select(self, timeout=None):
        if timeout is None or timeout > POLL_SECONDS:
            timeout = POLL_SECONDS
        return super().select(timeout)


class _ThreadLoop(threading.local):
    loop = None   # this thread's event loop
    clean = True  # False while a call runs it, and after one that did not end cleanly
    task = None   # the task of the call running, or of the last one if it did not end cleanly


_local = _ThreadLoop()


def _on_loop_error(loop, context):
    """An exception a callback of the loop raised (the loop reports, then
    continues).  An interruption of the call (a BaseException that is not an
    Exception: the engine's Cancelled, KeyboardInterrupt) stops the loop so
    that the call ends now; anything else is logged as asyncio logs it."""
    exc = context.get("exception")
    if exc is not None and not isinstance(exc, Exception):
        loop.stop()
        return
    loop.default_exception_handler(context)


def _quiet(loop, context):
    """The handler of a discarded loop: its unfinished tasks are expected."""


def _fresh_loop():
    loop = asyncio.SelectorEventLoop(_PollingSelector())
    loop.set_exception_handler(_on_loop_error)
    return loop


_held = {}
"""Thread ident -> the task an interrupted call left on that thread's loop,
until the next call on the thread (or one on a new thread with the same
ident) discards it.  The thread-local holds it too, but a thread-local goes
with its thread: a thread that ends (a function instance's own thread does
when the instance closes) would free the task, and the garbage collector
would close its coroutine wherever it next runs, with no loop to await on (a
coroutine that catches every exception would then spin forever there)."""

_unclosable = []
"""Coroutines that caught GeneratorExit and awaited again: kept, suspended,
for the life of the process.  Freed, each would be closed again by the
garbage collector, wherever that runs, with no loop to await on: a
coroutine that catches every exception would then never end."""


def _discard(loop, left):
    """Close what an interrupted call left on ``loop`` (its task ``left`` and
    any other) and the loop itself.

    Each unfinished coroutine is closed (``GeneratorExit`` at its ``await``:
    its ``finally`` blocks run, nothing more).  The loop counts as running
    meanwhile, so that a coroutine that awaits on its way out (or catches
    ``GeneratorExit`` and awaits again) suspends, which ends its close,
    instead of failing "no running event loop" in a loop that never ends.
    """
    loop.set_exception_handler(_quiet)
    asyncio._set_running_loop(loop)
    try:
        for task in {left} | asyncio.all_tasks(loop):
            coro = task.get_coro()
            try:
                coro.close()
            except Exception:  # it awaited after GeneratorExit, or raised
                pass
            if getattr(coro, "cr_frame", None) is not None:
                _unclosable.append(coro)
    finally:
        asyncio._set_running_loop(None)
    if not loop.is_running():  # a trapped call may have cut run_forever's own clean-up short
        loop.close()


def thread_loop():
    """This thread's event loop for the next call (a fresh one after a call that did not end cleanly)."""
    state = _local
    loop = state.loop
    if loop is not None and state.clean:
        return loop
    state.loop = None
    left, state.task = state.task, None
    left = _held.pop(threading.get_ident(), left)
    if asyncio._get_running_loop() is not None:  # left set by an interrupted run_forever
        asyncio._set_running_loop(None)
    if loop is None and left is not None:  # left by an ended thread with this ident
        loop = left.get_loop()
    if loop is not None:
        _discard(loop, left)
    loop = state.loop = _fresh_loop()
    state.clean = True
    return loop


def run_to_completion(function):
    """``function`` (which returns a coroutine, or any awaitable) as a plain
    function that returns the awaited result.  A result that is not
    awaitable is returned as it is (PyFlink awaits only coroutines too)."""

    @functools.wraps(function)
    def call(*args):
        awaitable = function(*args)
        if not asyncio.iscoroutine(awaitable) and not hasattr(awaitable, "__await__"):
            return awaitable
        loop = thread_loop()
        state = _local
        state.clean = False
        # Held here until the call ends well: an interrupted call's task must
        # not be freed at some random later point (the loop holds its tasks
        # weakly), where closing the coroutine would run its code unguarded.
        task = state.task = asyncio.ensure_future(awaitable, loop=loop)
        try:
            result = loop.run_until_complete(task)
        except BaseException:
            # the task ended (with the coroutine's exception, or the engine's
            # interruption raised inside it): the loop is fine. Otherwise the
            # interruption landed in the loop: the next call replaces it.
            if task.done():
                state.clean, state.task = True, None
            else:
                _held[threading.get_ident()] = task
            raise
        state.clean, state.task = True, None
        return result

    return call
