"""How the server process runs torch, Python's collector and long work while sessions share a few cores.

Threads. Every session's request runs its own forward on the script thread Streamlit gives it; torch's default is
one OpenMP thread per core for each of them. On a busy 2-core machine two threads per forward fight the other
sessions (and each other: OpenMP spin-waits at every barrier): a 12-token forward took 870–1,760 ms with 2 threads
against 90 ms with 1, `inverse_cdf` 72–120 ms against 6–7 ms (bench: `threads_forward_ratio`). So a forward gets
one intra-op thread, and concurrency comes from sessions running side by side on the cores. An operator with a big
idle machine and one user can raise it ($TOKENSCOPE_TORCH_THREADS).

The collector. Streamlit runs `gc.collect(2)` after every script run (`runner.postScriptGC`): with torch,
transformers, altair and a model loaded that walks ~450k long-lived objects, ~200 ms holding the GIL, so the run's
last messages wait for it. `gc.freeze()` after a load moves everything alive then into the permanent generation,
which collections skip; what a run creates afterwards is still collected. An eviction unfreezes first, so the
evicted model's cycles are freed (loaded.LoadedModels)."""

from __future__ import annotations

import gc
import logging
import os
import queue
import sys
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

logger = logging.getLogger("dashboard.runtime")
T = TypeVar("T")

THREADS_ENV = "TOKENSCOPE_TORCH_THREADS"
DEFAULT_THREADS = 1
_lock = threading.Lock()
_configured = False


def torch_threads() -> int:
    """The intra-op thread count for a forward ($TOKENSCOPE_TORCH_THREADS, default 1; bad values give 1)."""
    try:
        return max(1, int(os.environ.get(THREADS_ENV, DEFAULT_THREADS)))
    except ValueError:
        return DEFAULT_THREADS


def configure_torch() -> None:
    """Set torch's thread counts once per process (before its first parallel work where possible)."""
    global _configured
    with _lock:
        if _configured:
            return
        import torch

        n = torch_threads()
        torch.set_num_threads(n)
        try:
            torch.set_num_interop_threads(n)  # only allowed before any inter-op work started
        except RuntimeError:
            pass
        _configured = True
        logger.info("torch uses %d intra-op thread(s) per forward (%s)", n, THREADS_ENV)


def freeze_heap() -> None:
    """Move every object alive now out of the collector's way (after a model load): the per-run gc.collect(2)
    then walks only what runs created since."""
    gc.collect()
    gc.freeze()


def unfreeze_heap() -> None:
    """Give frozen objects back to the collector (before freeing an evicted model, so its cycles are found)."""
    gc.unfreeze()


# Long work gives way to clicks. A Generate run is minutes of forwards; a click on Next token is one forward and a
# rerun that a person waits for. In one server process every session's Python shares one interpreter lock and the
# cores, so 3 sessions generating made every other learner's Append wait behind them. A generation therefore runs
# on its own worker thread (in_background), which
#   - pauses between tokens while another session's run is in progress (at most YIELD_MAX_S a token, so it never
#     starves), and
#   - runs at nice BACKGROUND_NICE for the CPU it still takes (Linux sets niceness per thread; elsewhere a no-op).
# The session's own script thread only waits for the tokens meanwhile (and is not counted as a run in progress).
BACKGROUND_NICE = 10
STOP_WAIT_S = 60.0  # closing waits this long for the worker to finish its current token
YIELD_MAX_S = 0.25  # the longest a background step waits for other sessions' runs to end
YIELD_POLL_S = 0.005
SCRIPT_THREAD = "ScriptRunner.scriptThread"  # Streamlit's thread for a session's run: alive while a run is on
_waiting: set[int] = set()  # script threads that only wait for background work now
_waiting_lock = threading.Lock()


def runs_in_progress() -> int:
    """Sessions' script runs going on now, not counting those only waiting for background work."""
    with _waiting_lock:
        waiting = set(_waiting)
    return sum(1 for t in threading.enumerate() if t.name == SCRIPT_THREAD and t.ident not in waiting)


@contextmanager
def waiting():
    """Within it, this thread only waits for other work (a generation, a download): not a run in progress."""
    me = threading.get_ident()
    with _waiting_lock:
        known = me in _waiting
        _waiting.add(me)
    try:
        yield
    finally:
        if not known:
            with _waiting_lock:
                _waiting.discard(me)


def yield_to_runs(limit_s: float = YIELD_MAX_S) -> float:
    """Wait while other sessions' runs are in progress, at most `limit_s`; the seconds waited."""
    start = time.perf_counter()
    while runs_in_progress() and time.perf_counter() - start < limit_s:
        time.sleep(YIELD_POLL_S)
    return time.perf_counter() - start


def _lower_priority() -> None:
    """Lower this thread's CPU priority (Linux; a no-op where threads have no niceness of their own)."""
    native = getattr(threading, "get_native_id", None)
    if native is None or not sys.platform.startswith("linux"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, native(), BACKGROUND_NICE)
    except OSError as exc:  # e.g. a sandbox that forbids it: run at normal priority
        logger.info("background work keeps normal priority: %s", exc)


def in_background(items: Iterator[T], name: str = "tokenscope-background") -> Iterator[T]:
    """The items of `items`, each produced on a worker thread at lower CPU priority when this iterator asks for it
    (in step, as if on this thread: nothing is made ahead), its exceptions re-raised here; closing this iterator
    closes `items` on the worker and waits for it."""
    asks: queue.Queue = queue.Queue()  # True: one more item; False: stop
    handoff: queue.Queue = queue.Queue()  # (True, item), (False, None) at the end, (False, exception)

    def work():
        _lower_priority()
        stopped, first = False, True
        try:
            while asks.get():
                if not first:
                    yield_to_runs()  # before the next step: other sessions' clicks first
                first = False
                try:
                    item = next(items)
                except StopIteration:
                    handoff.put((False, None))
                    return
                handoff.put((True, item))
            stopped = True
        except BaseException as exc:  # handed to the consuming thread
            handoff.put((False, exc))
        finally:
            if stopped:
                items_close = getattr(items, "close", None)
                if items_close is not None:
                    items_close()  # ends the work (a generator's GeneratorExit runs on the worker, its owner)

    with waiting():  # from before the worker looks
        worker = threading.Thread(target=work, name=name, daemon=True)
        worker.start()
        try:
            while True:
                asks.put(True)
                ok, value = handoff.get()
                if ok:
                    yield value
                elif value is None:
                    return
                else:
                    raise value
        finally:
            asks.put(False)
            worker.join(STOP_WAIT_S)


def call_in_background(fn: Callable[..., T], *args) -> T:
    """What fn(*args) returns, computed on a worker thread at lower CPU priority (its exception raised here)."""
    def once():
        yield fn(*args)

    for value in in_background(once(), name=f"tokenscope-{getattr(fn, '__name__', 'call')}"):
        return value
    raise RuntimeError("the background call returned nothing")  # unreachable: once() yields exactly one value
