"""`make bench`: the app measured through its pages (AppTest, a served app in Chromium) and its hot paths against
raw transformers in the same process, as ratios (medians; these machines are shared, so compare ratios).

The engine cases (bench/engine.py) run the app on the official llama.cpp llama-server (`make engine`) against the
app on the local fp32 model: one stream through the back-ends, and 8 Chromium sessions generating at once.

Writes bench/results.json: a list of {"name", "value", "goal", "unit", "ok", "baseline", "note"}.
BENCH_REPEATS (default 5; the 8-session rounds at most 3), BENCH_BROWSER=0 (skip the Chromium cases, the engine's 8
sessions included), BENCH_SESSIONS=0 (skip the 8 sessions' memory)."""

from __future__ import annotations

import json
import logging
import os
import random
import statistics
import subprocess
import tempfile
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from dashboard import models  # noqa: E402
from dashboard.charts import before_after_chart, before_after_frame  # noqa: E402
from dashboard.compare import batched_next_logits  # noqa: E402
from dashboard.generation import Generation, TokenPath, stream_ids, stream_text  # noqa: E402
from dashboard.loaded import LOADED  # noqa: E402
from dashboard.sampling import Settings, distribution, entropy_bits  # noqa: E402
from dashboard.tokens import encode  # noqa: E402
from dashboard.ui.instrument import REPORT_MS  # noqa: E402

log = logging.getLogger("bench")
PROMPT = "Udacity is the best place to learn about generative"
STORY = "Once upon a time, generative models"  # greedy SmolLM2 writes no end-of-text in its first 64 tokens
MODEL = "smollm2-135m"
REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))
RAW = "raw transformers"
PAGE = "none: the page itself"
results: list[dict] = []
RAW_STEP_MS: dict[str, float] = {}  # bench_step's raw decode step, the baseline of the browser's append_ms


def record(name: str, value: float | None, goal: float | None, unit: str, higher_is_better: bool = False,
           note: str = "", baseline: str = PAGE) -> None:
    """Add one result row and print it; a goal of None marks a row reported for information."""
    if value is None:
        ok = False
    elif goal is None:
        ok = None
    else:
        ok = value >= goal if higher_is_better else value <= goal
    results.append({"name": name, "value": None if value is None else round(value, 4), "goal": goal, "unit": unit,
                    "ok": ok, "higher_is_better": higher_is_better, "baseline": baseline, "note": note})
    sign = "≥" if higher_is_better else "≤"
    goal_text = "info" if goal is None else f"goal {sign} {goal:<6g}"
    verdict = "" if ok is None else ("OK" if ok else "MISSED")
    shown = "—" if value is None else f"{value:10.3f}"
    print(f"{name:26s} {shown:>10s} {unit:8s} {goal_text:14s} {verdict:6s} {note}", flush=True)


