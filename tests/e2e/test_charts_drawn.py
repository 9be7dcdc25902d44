"""The charts as Chromium draws them, at 1440×900 and on a 390×844 phone: every token label visible (opacity and
display of the element and its ancestors, not merely present: Vega keeps a culled label as an invisible <text>),
no two texts overlapping, every text inside its chart, bars in rank order by their position on screen, lens cell
text inside its cell, the track chart's legend naming both lines, and no chart wider than its container."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from .conftest import open_app

pytestmark = pytest.mark.e2e
LOAD_S = 240
FRANCE = "The capital of France is"
LONG = ("In physics, gravity is a fundamental interaction which causes mutual attraction between all things that "
        "have mass, and air resistance slows a falling object down until it reaches its terminal velocity")
VIEWPORTS = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}

# Per chart: its box, its container's, and every visible <text> and rect mark with their boxes on screen.
_CHARTS_JS = """
() => {
  const shown = (el) => {
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
      const cs = getComputedStyle(e);
      if (cs.display === 'none' || cs.visibility === 'hidden' || parseFloat(cs.opacity) === 0) return false;
      for (const a of ['opacity', 'fill-opacity']) {
        const v = e.getAttribute(a);
        if (v !== null && parseFloat(v) === 0) return false;
      }
      if (e.matches('[data-testid="stVegaLiteChart"]')) break;
    }
    const fill = el.getAttribute('fill');
    return !(fill === 'none' || fill === 'transparent');
  };
  const box = (r) => ({x0: r.left, y0: r.top, x1: r.right, y1: r.bottom});
  const classes = (el) => {
    const out = [];
    for (let e = el.parentElement; e && e.tagName.toLowerCase() !== 'svg'; e = e.parentElement) {
      if (e.getAttribute('class')) out.push(e.getAttribute('class'));
    }
    return out.join(' ');
  };
  return [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')].map((chart) => {
    const svg = chart.querySelector('svg.marks') || chart.querySelector('svg');
    const texts = [...svg.querySelectorAll('text')].filter((t) => t.textContent.trim() && shown(t)).map((t) => {
      const axis = t.closest('g.role-axis[aria-label]');
      return {text: t.textContent, box: box(t.getBoundingClientRect()), classes: classes(t),
              axis: axis ? axis.getAttribute('aria-label') : ''};
    });
    const marks = [...svg.querySelectorAll('g.mark-rect.role-mark path')].filter(shown).map((p) => ({
      label: p.getAttribute('aria-label') || '', box: box(p.getBoundingClientRect())}));
    const main = document.querySelector('[data-testid="stMainBlockContainer"]') || document.body;
    return {chart: box(chart.getBoundingClientRect()), svg: box(svg.getBoundingClientRect()),
            main: box(main.getBoundingClientRect()), viewport: window.innerWidth, texts, marks};
  });
}
"""


def _fields(label: str) -> dict[str, str]:
    parts = re.split(r"; (?=[A-Za-z][\w ()=×-]*: )", label)
    return dict(p.partition(": ")[::2] for p in parts if ": " in p)


def _shows(shown: str, full: str) -> bool:
    return shown == full or (shown.endswith("…") and len(shown) > 1 and full.startswith(shown[:-1]))


def _overlap(a: dict, b: dict, tol: float = 1.0) -> bool:
    return (min(a["x1"], b["x1"]) - max(a["x0"], b["x0"]) > tol
            and min(a["y1"], b["y1"]) - max(a["y0"], b["y0"]) > tol)


def _inside(a: dict, b: dict, tol: float = 1.0) -> bool:
    return (a["x0"] >= b["x0"] - tol and a["y0"] >= b["y0"] - tol
            and a["x1"] <= b["x1"] + tol and a["y1"] <= b["y1"] + tol)


def _centre(b: dict) -> tuple[float, float]:
    return (b["x0"] + b["x1"]) / 2, (b["y0"] + b["y1"]) / 2


def _kind(chart: dict) -> str:
    """Which chart this is, from its marks' aria-labels (their tooltip fields) and legend."""
    keys = {k for m in chart["marks"] for k in _fields(m["label"])}
    legend = " ".join(t["text"] for t in chart["texts"] if "role-legend-label" in t["classes"])
    if "survives" in keys:
        return "next-token"
    if "rank after" in keys:
        return "draw"
    if "column" in keys:
        return "compare"
    if "top token" in keys:
        return "lens"
    if "query" in keys:
        return "attention"
    if "token" in keys and "value" in keys:
        return "bars"
    return "track" if "rank (1 = top)" in legend else "other"


