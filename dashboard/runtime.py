"""How the server process runs torch and Python's collector while sessions share a few cores: returns nothing,
sets process-wide state once.

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
evicted model's cycles are freed (loaded.LoadedModels). Even frozen, forty Class learners' fragment runs a second
made that per-run collection 26% of the server's samples, so the app's config turns it off (`.streamlit/config.toml`):
Python's own generational collector still runs, and walks only what is not frozen.

Progress bars. transformers draws tqdm bars while it loads ("Loading weights"); the app shows its own bar, so theirs
only wrote to the server's log, started tqdm's monitor thread and took tqdm's process-wide lock from load threads.
Once (not reproduced), a first start hung for good: a collection on a page's thread finalized a tqdm bar and waited
on that lock, whose holder was gone. The app turns transformers' bars off before its first load (Hub downloads count
bytes through a disabled bar of their own, dashboard/hub.py)."""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading

logger = logging.getLogger("dashboard.runtime")

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
    """Set torch's thread counts once per process (before its first parallel work where possible), and turn
    transformers' progress bars off."""
    global _configured
    with _lock:
        if _configured:
            return
        import torch

        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the app draws its own (see the module's docstring)
        n = torch_threads()
        torch.set_num_threads(n)
        try:
            torch.set_num_interop_threads(n)  # only allowed before any inter-op work started
        except RuntimeError:
            pass
        _configured = True
        logger.info("torch uses %d intra-op thread(s) per forward (%s)", n, THREADS_ENV)


NEW_MODULES = 20  # imports since the last freeze that make the next run end with one (freeze_after_imports)
_modules_frozen = 0  # len(sys.modules) at the last freeze


def freeze_heap() -> None:
    """Move every object alive now out of the collector's way (after a model load): the per-run gc.collect(2)
    then walks only what runs created since."""
    global _modules_frozen
    gc.collect()
    gc.freeze()
    _modules_frozen = len(sys.modules)


def freeze_after_imports() -> bool:
    """After a run: freeze the heap when the run imported libraries since the last freeze (a page's first visit
    imports torch, pandas, altair or sqlalchemy before any model is loaded: measured, a Class learner's page
    polling every second spent 7.7 s of every 8 in Streamlit's post-run collection of them). Whether it froze."""
    if len(sys.modules) < _modules_frozen + NEW_MODULES:
        return False
    freeze_heap()
    return True


def unfreeze_heap() -> None:
    """Give frozen objects back to the collector (before freeing an evicted model, so its cycles are found)."""
    gc.unfreeze()