def median_time(fn, repeats: int = REPEATS) -> float:
    """Median wall time of `fn()` in seconds (one warm-up call first)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def raw_model():
    """The same weights loaded the plain transformers way (from_pretrained, default attention, fp32): the baseline."""
    from transformers import AutoModelForCausalLM

    folder = models.bundled_cache_dir(models.bundled_gguf_path())
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


# --------------------------------------------------------------------------- the load path's guard


def _strings(n: int = 400) -> list[str]:
    """Fixed tricky texts and seeded random ones (scripts, emoji, whitespace runs, special-token text)."""
    fixed = [PROMPT, STORY, "", " ", "  leading", "trailing  ", "a\nb\r\nc\td", "\n\n\n", "   \t  ", "Ünïcödé façade naïve",
             "日本語のテキスト", "中文字符", "한국어", "Ελληνικά", "русский текст", "عربى", "emoji 🔭🎲✍️⚖️ 👩‍👩‍👧",
             "<|im_start|>user\nhi<|im_end|>", "<|endoftext|>", "x<filename>y", "<repo_name> <reponame>",
             "def f(x):\n    return x ** 2  # square", "1234567890 3.14159 -42 1e-9", "https://example.com/a?b=c&d=e",
             "''\"\"``", "\u200b\u200d\ufeff", "\x00\x01\x7f", "ﬁ ligature ﬀ", "A" * 300, "ab " * 100]
    pool = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") * 4
            + list(" .,;:!?'\"()[]{}<>/\\|-_=+*&^%$#@~`\n\t") * 2
            + list("éèàüößçñøåæœ€£¥©®™°±µ¿¡") + list("日本語中文한국어Ελληνικάрусский") + ["🔭", "🎲", "👍🏽", "\u200d"]
            + ["<|im_end|>", "<|im_start|>", "<|endoftext|>", "<file_sep>", " the", " of", "ing"])
    rng = random.Random(11)
    return fixed + ["".join(rng.choice(pool) for _ in range(rng.randint(1, 60))) for _ in range(n - len(fixed))]


def bench_load_equivalence(raw) -> None:
    """The fast weight-cache load (meta-device build + assigned safetensors, tokenizer.json through `tokenizers`)
    against from_pretrained + AutoTokenizer: identical weights, buffers, configs, logits, token ids and text."""
    from transformers import AutoTokenizer

    folder = models.bundled_cache_dir(models.bundled_gguf_path())
    model = models._prepare(models._cache_model(folder))  # raises where the fast path would fall back
    tok = models._cache_tokenizer(folder)
    ref = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    problems = []
    ours, theirs = model.state_dict(), raw.state_dict()
    if ours.keys() != theirs.keys() or not all(torch.equal(ours[k], theirs[k]) for k in ours):
        problems.append("state dict")
    if [(n, b.tolist()) for n, b in model.named_buffers()] != [(n, b.tolist()) for n, b in raw.named_buffers()]:
        problems.append("buffers")
    if model.get_output_embeddings().weight is not model.get_input_embeddings().weight:
        problems.append("embeddings not tied")
    if (model.config.to_dict(), model.config._attn_implementation) != (raw.config.to_dict(), raw.config._attn_implementation):
        problems.append("config")
    if model.generation_config.to_dict() != raw.generation_config.to_dict():
        problems.append("generation config")
    from dashboard.generation import next_token_logits

    for text in (PROMPT, STORY, "日本語 🔭 <|im_end|> x"):
        ids = encode(tok, text)
        if not torch.equal(next_token_logits(model, ids), next_token_logits(raw, ids)):
            problems.append(f"logits for {text!r}")
    texts = _strings()
    for text in texts:
        for kwargs in ({}, {"add_special_tokens": False}):
            if tok(text, **kwargs)["input_ids"] != ref(text, **kwargs)["input_ids"]:
                problems.append(f"ids of {text!r}")
        ids = ref(text, add_special_tokens=False)["input_ids"]
        for skip in (False, True):
            if tok.decode(ids, skip_special_tokens=skip) != ref.decode(ids, skip_special_tokens=skip):
                problems.append(f"decode of {text!r}")
        if tok.convert_ids_to_tokens(ids) != ref.convert_ids_to_tokens(ids):
            problems.append(f"tokens of {text!r}")
    rng = random.Random(5)
    id_lists = [[rng.randrange(len(ref)) for _ in range(rng.randint(1, 30))] for _ in range(300)]
    id_lists += [[i] for i in range(0, len(ref), 97)] + [[0, 1, 2, 17, 3, 260]]
    for ids in id_lists:
        for skip in (False, True):
            if tok.decode(ids, skip_special_tokens=skip) != ref.decode(ids, skip_special_tokens=skip):
                problems.append(f"decode of ids {ids[:5]}")
    batch = texts[:8]
    if tok(batch, padding=True)["input_ids"] != ref(batch, padding=True)["input_ids"]:
        problems.append("padded batch")
    for attr in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id", "all_special_ids", "model_max_length",
                 "padding_side", "truncation_side", "chat_template", "vocab_size"):
        if getattr(tok, attr) != getattr(ref, attr):
            problems.append(attr)
    if len(tok) != len(ref) or tok.get_vocab() != ref.get_vocab():
        problems.append("vocabulary")
    checked = len(texts) * 2 + len(id_lists)
    record("fast_load_differences", len(problems), 0, "count", baseline=RAW + ": from_pretrained + AutoTokenizer",
           note=f"{checked} texts/id lists, weights, buffers, configs, logits compared; "
                + (f"DIFFERENT: {problems[:5]}" if problems else "identical"))
    del model


# --------------------------------------------------------------------------- slider moves


def page_work_ms(app) -> float:
    """The next-token page's own work for one slider move, called directly: processing, figures, chart spec."""
    tok, model = app.tokenizer, app.model
    path = TokenPath(model, encode(tok, PROMPT))
    settings = [Settings(strategy="sample", temperature=t, top_k=k, top_p=p)
                for t, k, p in [(0.7, 0, 1.0), (1.3, 40, 0.9), (0.5, 5, 0.5), (1.0, 0, 0.8)]]

    def rerun(i=[0]):
        s = settings[i[0] % len(settings)]
        i[0] += 1
        dist = distribution(path.logits, s, prev_ids=torch.tensor(path.ids))
        entropy_bits(dist.probs), entropy_bits(dist.after), dist.mass_kept, dist.kept
        before_after_chart(before_after_frame(tok, dist, 15), "probability", False, selection="pick").to_dict()

    return median_time(rerun, repeats=max(REPEATS, 9)) * 1000


