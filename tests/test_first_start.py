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
    started = time.monotonic()
    loaders = [threading.Thread(target=lambda: got.append(cache.get(models.DEFAULT_MODEL))) for _ in range(2)]
    for t in loaders:  # two sessions asking at once: one load, both wait on it
        t.start()
    seen: list[tuple[float, str, float]] = []
    while any(t.is_alive() for t in loaders):
        status = cache.status(models.DEFAULT_MODEL)
        if status is not None and (not seen or seen[-1][1:] != (status.text, status.fraction)):
            seen.append((time.monotonic() - started, status.text, status.fraction))
        time.sleep(0.05)
    for t in loaders:
        t.join()
    assert len(got) == 2 and got[0] is got[1] and got[0].how.startswith("dequantized GGUF")
    assert cache.status(models.DEFAULT_MODEL) is None  # nothing in progress any more
    assert seen[0][0] < 1.0  # from the first second
    fractions = [f for _, _, f in seen]
    assert fractions == sorted(fractions) and fractions[-1] >= 0.9
    texts = " | ".join(t for _, t, _ in seen)
    for step in ("importing torch", "tokenizer", "Dequantizing", ": tensor ", "Writing the weight cache"):
        assert step in texts, step
    # the bar's shares of the whole (models.load_bundled: tokenizer to 10%, tensors to 90%, the cache after)
    when = {name: next(s for s, t, _ in seen if key in t) for name, key in
            (("tensors", "Dequantizing"), ("cache", "Writing the weight cache"))}
    total = time.monotonic() - started
    print(f"first start {total:.1f} s: tokenizer {when['tensors']:.1f} s, tensors "
          f"{when['cache'] - when['tensors']:.1f} s, cache and the rest {total - when['cache']:.1f} s")