def _parts(chart: dict) -> list[dict]:
    """The charts inside one chart: Next token's instrument draws the distribution's bars and the draw's stretches
    in one view; each is checked as its own chart (its marks, every text of the view)."""
    keys = [set(_fields(m["label"])) for m in chart["marks"]]
    if any("survives" in k for k in keys) and any("rank after" in k for k in keys):
        return [{**chart, "marks": [m for m, k in zip(chart["marks"], keys) if key in k]}
                for key in ("survives", "rank after")]
    return [chart]


def _labels_for(chart: dict, expected: list[str], where: str, axis: str = "") -> dict[str, dict]:
    """{label: its visible axis label} for every expected token label (on the axis whose aria-label starts with
    `axis`: "X-axis", "Y-axis"); fails naming the ones not visible."""
    drawn = [t for t in chart["texts"] if "role-axis-label" in t["classes"] and t["axis"].startswith(axis)]
    found = {full: t for full in expected for t in drawn if _shows(t["text"], full)}
    missing = [e for e in expected if e not in found]
    assert not missing, f"{where}: {len(missing)} of {len(expected)} token labels not visible, e.g. {missing[:6]}"
    return found


def _check_common(chart: dict, where: str) -> None:
    """What every chart must do: fit its container and the page, keep texts inside and apart."""
    assert chart["svg"]["x1"] <= chart["main"]["x1"] + 1 and chart["svg"]["x0"] >= chart["main"]["x0"] - 1, \
        f"{where}: the chart ({chart['svg']}) is wider than the main area ({chart['main']})"
    assert chart["svg"]["x1"] <= chart["viewport"] and chart["chart"]["x1"] <= chart["viewport"], \
        f"{where}: the chart runs past the window's right edge ({chart['viewport']} px)"
    outside = [t["text"] for t in chart["texts"] if not _inside(t["box"], chart["svg"])]
    assert not outside, f"{where}: texts outside the chart: {outside[:8]}"
    texts = sorted(chart["texts"], key=lambda t: t["box"]["x0"])
    pairs = []
    for i, a in enumerate(texts):
        for b in texts[i + 1:]:
            if b["box"]["x0"] >= a["box"]["x1"] - 1:
                break
            if _overlap(a["box"], b["box"]):
                pairs.append((a["text"], b["text"]))
    assert not pairs, f"{where}: {len(pairs)} overlapping texts, e.g. {pairs[:6]}"


def _check_bars(chart: dict, where: str, key: str) -> list[tuple[dict, dict]]:
    """Every bar's label visible, each bar beside its own label; returns (bar fields, bar box) top to bottom."""
    bars = [(_fields(m["label"]), m["box"]) for m in chart["marks"] if f"{key}: " in m["label"]]
    assert bars, f"{where}: no bars"
    expected = list(dict.fromkeys(f[key] for f, _ in bars))
    found = _labels_for(chart, expected, where)
    for f, b in bars:
        nearest = min(found, key=lambda e: abs(_centre(found[e]["box"])[1] - _centre(b)[1]))
        assert nearest == f[key], f"{where}: the bar of {f[key]!r} sits beside the label {nearest!r}"
    return sorted(bars, key=lambda fb: _centre(fb[1])[1])