def bench_slider(app) -> None:
    """A temperature move on /next-token through Streamlit's AppTest of streamlit_app.py: forwards of the app's
    own model, and the time of `set_value(...).run()` (the whole script rerun, Streamlit included)."""
    from bench.page import apptest_slider

    work = page_work_ms(app)
    try:
        r = apptest_slider(MODEL)
    except Exception as exc:  # the page is being edited by others: say so rather than invent a number
        record("slider_forwards", None, 0, "forwards", note=f"failed: {type(exc).__name__}: {exc}")
        record("slider_rerun_ms", None, 50, "ms", note=f"failed: {type(exc).__name__}: {exc}")
        return
    check = "" if r["append_forwards"] == 1 and r["metric_changed"] else (
        f" CHECK FAILED: append counted {r['append_forwards']} forwards, entropy changed {r['metric_changed']}")
    record("slider_forwards", r["forwards"], 0, "forwards",
           note=f"{r['moves']} temperature moves through AppTest; an append counts {r['append_forwards']} "
                f"(hook works){check}")
    record("slider_rerun_ms", r["ms"], 50, "ms",
           note=f"AppTest rerun of streamlit_app.py (whole script), median of {r['moves']} moves; "
                f"the page's processing + figures + chart spec alone: {work:.0f} ms")


