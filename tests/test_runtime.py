"""The server's process-wide settings (dashboard/runtime.py): a tokenizer-only page freezes the heap too, so
Streamlit's full collection after every run no longer walks torch's and transformers' objects."""

from __future__ import annotations

import gc
import math
import time

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

    gc.collect()  # what a full collection would walk now: everything alive (freeze_heap collects first as well)
    before = len(gc.get_objects(generation=2))
    runtime.freeze_heap()
    assert gc.get_freeze_count() > 10_000 and before > 10_000
    assert len(gc.get_objects(generation=2)) < before / 20  # what the per-run gc.collect(2) still walks


def test_loading_a_tokenizer_alone_freezes_the_heap(thawed):
    from dashboard import ui

    key = next(s.key for s in models.registry().values() if s.tokenizer_offline)  # GPT-2's offline vocabulary
    ui._load_tokenizer.clear()
    assert gc.get_freeze_count() == 0
    tokenizer = ui._load_tokenizer(key)
    assert tokenizer.encode("Udacity is") == [52, 67, 4355, 318]
    assert gc.get_freeze_count() > 10_000


def test_teacher_first_holds_a_room_from_the_press_until_drawn_or_max_s():
    from dashboard.rooms_guard import TeacherFirst

    now = [10.0]
    first = TeacherFirst(max_s=3.0, after_s=0.5, clock=lambda: now[0])
    assert not first.busy("ROOM")
    first.press("ROOM")
    assert first.busy("ROOM") and not first.busy("OTHER")  # its learners wait; another room's do not
    now[0] += 1.0
    first.drawn("ROOM")
    now[0] += 0.4
    assert first.busy("ROOM")  # drawn, its messages still on their way to the browser
    now[0] += 0.2
    assert not first.busy("ROOM")  # after_s later: the learners follow
    first.press("ROOM")
    now[0] += 2.8
    first.drawn("ROOM")
    now[0] += 0.3
    assert not first.busy("ROOM")  # never past max_s from the press, drawn late or not
    first.drawn("ROOM")
    assert not first.busy("ROOM")  # a run after the priority lapsed holds nobody again
    first.press("ROOM")
    now[0] += 2.9
    assert first.busy("ROOM")
    now[0] += 0.2
    assert not first.busy("ROOM")  # a page that never finished holds nobody past max_s
    first.drawn("NEVER PRESSED")  # harmless
    with pytest.raises(ValueError, match="max_s"):
        TeacherFirst(max_s=0)
    with pytest.raises(ValueError, match="after_s"):
        TeacherFirst(max_s=1.0, after_s=2.0)


def test_shared_reads_read_once_per_ttl_and_never_keep_a_failure():
    from dashboard.rooms_guard import SharedReads

    now, reads = [100.0], []

    def read():
        reads.append(now[0])
        return {"round": len(reads)}

    shared = SharedReads(ttl_s=0.5, clock=lambda: now[0])
    assert [shared.get("ROOM", read)["round"] for _ in range(40)] == [1] * 40  # forty learners, one read
    now[0] += 0.49
    assert shared.get("ROOM", read)["round"] == 1
    now[0] += 0.02
    assert shared.get("ROOM", read)["round"] == 2 and len(reads) == 2  # 0.51 s later: read again
    assert shared.get("OTHER", read)["round"] == 3  # each room its own

    def down():
        raise ConnectionError("database down")

    now[0] += 1
    with pytest.raises(ConnectionError):
        shared.get("ROOM", down)
    assert shared.get("ROOM", read)["round"] == 4  # the failure was not kept
    shared.get("ROOM", read)["round"] = 99  # a caller's copy: the kept answer is not changed
    assert shared.get("ROOM", read)["round"] == 4


