"""Every view round-trips through its share link: on every page, each widget that changes what is shown is set to a
value other than its default (the widgets are found on the page, so a new widget is covered without editing this
test), the sidebar's share link is opened in a fresh browser context, and the same widget values and the same
visible text must come back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

import pytest

from .conftest import VIEWPORT, expect, open_app, share_link, wait_for_app

pytestmark = pytest.mark.e2e

# Widgets that set up an action (a button press) rather than change what is shown: they need not round-trip.
ACTION_PARAMETERS = {"Branch: go back to just before step"}

# Every widget in the main area: its kind, label, value, whether it can be used now. Kinds by Streamlit's test ids.
_WIDGETS_JS = r"""
() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const label = (el) => {
    const l = el.querySelector('[data-testid="stWidgetLabel"]');
    return (l ? l.innerText : (el.getAttribute('aria-label') || '')).trim();
  };
  const shown = (el) => {
    if (!el.isConnected) return false;
    for (let e = el; e && e !== document.body; e = e.parentElement) {
      const s = getComputedStyle(e);
      if (s.display === 'none' || s.visibility === 'hidden' || e.hidden) return false;
    }
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  };
  const out = [];
  const add = (kind, el, value, disabled) => out.push({kind, label: label(el), value, disabled: !!disabled,
                                                       visible: shown(el)});
  for (const el of main.querySelectorAll('[data-testid="stSlider"]')) {
    const inputs = [...el.querySelectorAll('input[type="range"]')];
    add('slider', el, inputs.map((i) => i.value).join(','), inputs.some((i) => i.disabled));
  }
  for (const el of main.querySelectorAll('[data-testid="stSelectbox"]')) {
    const input = el.querySelector('input[role="combobox"]');
    add('selectbox', el, input ? input.value : '', input && input.disabled);
  }
  for (const el of main.querySelectorAll('[data-testid="stCheckbox"]')) {
    const input = el.querySelector('input[type="checkbox"]');
    add('checkbox', el, String(input.checked), input.disabled);
  }
  for (const el of main.querySelectorAll('[data-testid="stRadio"]')) {
    const checked = el.querySelector('input[type="radio"]:checked');
    const text = checked ? (checked.closest('label') || checked.parentElement).innerText.trim() : '';
    add('radio', el, text, [...el.querySelectorAll('input')].every((i) => i.disabled));
  }
  for (const el of main.querySelectorAll('[data-testid="stButtonGroup"]')) {
    const on = [...el.querySelectorAll('button[aria-checked="true"]')].map((b) => b.innerText.trim());
    add('segmented', el, on.join(','), el.querySelector('[aria-disabled="true"]'));
  }
  for (const el of main.querySelectorAll('[data-testid="stTextArea"]')) {
    const t = el.querySelector('textarea');
    add('textarea', el, t.value, t.disabled);
  }
  for (const el of main.querySelectorAll('[data-testid="stTextInput"]')) {
    const t = el.querySelector('input');
    add('textinput', el, t.value, t.disabled);
  }
  for (const el of main.querySelectorAll('[data-testid="stNumberInput"]')) {
    const t = el.querySelector('input');
    add('number', el, t.value, t.disabled);
  }
  for (const el of main.querySelectorAll('[data-testid="stTabs"]')) {
    const tabs = [...el.querySelectorAll('[role="tab"]')];
    const on = tabs.find((t) => t.getAttribute('aria-selected') === 'true');
    out.push({kind: 'tabs', label: 'tabs: ' + tabs.map((t) => t.innerText.trim()).join(' | '),
              value: on ? on.innerText.trim() : '', disabled: false, visible: shown(el)});
  }
  return out;
}
"""


@dataclass(frozen=True)
class Widget:
    kind: str
    label: str
    nth: int  # among widgets of the same kind and label, in page order
    value: str
    disabled: bool
    visible: bool

    @property
    def name(self) -> tuple[str, str, int]:
        return self.kind, self.label, self.nth


def widgets(page) -> list[Widget]:
    """The main area's widgets, in page order within each kind."""
    seen: dict[tuple[str, str], int] = {}
    out = []
    for w in page.evaluate(_WIDGETS_JS):
        n = seen.get((w["kind"], w["label"]), 0)
        seen[(w["kind"], w["label"])] = n + 1
        out.append(Widget(w["kind"], w["label"], n, w["value"], w["disabled"], w["visible"]))
    return out


def values(page) -> dict[tuple[str, str, int], str]:
    return {w.name: w.value for w in widgets(page)}


def locate(page, w: Widget):
    """The element of widget `w` (by kind, label and place)."""
    if w.kind == "tabs":
        return page.get_by_test_id("stMain").get_by_test_id("stTabs").nth(w.nth)
    testid = {"slider": "stSlider", "selectbox": "stSelectbox", "checkbox": "stCheckbox", "radio": "stRadio",
              "segmented": "stButtonGroup", "textarea": "stTextArea", "textinput": "stTextInput",
              "number": "stNumberInput"}[w.kind]
    boxes = page.get_by_test_id("stMain").get_by_test_id(testid)
    matching = [i for i in range(boxes.count()) if _label_of(boxes.nth(i)) == w.label]
    return boxes.nth(matching[w.nth])


def _label_of(box) -> str:
    label = box.get_by_test_id("stWidgetLabel")
    if label.count():
        return label.first.inner_text().strip()
    return (box.get_attribute("aria-label") or "").strip()