def bench_browser() -> None:
    """What a person feels (bench/instant.py): a slider move on Next token redrawn in the browser, against the
    plainest one-slider Streamlit app in the same run; the server's CPU during a drag; the page following the
    release; Append and a bar click against a raw decode step; and all of it with 7 other sessions busy."""
    from bench.instant import measure, med, pct

    names = ("slider_browser_ms", "slider_vs_one_slider_app", "slider_server_cpu_ms", "after_release_ms", "append_ms",
             "pick_ms", "class8_slider_ms", "class8_append_ratio", "compare_slider_browser_ms",
             "inside_slider_browser_ms")
    try:
        r = measure(moves=16)
    except Exception as exc:
        for name in names:
            record(name, None, None, "ms", note=f"skipped: {type(exc).__name__}: {str(exc)[:200]}")
        return
    slider, base = r["slider"], r["baseline"]["slider"]
    record("slider_browser_ms", med(slider), 50, "ms",
           note=f"key press → redrawn chart on /next-token, median of {len(slider)} moves, p95 {pct(slider, 0.95):.0f} ms "
                f"(goal ≤ 100); {r['slider_load']}")
    record("slider_vs_one_slider_app", med(slider) / med(base), 0.7, "ratio",
           baseline=f"a one-slider Streamlit app (bench/one_slider_app.py): {med(base):.0f} ms, {r['baseline_load']}",
           note=f"median {med(slider):.0f} ms / {med(base):.0f} ms")
    record("slider_server_cpu_ms", r["cpu"], 10, "ms",
           note=f"server CPU per move over a 16-move drag (40 ms apart) and the one rerun after it; {r['cpu_load']}")
    record("after_release_ms", med(r["release"]), 200, "ms",
           note=f"key release → table, draw sentence and link updated, median of {len(r['release'])} (the bridge "
                f"reports a move {REPORT_MS} ms after its last change); {r['release_load']}")
    raw_ms = RAW_STEP_MS.get("ms")
    floor = med(r["baseline"]["floor"])
    goal = None if raw_ms is None else 1.5 * raw_ms + floor
    for name, key in (("append_ms", "append"), ("pick_ms", "pick")):
        record(name, med(r[key]), goal, "ms", baseline=RAW + f": KV decode step {raw_ms or 0:.0f} ms; floor rerun "
               f"(a button on the one-slider app) {floor:.0f} ms",
               note=f"click → new distribution drawn and the run over, median of {len(r[key])}; goal 1.5 × raw step + "
                    f"floor; {r['click_load']}")
    for name, key, where in (("compare_slider_browser_ms", "compare", "/compare (two columns, After the controls on)"),
                             ("inside_slider_browser_ms", "inside", "/inside (the lens cell's distribution)")):
        record(name, med(r[key]), 50, "ms",
               note=f"key press → redrawn chart on {where}, median of {len(r[key])} moves, p95 {pct(r[key], 0.95):.0f} "
                    f"ms; {r[key + '_load']}")
    cs = r["class_slider"]
    record("class8_slider_ms", med(cs), 100, "ms",
           note=f"as slider_browser_ms with 7 other sessions (websocket clients: 4 appending, 3 generating; "
                f"{r['class_runs']} of their runs) on the same server, p95 {pct(cs, 0.95):.0f} ms; {r['class_load']}")
    record("class8_append_ratio", med(r["class_append"]) / med(r["append"]), 3, "ratio", baseline="append_ms alone",
           note=f"Append with the 7 others busy: {med(r['class_append']):.0f} ms vs {med(r['append']):.0f} ms; "
                f"{r['class_load']}")


# --------------------------------------------------------------------------- the server's own changes, one by one


def bench_server_changes(app) -> None:
    """What each server change does alone: one torch thread per forward on a busy machine, gc.freeze after the
    load (the per-run full collection, and memory over 500 reruns), draw_order once per distribution."""
    import gc

    from dashboard import runtime
    from dashboard.draw import draw_frame, one_draw, top_table
    from dashboard.sampling import draw_order

    ids = encode(app.tokenizer, PROMPT)
    x = torch.tensor([ids])

    @torch.inference_mode()
    def forward():
        app.model(input_ids=x)

    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])  # another session using a core
    try:
        times = {}
        for n in (1, 2, 1, 2):
            torch.set_num_threads(n)
            times.setdefault(n, []).append(median_time(forward, repeats=max(REPEATS, 7)))
    finally:
        busy.kill()
        torch.set_num_threads(runtime.torch_threads())
    one, two = statistics.median(times[1]), statistics.median(times[2])
    record("threads_forward_ratio", two / one, None, "ratio", baseline="1 torch thread",
           note=f"a {len(ids)}-token forward with 2 threads {two * 1000:.0f} ms vs 1 thread {one * 1000:.0f} ms while "
                f"another process keeps a core busy; load {os.getloadavg()[0]:.1f}")

    def collect_ms():
        start = time.perf_counter()
        gc.collect(2)
        return (time.perf_counter() - start) * 1000

    gc.unfreeze()
    tracked = len(gc.get_objects())
    unfrozen = statistics.median(collect_ms() for _ in range(5))
    runtime.freeze_heap()
    frozen = statistics.median(collect_ms() for _ in range(5))
    left = len(gc.get_objects())
    record("gc_collect_frozen_ms", frozen, 10, "ms", baseline=f"unfrozen heap: {unfrozen:.0f} ms",
           note=f"Streamlit's gc.collect(2) after every run with the model loaded: {unfrozen:.0f} ms before "
                f"gc.freeze(), {frozen:.1f} ms after ({tracked:,} objects tracked before, {left:,} after, "
                f"{gc.get_freeze_count():,} frozen); "
                f"load {os.getloadavg()[0]:.1f}")

    path = TokenPath(app.model, ids)
    dist = distribution(path.logits, Settings(strategy="sample", temperature=1.3), prev_ids=torch.tensor(path.ids))
    once = median_time(lambda: (lambda d: (one_draw(d, 0, 0), draw_frame(app.tokenizer, d, one_draw(d, 0, 0)),
                                           top_table(app.tokenizer, d, 15)))(
        distribution(path.logits, Settings(strategy="sample", temperature=1.3), prev_ids=torch.tensor(path.ids))))
    sort = median_time(lambda: draw_order(dist.after))
    record("draw_order_ms", sort * 1000, None, "ms",
           note=f"one argsort + cumsum over the vocabulary, now once per distribution (was 4× per move): the "
                f"draw, its frame and the table together {once * 1000:.0f} ms")


