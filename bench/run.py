"""`make bench`: the app's hot paths against raw transformers in the same process, as ratios (medians).

Writes bench/results.json: a list of {"name", "value", "goal", "unit", "ok"}."""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
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
from dashboard.generation import TokenPath, stream_ids  # noqa: E402
from dashboard.sampling import Settings, distribution, entropy_bits  # noqa: E402
from dashboard.tokens import encode  # noqa: E402

log = logging.getLogger("bench")
PROMPT = "Udacity is the best place to learn about generative"
REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))
results: list[dict] = []


def record(name: str, value: float, goal: float, unit: str, higher_is_better: bool = False, note: str = "") -> None:
    """Add one result row and print it."""
    ok = value >= goal if higher_is_better else value <= goal
    results.append({"name": name, "value": round(value, 4), "goal": goal, "unit": unit, "ok": ok, "note": note})
    sign = "≥" if higher_is_better else "≤"
    print(f"{name:24s} {value:10.3f} {unit:8s} goal {sign} {goal:<6g} {'OK' if ok else 'MISSED'}  {note}", flush=True)


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
    """The same weights loaded the plain transformers way (default attention, fp32), as the baseline."""
    from transformers import AutoModelForCausalLM

    folder = models.bundled_cache_dir(models.bundled_gguf_path())
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


def bench_slider(app) -> None:
    """A slider move on the next-token page: forwards caused, and the time of the page's own work."""
    tok, model = app.tokenizer, app.model
    path = TokenPath(model, encode(tok, PROMPT))
    calls = []
    handle = model.register_forward_hook(lambda *a: calls.append(1))
    settings = [Settings(strategy="sample", temperature=t, top_k=k, top_p=p)
                for t, k, p in [(0.7, 0, 1.0), (1.3, 40, 0.9), (0.5, 5, 0.5), (1.0, 0, 0.8)]]

    def rerun(i=[0]):
        s = settings[i[0] % len(settings)]
        i[0] += 1
        dist = distribution(path.logits, s, prev_ids=torch.tensor(path.ids))
        entropy_bits(dist.probs), entropy_bits(dist.after), dist.mass_kept, dist.kept
        before_after_chart(before_after_frame(tok, dist, 15), "probability", False, selection="pick").to_dict()

    seconds = median_time(rerun, repeats=max(REPEATS, 9))
    handle.remove()
    record("slider_forwards", len(calls), 0, "forwards")
    record("slider_rerun_ms", seconds * 1000, 50, "ms", note="processing + figures + chart spec")


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

    app_s = statistics.median(app_step() for _ in range(REPEATS))
    raw_s = statistics.median(raw_step() for _ in range(REPEATS))
    path = TokenPath(app.model, ids)
    full_s = median_time(lambda: TokenPath(app.model, path.ids + [13] * 40))
    record("step_vs_raw_decode", app_s / raw_s, 1.1, "ratio",
           note=f"append {app_s * 1000:.1f} ms, raw step {raw_s * 1000:.1f} ms, full forward of 51 tokens {full_s * 1000:.1f} ms")


def bench_stream(app, raw) -> None:
    """Tokens/s of the app's streamed generation (fast bf16 precision, and exact fp32) vs raw model.generate
    in fp32, greedy, same prompt and length."""
    ids = encode(app.tokenizer, "Once upon a time, generative models")
    n = 48
    settings = Settings(strategy="greedy", max_new_tokens=n)
    eos_free = {"eos_token_id": None}
    fast = models.bf16_copy(app)

    def app_run(model=fast.model):
        return list(stream_ids(model, _NoEos(), ids, settings))

    @torch.inference_mode()
    def raw_run():
        return raw.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                            max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0, **eos_free)

    app_s = median_time(app_run, repeats=3)
    raw_s = median_time(raw_run, repeats=3)
    exact_s = median_time(lambda: app_run(app.model), repeats=3)
    record("stream_vs_raw_generate", raw_s / app_s, 2.0, "ratio", higher_is_better=True,
           note=f"app bf16 {n / app_s:.1f} tok/s, app fp32 {n / exact_s:.1f} tok/s ({raw_s / exact_s:.2f}x), "
                f"raw generate fp32 {n / raw_s:.1f} tok/s")


class _NoEos:
    """A tokenizer stand-in with no end-of-text id, so both sides generate the same number of tokens."""

    eos_token_id = None


def bench_compare(app) -> None:
    """Four prompts in one padded batch vs one prompt."""
    prompts = [PROMPT, "Udacity is the worst place to learn about generative",
               "My grandmother taught me everything about generative", "The conference keynote was all about generative"]
    ids = [encode(app.tokenizer, p) for p in prompts]
    four = median_time(lambda: batched_next_logits(app.model, ids))
    one = median_time(lambda: batched_next_logits(app.model, ids[:1]))
    record("compare4_vs_1", four / one, 2.0, "ratio", note=f"4 prompts {four * 1000:.0f} ms, 1 prompt {one * 1000:.0f} ms")


COLD = """
import time, sys
start = time.perf_counter()
sys.path.insert(0, {root!r})
from dashboard import models, tokens
from dashboard.generation import next_token_logits
lm = models.load_model("smollm2-135m")
probs = next_token_logits(lm.model, tokens.encode(lm.tokenizer, {prompt!r})).softmax(-1)
print(time.perf_counter() - start, lm.how)
"""


def bench_cold_start() -> None:
    """A fresh process to the first distribution, with a warm weight cache."""
    code = COLD.format(root=str(ROOT), prompt=PROMPT)
    subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)  # page cache warm
    times = []
    for _ in range(3):
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - start)
    inside = out.stdout.strip().split()
    record("cold_start_s", statistics.median(times), 3.0, "s", note=f"in-process {float(inside[0]):.2f} s via {inside[1]} {inside[2] if len(inside) > 2 else ''}")


def bench_sessions() -> None:
    """Server RSS with 8 browser sessions on the next-token page vs 1 (needs Chromium)."""
    from bench.sessions import rss_ratio

    try:
        ratio, one_mb, eight_mb = rss_ratio()
    except Exception as exc:  # no browser here: say so rather than invent a number
        print(f"sessions8_rss_ratio      skipped: {exc}")
        results.append({"name": "sessions8_rss_ratio", "value": None, "goal": 1.1, "unit": "ratio", "ok": False,
                        "note": f"skipped: {exc}"})
        return
    record("sessions8_rss_ratio", ratio, 1.1, "ratio", note=f"1 session {one_mb:.0f} MB, 8 sessions {eight_mb:.0f} MB")


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    print(f"Tokenscope bench on {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads")
    app = models.load_model("smollm2-135m")
    raw = raw_model()
    bench_slider(app)
    bench_step(app, raw)
    bench_stream(app, raw)
    bench_compare(app)
    del raw
    bench_cold_start()
    if os.environ.get("BENCH_SESSIONS", "1") != "0":
        bench_sessions()
    out = ROOT / "bench" / "results.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