def _check(chart: dict, where: str) -> str:
    kind = _kind(chart)
    where = f"{where} [{kind}]"
    _check_common(chart, where)
    if kind == "next-token":
        ranks = [int(f["rank"]) for f, _ in _check_bars(chart, where, "token")]
        assert ranks == sorted(ranks), f"{where}: bars top to bottom have ranks {ranks}"
    elif kind == "compare":
        bars = _check_bars(chart, where, "token")
        best: dict[str, float] = {}
        for f, _ in bars:
            p = f["probability"]  # as the axis formats it ("28.219905%") or plain
            best[f["token"]] = max(best.get(f["token"], 0.0), float(p[:-1]) / 100 if p.endswith("%") else float(p))
        order = list(dict.fromkeys(f["token"] for f, _ in bars))  # tokens top to bottom
        assert [best[t] for t in order] == sorted(best.values(), reverse=True), f"{where}: not by probability"
    elif kind == "bars":
        bars = _check_bars(chart, where, "token")
        positions = [int(f["token"].split(":")[0]) for f, _ in bars]
        assert positions == sorted(positions), f"{where}: tokens out of order: {positions}"
    elif kind == "draw":
        u = [t for t in chart["texts"] if t["text"].startswith("u = ")]
        assert len(u) == 1, f"{where}: the u label is not visible"
        for m in chart["marks"]:
            token = _fields(m["label"]).get("token")
            if token is None:
                continue
            names = [t for t in chart["texts"] if "role-mark" in t["classes"] and t is not u[0]
                     and m["box"]["x0"] <= _centre(t["box"])[0] <= m["box"]["x1"]
                     and m["box"]["y0"] <= _centre(t["box"])[1] <= m["box"]["y1"]]
            if m["box"]["x1"] - m["box"]["x0"] >= 40:
                assert names and _shows(names[0]["text"], token), f"{where}: the stretch of {token!r} is unnamed"
            for t in names:
                assert _inside(t["box"], m["box"]), f"{where}: {t['text']!r} overflows its stretch"
    elif kind == "lens":
        cells = [(_fields(m["label"]), m["box"]) for m in chart["marks"]]
        _labels_for(chart, list(dict.fromkeys(f["position"] for f, _ in cells)), where)
        for t in (t for t in chart["texts"] if "role-mark" in t["classes"]):
            x, y = _centre(t["box"])
            cell = next(((f, b) for f, b in cells if b["x0"] <= x <= b["x1"] and b["y0"] <= y <= b["y1"]), None)
            assert cell is not None and _inside(t["box"], cell[1]), f"{where}: cell text {t['text']!r} overflows"
    elif kind == "attention":
        cells = [_fields(m["label"]) for m in chart["marks"]]
        queries = list(dict.fromkeys(f["query"] for f in cells))
        rows = _labels_for(chart, queries, where, "Y-axis")
        columns = _labels_for(chart, queries, where, "X-axis")  # a short prompt: every key column is labelled too
        for found, along in ((rows, 1), (columns, 0)):
            spots = [_centre(found[q]["box"])[along] for q in queries]
            assert spots == sorted(spots), f"{where}: labels out of order"
    elif kind == "track":
        legend = " ".join(t["text"] for t in chart["texts"] if "role-legend-label" in t["classes"])
        assert "probability of" in legend and "rank" in legend, f"{where}: legend {legend!r}"
    return kind


@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_every_chart_is_drawn_readably(page, base_url, device):
    page.set_viewport_size(VIEWPORTS[device])
    links = {
        "next-token": (f"{base_url}/next-token?top_k=5", {"next-token", "draw"}),
        "compare": (f"{base_url}/compare", {"compare"}),
        "lens": (f"{base_url}/inside?prompt={quote(LONG)}&view=lens", {"track", "lens", "next-token"}),
        "attention": (f"{base_url}/inside?prompt={quote(FRANCE)}&view=attention", {"attention", "bars"}),
        "attribution": (f"{base_url}/inside?prompt={quote(FRANCE)}&view=attribution", {"bars"}),
    }
    problems = []  # every chart of every page is looked at before the test fails, naming all it found
    for name, (url, kinds) in links.items():
        open_app(page, url, timeout_s=LOAD_S)
        page.wait_for_selector('[data-testid="stVegaLiteChart"] svg', timeout=LOAD_S * 1000)
        seen = set()
        for chart in (part for whole in page.evaluate(_CHARTS_JS) for part in _parts(whole)):
            seen.add(_kind(chart))
            try:
                _check(chart, f"{device} {name}")
            except AssertionError as exc:
                problems.append(str(exc).splitlines()[0])
        if not kinds <= seen:
            problems.append(f"{device} {name}: expected charts {kinds}, found {seen}")
    assert not problems, "\n".join(problems)