def bench_rerun_memory(reruns: int = 500) -> None:
    """Server memory over 500 reruns of Next token (AppTest in this process), heap frozen after the load."""
    from bench.page import open_page
    from bench.sessions import rss_mb

    at = open_page("pages/next-token.py")
    start = rss_mb(os.getpid())
    t0 = time.perf_counter()
    for i in range(reruns):
        at.session_state["temperature"] = [0.7, 1.3, 0.9, 1.1][i % 4]
        at.run()
    spent = time.perf_counter() - t0
    end = rss_mb(os.getpid())
    record("rerun_memory_growth_mb", end - start, 50, "MB",
           note=f"RSS {start:.0f} → {end:.0f} MB over {reruns} reruns of /next-token (AppTest, heap frozen after the "
                f"load), {spent / reruns * 1000:.0f} ms a rerun; load {os.getloadavg()[0]:.1f}")


# --------------------------------------------------------------------------- model work vs raw transformers


def bench_step(app, raw) -> None:
    """Appending one token on the next-token page vs a raw KV-cached decode step of the same model."""
    from transformers import DynamicCache

    ids = encode(app.tokenizer, PROMPT)

    def app_step():
        path = TokenPath(app.model, ids)
        start = time.perf_counter()
        for _ in range(8):
            path.append(int(path.logits.argmax()), "most likely")
        return (time.perf_counter() - start) / 8

    @torch.inference_mode()
    def raw_step():
        cache = DynamicCache(config=raw.config)
        out = raw(input_ids=torch.tensor([ids]), cache=cache, use_cache=True)
        token = out.logits[:, -1].argmax(-1, keepdim=True)
        start = time.perf_counter()
        for _ in range(8):
            out = raw(input_ids=token, cache=cache, use_cache=True)
            token = out.logits[:, -1].argmax(-1, keepdim=True)
        return (time.perf_counter() - start) / 8

    app_step(), raw_step()
    app_times, raw_times = [], []
    for _ in range(REPEATS):  # interleaved, so a busy moment hits both sides
        app_times.append(app_step())
        raw_times.append(raw_step())
    app_s, raw_s = statistics.median(app_times), statistics.median(raw_times)
    path = TokenPath(app.model, ids)
    full_s = median_time(lambda: TokenPath(app.model, path.ids + [13] * 40))
    RAW_STEP_MS["ms"] = raw_s * 1000
    record("step_vs_raw_decode", app_s / raw_s, 1.1, "ratio", baseline=RAW + ": KV-cached decode step",
           note=f"append {app_s * 1000:.1f} ms, raw step {raw_s * 1000:.1f} ms, "
                f"full forward of 51 tokens {full_s * 1000:.1f} ms")


