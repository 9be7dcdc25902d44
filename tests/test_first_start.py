"""The first start on a new machine (no weight cache: the bundled GGUF is dequantized) reports what it is doing and
how far it is from its first second, to every session waiting for it; ~30-70 s (a real dequantization)."""

import threading
import time

import pytest

from dashboard import models
from dashboard.loaded import LoadedModels

pytestmark = pytest.mark.real


def test_a_cold_load_reports_one_rising_bar_to_every_waiter(monkeypatch, tmp_path):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))  # a new machine: no weight or tokenizer cache
    cache = LoadedModels()
    got: list = []
    events: list[tuple[float, str, float]] = []  # every status, as the loader set it (polling can miss a quick one)

    def progress(text, fraction=None):
        status = cache.status(models.DEFAULT_MODEL)
        events.append((time.monotonic() - started, status.text, status.fraction))

    started = time.monotonic()
    loaders = [threading.Thread(target=lambda: got.append(cache.get(models.DEFAULT_MODEL, progress)))
               for _ in range(2)]
    for t in loaders:  # two sessions asking at once: one load, both wait on it
        t.start()
    polled: list[str] = []  # what a waiting session's page sees
    while any(t.is_alive() for t in loaders):
        status = cache.status(models.DEFAULT_MODEL)
        if status is not None:
            polled.append(status.text)
        time.sleep(0.05)
    for t in loaders:
        t.join()
    assert len(got) == 2 and got[0] is got[1] and got[0].how.startswith("dequantized GGUF")
    assert cache.status(models.DEFAULT_MODEL) is None  # nothing in progress any more
    assert any(": tensor " in text for text in polled)  # the waiters see the load's own steps
    assert events[0][0] < 1.0  # from the first second
    fractions = [f for _, _, f in events]
    assert fractions == sorted(fractions) and fractions[-1] >= 0.9
    texts = " | ".join(t for _, t, _ in events)
    for step in ("importing torch", "tokenizer", "Dequantizing", ": tensor ", "Writing the weight cache"):
        assert step in texts, step
    # the steps' shares of the whole (models.load_bundled's bar: imports 10%, tokenizer 30%, tensors 90%, cache)
    when = {name: next(s for s, t, _ in events if key in t) for name, key in
            (("tensors", "Dequantizing"), ("cache", "Writing the weight cache"))}
    total = time.monotonic() - started
    print(f"first start {total:.1f} s: tokenizer {when['tensors']:.1f} s, tensors "
          f"{when['cache'] - when['tensors']:.1f} s, cache and the rest {total - when['cache']:.1f} s")
