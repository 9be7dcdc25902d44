"""The server's process-wide settings (dashboard/runtime.py): a tokenizer-only page freezes the heap too, so
Streamlit's full collection after every run no longer walks torch's and transformers' objects."""

from __future__ import annotations

import gc

import pytest

from dashboard import models, runtime


@pytest.fixture
def thawed():
    """The heap unfrozen before the test, and left frozen after it as the app keeps it."""
    gc.unfreeze()
    yield
    runtime.freeze_heap()


def test_freeze_heap_moves_what_is_alive_out_of_the_full_collection(thawed):
    import torch  # noqa: F401  (what a model page has imported: most of the heap)

    before = len(gc.get_objects(generation=2))
    runtime.freeze_heap()
    assert gc.get_freeze_count() >= before > 10_000
    assert len(gc.get_objects(generation=2)) < before / 20  # what the per-run gc.collect(2) still walks


def test_loading_a_tokenizer_alone_freezes_the_heap(thawed):
    from dashboard import ui

    key = next(s.key for s in models.registry().values() if s.tokenizer_offline)  # GPT-2's offline vocabulary
    ui._load_tokenizer.clear()
    assert gc.get_freeze_count() == 0
    tokenizer = ui._load_tokenizer(key)
    assert tokenizer.encode("Udacity is") == [52, 67, 4355, 318]
    assert gc.get_freeze_count() > 10_000