def bench_stream(app, raw) -> None:
    """The Generate page's text path (stream_text over stream_ids) vs raw model.generate at the same precision,
    greedy, exactly N new tokens on both sides (checked): fp32 against from_pretrained's fp32 model, bf16 against
    generate on the same bf16 copy (models.bf16_copy) the page uses."""
    tok = app.tokenizer
    ids = encode(tok, STORY)
    n = 48
    settings = Settings(strategy="greedy", max_new_tokens=n)
    fast = models.bf16_copy(app)
    produced: dict[str, list[int]] = {}

    def app_run(model, label):
        run = Generation(list(ids), settings)
        text = "".join(stream_text(tok, stream_ids(model, tok, ids, settings, run)))
        produced[label] = run.new_ids
        return text

    @torch.inference_mode()
    def raw_run(model, label):
        out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                             max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=tok.pad_token_id)
        produced[label] = out[0, len(ids):].tolist()

    runs = {"app fp32": lambda: app_run(app.model, "app fp32"), "raw fp32": lambda: raw_run(raw, "raw fp32"),
            "app bf16": lambda: app_run(fast.model, "app bf16"), "raw bf16": lambda: raw_run(fast.model, "raw bf16")}
    times = {k: [] for k in runs}
    for fn in runs.values():
        fn()  # warm-up
    for _ in range(REPEATS):  # interleaved, so a busy moment hits every side
        for k, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - start)
    s = {k: statistics.median(v) for k, v in times.items()}
    counts = {k: len(v) for k, v in produced.items()}
    exact = all(c == n for c in counts.values())
    same = produced["app fp32"] == produced["raw fp32"], produced["app bf16"] == produced["raw bf16"]
    check = "" if exact else f" TOKEN COUNT MISMATCH {counts}"
    record("stream_vs_raw_generate", s["raw fp32"] / s["app fp32"] if exact else None, 0.95, "ratio",
           higher_is_better=True, baseline=RAW + ": model.generate, fp32",
           note=f"fp32: app {n / s['app fp32']:.1f} tok/s, raw generate {n / s['raw fp32']:.1f} tok/s, {n} tokens each, "
                f"same tokens {'yes' if same[0] else 'NO'}{check}")
    record("stream_bf16_vs_raw_bf16", s["raw bf16"] / s["app bf16"] if exact else None, None, "ratio",
           higher_is_better=True, baseline=RAW + ": model.generate, bf16 copy",
           note=f"bf16: app {n / s['app bf16']:.1f} tok/s, raw generate {n / s['raw bf16']:.1f} tok/s, same tokens "
                f"{'yes' if same[1] else 'NO'}; app bf16 vs app fp32: {s['app fp32'] / s['app bf16']:.2f}x speed{check}")



def bench_compare(app) -> None:
    """Four prompts in one padded batch vs one prompt."""
    prompts = [PROMPT, "Udacity is the worst place to learn about generative",
               "My grandmother taught me everything about generative", "The conference keynote was all about generative"]
    ids = [encode(app.tokenizer, p) for p in prompts]
    four = median_time(lambda: batched_next_logits(app.model, ids))
    one = median_time(lambda: batched_next_logits(app.model, ids[:1]))
    record("compare4_vs_1", four / one, 2.0, "ratio", note=f"4 prompts {four * 1000:.0f} ms, 1 prompt {one * 1000:.0f} ms")


# --------------------------------------------------------------------------- cold start

COLD = """
import time, sys
start = time.perf_counter()
sys.path.insert(0, {root!r})
from dashboard import models, tokens
from dashboard.generation import next_token_logits
lm = models.load_model({model!r})
probs = next_token_logits(lm.model, tokens.encode(lm.tokenizer, {prompt!r})).softmax(-1)
seconds = time.perf_counter() - start
peak = [int(l.split()[1]) // 1024 for l in open("/proc/self/status") if l.startswith("VmHWM")][0]  # this process only
print(seconds, peak, lm.how)
"""
BARE = "import torch, transformers\nfrom transformers import AutoModelForCausalLM"
# transformers 5 imports its modeling code (and with it torch._dynamo and torch.distributed.tensor) only when a
# model class is touched, which AutoModelForCausalLM's import alone does not do: what any transformers Llama pays.
FLOOR = "import torch\nfrom transformers.models.llama.modeling_llama import LlamaForCausalLM"


