"""The models loaded in this process, one copy each, at most $TOKENSCOPE_MAX_LOADED of them (least recently used
evicted first), and what is known of a model with the loaded ones consulted first. Built on dashboard/models.py
(the registry and the loaders), which knows nothing of this cache."""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from dashboard import models, runtime
from dashboard.models import LoadedModel

logger = logging.getLogger("dashboard.models")

MAX_LOADED_ENV = "TOKENSCOPE_MAX_LOADED"
DEFAULT_MAX_LOADED = 2


def max_loaded() -> int:
    """How many models may stay in memory at once ($TOKENSCOPE_MAX_LOADED, default 2)."""
    try:
        return max(1, int(os.environ.get(MAX_LOADED_ENV, DEFAULT_MAX_LOADED)))
    except ValueError:
        return DEFAULT_MAX_LOADED


@dataclass(frozen=True)
class LoadStatus:
    """A load in progress: what it is doing now, how far it is (0..1, never going back), since when (monotonic s)."""
    text: str
    fraction: float
    started: float


class LoadedModels:
    """The models loaded in this process, one copy each, at most max_loaded() of them: loading another evicts
    the least recently used. Sessions keep no strong reference (see generation.TokenPath), so an evicted
    model's memory is freed. Thread-safe: two sessions asking for the same model load it once."""

    def __init__(self):
        self._items: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self._status: dict[str, LoadStatus] = {}  # the loads in progress, for every session waiting on one
        self.evicted: list[str] = []  # keys evicted so far, oldest first (for the page and the tests)

    def peek(self, key: str) -> LoadedModel | None:
        """The loaded model `key` if it is in memory now (no load, no change of order)."""
        with self._lock:
            return self._items.get(key)

    def status(self, key: str) -> LoadStatus | None:
        """What the load of `key` in progress is doing (None when none is): every session shows the same bar."""
        with self._lock:
            return self._status.get(key)

    def keys(self) -> list[str]:
        """Keys in memory, least recently used first."""
        with self._lock:
            return list(self._items)

    def get(self, key: str, progress: Callable | None = None, make: Callable[[], LoadedModel] | None = None):
        """The LoadedModel `key`, loaded now if needed (with `make`, else models.load_model); ModelUnavailable
        when it can't be."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:  # one load per key at a time; the others wait for it
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key]
            started = time.monotonic()
            forward = progress or models._log_progress

            def report(text: str, fraction: float | None = None) -> None:
                with self._lock:
                    last = self._status.get(key)
                    done = max(fraction or 0.0, last.fraction if last else 0.0)
                    self._status[key] = LoadStatus(text, min(done, 1.0), started)
                forward(text, fraction)

            report("Starting (importing torch and transformers)…", 0.0)
            try:
                runtime.configure_torch()
                loaded = models.load_model(key, report) if make is None else make()
            finally:
                with self._lock:
                    self._status.pop(key, None)
            evicted = False
            with self._lock:
                self._items[key] = loaded
                while len(self._items) > max_loaded():
                    old, _ = self._items.popitem(last=False)
                    self.evicted.append(old)
                    evicted = True
                    logger.info("evicted %s from memory (at most %d models loaded)", old, max_loaded())
            if evicted:
                runtime.unfreeze_heap()  # the evicted model's objects were frozen with it: let the collector in
            gc.collect()  # frees an evicted model now rather than at some later collection
            runtime.freeze_heap()  # the new model (and everything imported so far) out of every later collection
            return loaded

    def clear(self) -> None:
        """Forget every loaded model (tests; an operator's reload)."""
        with self._lock:
            self._items.clear()
        runtime.unfreeze_heap()
        gc.collect()


LOADED = LoadedModels()


def known_context_length(key: str) -> int | None:
    """Model `key`'s position limit without loading it: the loaded copy's, else its config's; else None."""
    loaded = LOADED.peek(key)
    return loaded.context_length if loaded is not None else models.configured_context_length(key)