def test_shared_reads_is_single_flight_one_read_for_sessions_asking_at_once():
    import threading

    from dashboard.rooms_guard import SharedReads

    shared, gate, reads = SharedReads(ttl_s=math.inf, copy=None), threading.Event(), []

    def slow():  # a forward the forty learners following a reveal all want at once
        reads.append(1)
        gate.wait(10)
        return ["probs"]

    got = []
    threads = [threading.Thread(target=lambda: got.append(shared.get("TEXT", slow))) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.2)  # all eight are asking now
    gate.set()
    for t in threads:
        t.join(10)
    assert len(reads) == 1 and len(got) == 8 and all(g is got[0] for g in got)  # the same object: copy=None

    attempts, gate2 = [], threading.Event()

    def fails_first():
        attempts.append(1)
        if len(attempts) == 1:
            gate2.wait(10)
            raise ConnectionError("engine down")
        return "second read"

    out = []

    def ask():
        try:
            out.append(shared.get("OTHER", fails_first))
        except ConnectionError:
            out.append("failed")

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    gate2.set()
    for t in threads:
        t.join(10)
    assert sorted(out) == ["failed"] + ["second read"] * 3 and len(attempts) == 2  # the waiters read again, once
    with pytest.raises(ValueError, match="ttl_s"):
        SharedReads(ttl_s=float("nan"))


def test_a_run_that_imported_libraries_freezes_the_heap_after_it(thawed, monkeypatch):
    import sys

    runtime.freeze_heap()
    assert not runtime.freeze_after_imports()  # nothing imported since
    for i in range(runtime.NEW_MODULES - 1):
        monkeypatch.setitem(sys.modules, f"_tokenscope_fake_{i}", object())
    assert not runtime.freeze_after_imports()
    monkeypatch.setitem(sys.modules, "_tokenscope_fake_last", object())
    gc.unfreeze()
    assert runtime.freeze_after_imports() and gc.get_freeze_count() > 10_000
    assert not runtime.freeze_after_imports()


def run_python(code: str, timeout: float):
    """`code` run by this interpreter in a fresh process from the project's folder (its exit code and output)."""
    import subprocess
    import sys
    from pathlib import Path

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          cwd=Path(__file__).resolve().parents[1])


def last_printed(code: str) -> str:
    """The last word `code` printed in a fresh Python process (which must exit 0)."""
    out = run_python(code, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()[-1]


def test_a_fresh_process_freezes_the_heap_after_a_page_run_that_imported_torch():
    code = ("import gc, logging; logging.disable(logging.CRITICAL)\n"
            "from dashboard import ui\n"
            "class Page:\n"
            "    url_path = 'next-token'\n"
            "    def run(self): pass\n"
            "assert 'torch' not in __import__('sys').modules and gc.get_freeze_count() == 0\n"
            "ui.run_page(Page())\n"
            "print(gc.get_freeze_count())")
    assert int(last_printed(code)) > 10_000  # torch's objects, frozen before any model is loaded


@pytest.mark.real
def test_a_process_that_prefetches_a_reveal_and_exits_at_once_exits_cleanly():
    """The Class page queues the reveal's forward on a worker thread; a process (a test run, a server being
    stopped) that ends while that forward is still inside torch must exit 0, not abort (a daemon thread did: 134)."""
    code = ("import logging; logging.disable(logging.CRITICAL)\n"
            "from dashboard.loaded import LOADED\n"
            "from dashboard.backends import LocalBackend\n"
            "from dashboard.classshare import prefetch\n"
            "backend = LocalBackend(LOADED.get('smollm2-135m'))\n"
            "prefetch(backend, list(range(1000, 2500)))  # a long text: the forward is still running at exit\n"
            "print('exiting')")
    out = run_python(code, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("exiting"), (out.returncode, out.stderr[-2000:])


def test_streamlit_does_not_collect_after_every_run():
    """runner.postScriptGC is off in the app's config: with a Class room's forty learners rerunning a fragment every
    second, Streamlit's gc.collect(2) after each run was 26% of the server's samples (py-spy, bench class40)."""
    import tomllib
    from pathlib import Path

    config = tomllib.loads((Path(__file__).parent.parent / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False


def test_a_model_load_turns_transformers_progress_bars_off():
    """The app draws its own bar; transformers' tqdm bars only wrote to the server's log and took tqdm's
    process-wide lock from load threads (dashboard/runtime.py). A fresh process: the setting is process-wide."""
    code = ("import logging; logging.disable(logging.CRITICAL)\n"
            "from transformers.utils import logging as hf_logging\n"
            "assert hf_logging.is_progress_bar_enabled()\n"
            "from dashboard.loaded import LoadedModels\n"
            "LoadedModels().get('stand-in', make=lambda: object())\n"
            "print(hf_logging.is_progress_bar_enabled())")
    assert last_printed(code) == "False"