def bench_cold_start() -> None:
    """A fresh process to the first distribution (warm weight cache) vs a fresh process that only imports torch
    and transformers, interleaved in the same run."""
    code = {"app": COLD.format(root=str(ROOT), prompt=PROMPT, model=MODEL), "bare": BARE, "floor": FLOOR}
    times = {k: [] for k in code}
    for snippet in code.values():  # page cache warm
        subprocess.run([sys.executable, "-c", snippet], capture_output=True, check=True)
    inside = []
    for _ in range(REPEATS):
        for k, snippet in code.items():
            start = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, check=True)
            times[k].append(time.perf_counter() - start)
            if k == "app":
                inside.append(out.stdout.strip().split(maxsplit=2))
    s = {k: statistics.median(v) for k, v in times.items()}
    peak = statistics.median(int(i[1]) for i in inside)
    record("cold_start_ratio", s["app"] / s["bare"], 1.5, "ratio", baseline=RAW + ": import torch + transformers",
           note=f"app {s['app']:.2f} s (via {inside[-1][2]}, peak RSS {peak} MB), bare imports {s['bare']:.2f} s "
                f"(fastest runs: {min(times['app']) / min(times['bare']):.2f}x); importing transformers' Llama classes "
                f"alone: {s['floor']:.2f} s = {s['floor'] / s['bare']:.2f}x, app vs that: {s['app'] / s['floor']:.2f}x")


FIRST = """
import os, sys, time
start = time.perf_counter()
sys.path.insert(0, {root!r})
from dashboard import tokens
from dashboard.generation import next_token_logits
from dashboard.loaded import LoadedModels
marks = {{}}
cache = LoadedModels()
def report(text, fraction=None):
    for key in ("tokenizer", "Dequantizing", "Writing"):
        marks.setdefault(key, time.perf_counter() - start) if key in text else None
lm = cache.get({model!r}, report)
probs = next_token_logits(lm.model, tokens.encode(lm.tokenizer, {prompt!r})).softmax(-1)
print(time.perf_counter() - start, marks["tokenizer"], marks["Dequantizing"], marks["Writing"], lm.how)
"""


def bench_first_start() -> None:
    """A new machine's first start: a fresh process with an empty weight cache to the first distribution (the
    bundled GGUF read and dequantized, the cache written), with when each step of the page's bar began."""
    with tempfile.TemporaryDirectory() as empty:
        out = subprocess.run([sys.executable, "-c", FIRST.format(root=str(ROOT), prompt=PROMPT, model=MODEL)],
                             capture_output=True, text=True, check=True, env={**os.environ, "TOKENSCOPE_CACHE": empty})
    total, tok, deq, write, how = out.stdout.strip().split(maxsplit=4)
    total, tok, deq, write = map(float, (total, tok, deq, write))
    record("first_start_s", total, None, "s", baseline="— (information)",
           note=f"{how}: imports {tok:.1f} s, tokenizer from the GGUF {deq - tok:.1f} s, tensors {write - deq:.1f} s, "
                f"cache and first forward {total - write:.1f} s; the page's bar shows from its first run "
                f"(tests/e2e/test_first_start.py), load average {os.getloadavg()[0]:.1f}")


def bench_sessions() -> None:
    """Server RSS with 8 browser sessions on the next-token page vs 1 (needs Chromium)."""
    from bench.sessions import rss_ratio

    try:
        ratio, one_mb, eight_mb = rss_ratio()
    except Exception as exc:  # no browser here: say so rather than invent a number
        record("sessions8_rss_ratio", None, 1.1, "ratio", note=f"skipped: {exc}")
        return
    record("sessions8_rss_ratio", ratio, 1.1, "ratio", note=f"1 session {one_mb:.0f} MB, 8 sessions {eight_mb:.0f} MB")