def change(page, w: Widget) -> None:
    """Set widget `w` to a value other than the one it holds, as a person would (keys, clicks, typing)."""
    box = locate(page, w)
    box.scroll_into_view_if_needed()
    if w.kind == "slider":
        thumb = box.locator('input[type="range"]').first
        at_max = float(thumb.get_attribute("value")) >= float(thumb.get_attribute("max"))
        thumb.focus()
        for _ in range(3):
            page.keyboard.press("ArrowLeft" if at_max else "ArrowRight")
    elif w.kind == "selectbox":
        box.get_by_role("combobox").click()
        options = page.get_by_role("option")
        expect(options.first).to_be_visible()
        texts = [t.strip() for t in options.all_inner_texts()]
        pick = next(i for i, t in enumerate(texts) if t != w.value)
        options.nth(pick).click()
    elif w.kind == "checkbox":
        box.locator("label").first.click()
    elif w.kind == "radio":
        box.locator("label").filter(has_not=page.locator("input:checked")).first.click()
    elif w.kind == "segmented":
        box.locator('button[aria-checked="false"]').first.click()
    elif w.kind == "textarea":
        area = box.locator("textarea")
        area.click()
        page.keyboard.press("Control+End")
        page.keyboard.type(" The quick brown fox jumps over the lazy dog." if w.value else
                           "The quick brown fox jumps over the lazy dog.")
        page.keyboard.press("Control+Enter")
    elif w.kind == "textinput":
        box.locator("input").click()
        page.keyboard.type(" the")
        page.keyboard.press("Enter")
    elif w.kind == "number":
        box.get_by_test_id("stNumberInputStepUp").click()
    elif w.kind == "tabs":
        box.locator('[role="tab"][aria-selected="false"]').first.click()
    else:  # pragma: no cover - a kind this test does not know yet must fail loudly
        raise AssertionError(f"no way to change a {w.kind}")
    wait_for_app(page)


def open_expanders(page) -> None:
    """Open every collapsed expander in the main area, so the widgets inside can be used."""
    for _ in range(10):
        closed = page.get_by_test_id("stMain").locator("details:not([open]) > summary")
        if closed.count() == 0:
            return
        closed.first.click()
        page.wait_for_timeout(150)


def shown_text(page) -> str:
    """The main area's visible text, whitespace normalised."""
    return re.sub(r"\s+", " ", page.get_by_test_id("stMain").inner_text()).strip()


def set_every_widget(page, frozen: set[str]) -> list[Widget]:
    """Change each visible, enabled widget once (new ones that appear are changed too); the changed ones."""
    changed: list[Widget] = []
    done: set[tuple[str, str, int]] = set()
    for _ in range(60):
        open_expanders(page)
        todo = [w for w in widgets(page) if w.visible and not w.disabled and w.name not in done
                and w.label not in ACTION_PARAMETERS | frozen]
        if not todo:
            return changed
        w = todo[0]
        change(page, w)
        done.add(w.name)
        changed.append(w)
    raise AssertionError(f"widgets kept appearing: {changed}")


FRANCE = "The capital of France is"
VIEWS = [
    pytest.param("/tokenize", (), set(), id="tokenize"),
    pytest.param("/next-token", ("Append most likely",), set(), id="next-token"),
    pytest.param("/generate", (), set(), id="generate"),
    pytest.param("/compare", ("Add a column",), set(), id="compare"),
    pytest.param(f"/inside?prompt={quote(FRANCE)}", (), {"View"}, id="inside-lens"),
    pytest.param(f"/inside?prompt={quote(FRANCE)}&view=attention", (), {"View"}, id="inside-attention"),
    pytest.param(f"/inside?prompt={quote(FRANCE)}&view=attribution", (), {"View"}, id="inside-attribution"),
]


@pytest.mark.parametrize("path, presses, frozen", VIEWS)
def test_every_view_round_trips_through_its_share_link(page, browser, base_url, path, presses, frozen):
    open_app(page, base_url + path)
    for name in presses:
        page.get_by_test_id("stMain").get_by_role("button", name=re.compile("^" + re.escape(name))).click()
        wait_for_app(page)
    changed = set_every_widget(page, frozen)
    assert changed, "no widget was found on the page"
    before, text_before = values(page), page_text(page)
    link = share_link(page)

    context = browser.new_context(viewport=VIEWPORT)  # a fresh browser: nothing but the link
    try:
        fresh = context.new_page()
        open_app(fresh, link)
        open_expanders(fresh)
        after, text_after = values(fresh), page_text(fresh)
    finally:
        context.close()
    lost = {f"{k[0]} {k[1]!r}: {before[k]!r} → {after.get(k)!r}" for k in before if after.get(k) != before[k]}
    assert not lost, f"the link {link} lost: " + "; ".join(sorted(lost))
    assert text_after == text_before


def page_text(page) -> tuple[str, list[str]]:
    """The app's visible text outside its charts, and every chart's texts as a sorted list: Vega appends the axis
    labels that enter when a scale changes in place (Next token's instrument swaps its data), so the same labels
    can sit in another DOM order than on a fresh page."""
    charts = page.evaluate("""() => [...document.querySelectorAll('[data-testid="stVegaLiteChart"] svg text')]
        .map(t => t.textContent)""")
    page.evaluate("""() => document.querySelectorAll('[data-testid="stVegaLiteChart"]')
        .forEach(c => { c.dataset.tsDisplay = c.style.display; c.style.display = 'none'; })""")
    try:
        text = shown_text(page)
    finally:
        page.evaluate("""() => document.querySelectorAll('[data-testid="stVegaLiteChart"]')
            .forEach(c => { c.style.display = c.dataset.tsDisplay || ''; })""")
    return text, sorted(charts)
