"""dashboard/runtime.py: long work on a worker that gives way to other sessions' runs, at lower priority."""

import os
import sys
import threading
import time

import pytest

from dashboard import runtime
from dashboard.backends import LocalBackend
from dashboard.generation import Generation, stream_ids
from dashboard.sampling import Settings

SEED_IDS = [52, 67, 4355, 318, 262, 1266, 1295, 284, 2193, 546, 1152, 876]


def test_items_come_from_a_worker_thread_in_order_and_its_errors_are_raised_here():
    def produce():
        for i in range(3):
            yield i, threading.get_ident()
        raise KeyError("the producer failed")

    it = runtime.in_background(produce())
    got = [next(it) for _ in range(3)]
    assert [i for i, _ in got] == [0, 1, 2]
    assert {t for _, t in got} != {threading.get_ident()}  # produced elsewhere
    with pytest.raises(KeyError, match="the producer failed"):
        next(it)


def test_closing_ends_the_work_on_the_worker_and_waits_for_it():
    ended = []

    def produce():
        try:
            for i in range(10_000):
                time.sleep(0.001)
                yield i
        finally:
            ended.append(threading.current_thread().name)

    it = runtime.in_background(produce(), name="tokenscope-test")
    assert next(it) == 0
    it.close()
    assert ended == ["tokenscope-test"]  # closed on its own thread, before close() returned


def test_nothing_is_made_ahead_of_what_was_asked_for():
    made = []

    def produce():
        for i in range(100):
            made.append(i)
            yield i

    it = runtime.in_background(produce())
    assert next(it) == 0 and next(it) == 1
    time.sleep(0.2)  # a worker running ahead would have made all 100 by now
    assert made == [0, 1]
    it.close()
    assert made == [0, 1]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's")
def test_the_worker_runs_at_lower_priority_and_the_caller_keeps_its_own():
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def produce():
        yield os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    # niceness BACKGROUND_NICE (a process already nicer keeps its own: raising priority back is not allowed)
    assert next(runtime.in_background(produce())) == max(mine, runtime.BACKGROUND_NICE)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine


def _fake_run(stop: threading.Event):
    """A thread named like Streamlit's script thread: a session's run in progress until `stop`."""
    t = threading.Thread(target=stop.wait, name=runtime.SCRIPT_THREAD, daemon=True)
    t.start()
    return t


def test_a_step_waits_while_another_sessions_run_is_in_progress_but_never_longer_than_the_limit():
    assert runtime.runs_in_progress() == 0
    assert runtime.yield_to_runs(0.5) < 0.05  # nobody else: no wait
    stop = threading.Event()
    _fake_run(stop)
    try:
        assert runtime.runs_in_progress() == 1
        waited = runtime.yield_to_runs(0.2)
        assert 0.2 <= waited < 0.5  # waited the whole limit, no more
        threading.Timer(0.1, stop.set).start()
        assert 0.08 <= runtime.yield_to_runs(2.0) < 1.0  # the run ended: the step goes on
    finally:
        stop.set()


def test_a_generation_gives_way_between_tokens_to_a_run_in_progress(tiny_gpt2, gpt2_tokenizer, monkeypatch):
    monkeypatch.setattr(runtime, "YIELD_MAX_S", 0.1)
    settings = Settings(strategy="greedy", max_new_tokens=4)
    stop = threading.Event()
    _fake_run(stop)
    try:
        start = time.perf_counter()
        run = Generation(SEED_IDS, settings)
        ids = list(runtime.in_background(stream_ids(tiny_gpt2, gpt2_tokenizer, SEED_IDS, settings, run)))
        slow = time.perf_counter() - start
    finally:
        stop.set()
    assert len(ids) == 4 and slow >= 3 * 0.1  # a pause after each of the first three tokens
    # the same tokens as on the caller's own thread
    assert ids == list(stream_ids(tiny_gpt2, gpt2_tokenizer, SEED_IDS, settings, Generation(SEED_IDS, settings)))


def test_the_waiting_script_thread_is_not_a_run_in_progress():
    seen = []

    def produce():
        for _ in range(2):
            seen.append(runtime.runs_in_progress())
            yield None

    def session_run():  # a script thread that only waits for its background work
        list(runtime.in_background(produce()))

    t = threading.Thread(target=session_run, name=runtime.SCRIPT_THREAD)
    t.start()
    t.join(10)
    assert seen == [0, 0]


def test_the_local_backend_streams_on_a_worker_and_stop_marks_the_run(tiny_gpt2, gpt2_tokenizer):
    class Loaded:
        spec, tokenizer, context_length, vocab_size, model = None, gpt2_tokenizer, 1024, 50257, tiny_gpt2

    backend = LocalBackend(Loaded())
    settings = Settings(strategy="greedy", max_new_tokens=50)
    run = Generation(SEED_IDS, settings)
    stream = backend.stream(SEED_IDS, settings, run)
    first = next(stream)
    stream.close()
    assert run.reason == "stopped" and run.new_ids[0] == first and len(run.new_ids) < 50


def test_a_thread_inside_waiting_is_not_a_run_in_progress_and_counts_again_after():
    inside, after = threading.Event(), threading.Event()
    counts = []

    def session_run():
        with runtime.waiting():
            inside.set()
            after.wait(5)
        counts.append("left")
        time.sleep(0.3)

    t = threading.Thread(target=session_run, name=runtime.SCRIPT_THREAD)
    t.start()
    inside.wait(5)
    counts.append(runtime.runs_in_progress())
    after.set()
    time.sleep(0.1)
    counts.append(runtime.runs_in_progress())
    t.join(5)
    assert counts == [0, "left", 1]