def bench_inside(app) -> None:
    """The Inside page: hidden states, the whole lens, occlusion, a selector move (bench/inside.py)."""
    from bench import inside

    try:
        inside.run(app, record, median_time, REPEATS, PAGE)
    except Exception as exc:  # say so rather than invent a number
        record("inside_lens", None, 4.0, "ratio", note=f"failed: {type(exc).__name__}: {exc}")


def bench_engine(app) -> None:
    """The app on llama.cpp's llama-server vs the app on the local fp32 model: one greedy stream through
    EngineBackend.stream vs LocalBackend.stream (bench/engine.py)."""
    from bench import engine

    engine.bench_engine_stream(app, record, REPEATS, STORY)


def bench_class8() -> None:
    """8 Chromium sessions press Generate at once on a served app: on the engine vs 1 session, and vs 8 on the
    local model (bench/engine.py; needs Chromium and llama-server)."""
    from bench import engine

    engine.bench_class8(record, max(1, min(REPEATS, 3)))


def bench_class40() -> None:
    """A Class room (bench/classroom.py): 40 learners guessing at once and the teacher in Chromium, on SQLite and on
    PostgreSQL; every guess stored once, the teacher's count within 2 s, Reveal drawn within 1 s, memory over 30
    rounds."""
    from bench import classroom

    try:
        runs = classroom.measure()
    except Exception as exc:
        for name in ("class40_count_s", "class40_reveal_s", "class40_rss_growth_mb"):
            record(name, None, None, "s", note=f"skipped: {type(exc).__name__}: {str(exc)[:200]}")
        return
    for r in runs:
        db, n = r["db"], classroom.LEARNERS
        rows, distinct = r["stored"]
        once = f"{rows} guess rows over {len(r['spread'])} rounds, {distinct} distinct (round, learner)"
        record(f"class40_count_s[{db}]", max(r["count"]), 2, "s",
               note=f"{n} learners (websocket sessions) guess at once (all sent within {classroom.med(r['spread']):.2f} s, "
                    f"median of rounds, worst {max(r['spread']):.2f} s); the last stored → the teacher's count reads "
                    f"{n}: worst of {len(r['count'])} rounds, median {classroom.med(r['count']):.2f} s; {once}; {r['load']}")
        record(f"class40_reveal_s[{db}]", max(r["reveal"]), 1, "s",
               note=f"Reveal pressed → the class-vs-model chart drawn, worst of {len(r['reveal'])}, median "
                    f"{classroom.med(r['reveal']):.2f} s; {r['load']}")
        record(f"class40_rss_growth_mb[{db}]", r["rss_end"] - r["rss_after_10"], 50, "MB",
               note=f"server RSS after round 1 {r['rss_after_1']:.0f} MB, round 10 {r['rss_after_10']:.0f} MB, round "
                    f"{len(r['spread'])} {r['rss_end']:.0f} MB (bounded: the room lives in the database); {r['load']}")


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("streamlit").setLevel(logging.ERROR)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    print(f"Tokenscope bench on {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.1f} (other jobs share these CPUs: compare ratios)")
    app = LOADED.get(MODEL)  # the process-wide copy the pages (AppTest) use too
    raw = raw_model()
    bench_load_equivalence(raw)
    bench_slider(app)
    bench_step(app, raw)
    bench_stream(app, raw)
    bench_engine(app)
    bench_compare(app)
    bench_inside(app)
    bench_server_changes(app)
    if os.environ.get("BENCH_RERUNS", "1") != "0":
        bench_rerun_memory()
    del raw
    bench_cold_start()
    bench_first_start()
    if os.environ.get("BENCH_BROWSER", "1") != "0":
        bench_browser()
        bench_class8()
        bench_class40()
    if os.environ.get("BENCH_SESSIONS", "1") != "0":
        bench_sessions()
    out = ROOT / "bench" / "results.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out.relative_to(ROOT)} (load average now {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
