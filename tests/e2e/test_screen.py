"""What a person sees, checked on the screen at 1440×900 and 390×844: nothing is cut off or wider than its place,
no click crashes a page, and on a phone the chart and the slider moving it are on screen together."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from .conftest import expect, open_app, wait_for_app

pytestmark = pytest.mark.e2e

DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
FRANCE = "The capital of France is"
SCORED = "The quick brown fox jumps over the lazy dog. It was a sunny day in the park."
PAGES = [
    "/",
    "/tokenize?tok_compare=gpt2",
    "/next-token?top_k=5&path=9264m",
    "/generate",
    f"/generate?gen_tab=Score+text&score_text={quote(SCORED)}",
    "/compare",
    f"/inside?prompt={quote(FRANCE)}",
    f"/inside?prompt={quote(FRANCE)}&view=attention",
    f"/inside?prompt={quote(FRANCE)}&view=attribution",
]

# Everything in the main area that is wider than the room it has: the page scrolling sideways, content clipped
# by a box that scrolls or hides its overflow (a table's last column, a grid's), a chart, table or image reaching
# past the main area. (Streamlit's visually hidden inputs, 1 px wide, are not content.)
_CUT_OFF_JS = r"""
() => {
  const out = [];
  const doc = document.scrollingElement;
  if (doc.scrollWidth > doc.clientWidth + 1) out.push(`the page scrolls sideways: ${doc.scrollWidth} > ${doc.clientWidth}`);
  const main = document.querySelector('[data-testid="stMain"]');
  if (main.scrollWidth > main.clientWidth + 1) out.push(`the main area scrolls sideways: ${main.scrollWidth} > ${main.clientWidth}`);
  const visible = (el) => { const r = el.getBoundingClientRect(); return r.width > 2 && r.height > 2 &&
                                getComputedStyle(el).visibility !== 'hidden'; };
  const name = (el) => {
    const owner = el.closest('[data-testid]');
    return `${el.tagName.toLowerCase()}.${String(el.className).slice(0, 30)} in [${owner ? owner.getAttribute('data-testid') : ''}] ` +
           `"${(el.innerText || (owner && owner.innerText) || '').slice(0, 50)}"`;
  };
  for (const el of main.querySelectorAll('*')) {
    if (!visible(el) || el.clientWidth <= 2) continue;
    const ox = getComputedStyle(el).overflowX;
    if (['auto', 'scroll', 'hidden', 'clip'].includes(ox) && el.scrollWidth > el.clientWidth + 1)
      out.push(`${name(el)} holds ${el.scrollWidth} px in ${el.clientWidth} px`);
  }
  const room = main.querySelector('[data-testid="stMainBlockContainer"]') || main;
  const box = room.getBoundingClientRect();
  for (const el of main.querySelectorAll('[data-testid="stVegaLiteChart"], [data-testid="stVegaLiteChart"] svg, ' +
                                         '[data-testid="stTable"] table, [data-testid="stDataFrame"], img, canvas')) {
    if (!visible(el)) continue;
    const r = el.getBoundingClientRect();
    if (r.left < box.left - 1 || r.right > box.right + 1)
      out.push(`${name(el)} spans ${Math.round(r.left)}…${Math.round(r.right)} outside ${Math.round(box.left)}…${Math.round(box.right)}`);
  }
  return out;
}
"""


def healthy(page) -> None:
    """No exception box, and the sidebar's page links and share button are still there."""
    assert page.get_by_test_id("stException").count() == 0, page.get_by_test_id("stException").all_inner_texts()
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_role("link", name="Next token", exact=True)).to_be_attached()
    expect(sidebar.get_by_role("button", name="🔗 Share this view")).to_be_attached()


@pytest.fixture(params=[pytest.param(DESKTOP, id="1440x900"), pytest.param(PHONE, id="390x844")])
def sized_page(request, browser):
    """A page in a fresh context at one of the two sizes."""
    context = browser.new_context(viewport=request.param, accept_downloads=True)
    page = context.new_page()
    yield page
    context.close()


@pytest.mark.parametrize("path", PAGES)
def test_nothing_is_cut_off(sized_page, base_url, path):
    open_app(sized_page, base_url + path)
    healthy(sized_page)
    problems = sized_page.evaluate(_CUT_OFF_JS)
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- every click


def _buttons(page):
    """The enabled buttons in the main area with a label (segmented controls and tabs are widgets)."""
    return page.get_by_test_id("stMain").locator(
        '[data-testid^="stBaseButton"]:not([disabled]):not([data-variant="segmented_control"])'
    ).filter(visible=True)


@pytest.mark.parametrize("path", PAGES)
def test_no_click_crashes_a_page(page, base_url, path):
    """Click every button once (new ones that appear too) and one mark of every chart that takes clicks."""
    open_app(page, base_url + path)
    clicked: set[str] = set()
    for _ in range(30):
        buttons = _buttons(page)
        labels = [t.strip() for t in buttons.all_inner_texts()]
        todo = [i for i, label in enumerate(labels) if label and label not in clicked and label != "Stop"]
        if not todo:
            break
        clicked.add(labels[todo[0]])
        button = buttons.nth(todo[0])
        button.scroll_into_view_if_needed()
        button.click()
        wait_for_app(page)
        if page.get_by_role("dialog").count():
            page.keyboard.press("Escape")
        healthy(page)
    charts = page.get_by_test_id("stVegaLiteChart")
    marked = 0
    def hittable(n: int) -> list[int]:  # marks of chart n a person can hit (not a 0-width bar), now
        sizes = charts.nth(n).locator("g.mark-rect path[aria-label]").evaluate_all(
            "els => els.map(e => { const r = e.getBoundingClientRect(); return r.width * r.height; })")
        return [k for k, area in enumerate(sizes) if area >= 16]

    for n in range(charts.count()):  # every chart: a click on one of its marks, then on another
        if not hittable(n):
            continue
        marked += 1
        for which in (0, 0.5):  # a click may redraw the chart (an appended token): find the marks again
            big = hittable(n)
            mark = charts.nth(n).locator("g.mark-rect path[aria-label]").nth(big[int(which * (len(big) - 1))])
            mark.scroll_into_view_if_needed()
            box = mark.bounding_box()  # where a person's click lands (a mark drawn over it takes it: fine)
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            wait_for_app(page)
            healthy(page)
    assert clicked or marked or path == "/", "nothing to click was found"  # home has page links only


def test_clicking_attention_rows_moves_the_position_without_an_error(page, base_url):
    """The defect seen: a click on the attention map crashed the page (its selector was set after it was drawn)."""
    open_app(page, f"{base_url}/inside?prompt={quote(FRANCE)}&view=attention")
    cells = page.get_by_test_id("stVegaLiteChart").first.locator('g.mark-rect path[aria-label*="weight"]')
    n = round(cells.count() ** 0.5)  # a square map of the prompt's tokens, in the data's (query-major) order
    assert n * n == cells.count() and n == 5
    for q in (1, 2, 3):
        cells.nth(q * n).click()
        wait_for_app(page)
        healthy(page)
        expect(page.get_by_test_id("stMain")).to_contain_text(f"(position {q}) looks")
        assert f"position={q}" in page.url


# --------------------------------------------------------------------------- a phone


def test_on_a_phone_the_chart_and_the_slider_moving_it_are_on_screen_together(sized_page, base_url):
    page = sized_page
    open_app(page, base_url + "/next-token")
    size = page.viewport_size
    chart = page.get_by_test_id("stVegaLiteChart").first
    chart.evaluate("el => el.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)
    slider = page.get_by_role("slider", name="Temperature")
    bars = page.locator('[aria-label*="after, exact"]').first  # the first token's bar
    on_screen = lambda box: box and box["y"] >= 0 and box["y"] + box["height"] <= size["height"]  # noqa: E731
    c, s = chart.bounding_box(), slider.bounding_box()
    assert c["y"] < size["height"] * 0.5 and c["y"] + c["height"] > 0, f"the chart is not on screen: {c}"
    assert on_screen(s), f"with the chart on screen the Temperature slider is off screen: {s} in {size}"
    assert on_screen(bars.bounding_box()), "the slider's bars are off screen"
    figures = '[aria-label^="Figures: "]'
    before = page.locator(figures).get_attribute("aria-label")
    slider.focus()
    for _ in range(4):
        page.keyboard.press("ArrowLeft")
    wait_for_app(page)
    assert page.locator(figures).get_attribute("aria-label") != before
    assert on_screen(page.get_by_role("slider", name="Temperature").bounding_box())
    assert chart.bounding_box()["y"] < size["height"] * 0.5  # the chart stayed where the person was looking


# --------------------------------------------------------------------------- small things seen


def test_the_share_dialogs_copy_button_shows_without_hovering(page, base_url):
    """Touch screens have no hover: the copy button of the share link is visible as the dialog opens."""
    open_app(page, base_url + "/tokenize")
    page.get_by_test_id("stSidebar").get_by_role("button", name="🔗 Share this view").click()
    copy = page.get_by_role("dialog").get_by_role("button", name="Copy to clipboard")
    expect(copy).to_be_attached()
    page.mouse.move(1, 1)  # nowhere near it
    page.wait_for_timeout(400)
    assert copy.evaluate("b => getComputedStyle(b).visibility") == "visible"
    assert float(copy.evaluate("b => getComputedStyle(b).opacity")) == 1.0
    page.keyboard.press("Escape")


def test_the_tokenize_table_shows_every_row(page, base_url):
    """The seed sentence's 11 tokens: the grid is as tall as its rows (the last, ␣generative, was cut off)."""
    open_app(page, base_url + "/tokenize")
    grid = page.get_by_test_id("stDataFrame")
    expect(grid.locator('[id^="glide-cell-2-"]').last).to_be_attached()
    texts = grid.locator('[id^="glide-cell-2-"]').all_inner_texts()
    assert len(texts) == 11 and texts[-1] == "␣generative"
    box, last = grid.bounding_box(), grid.get_by_text("␣generative", exact=True).last.bounding_box()
    assert last is None or last["y"] + last["height"] <= box["y"] + box["height"] + 1


def test_a_fresh_servers_first_visit_never_lists_raw_file_names(fresh_app_server, page):
    """Before st.navigation has run, Streamlit would list pages/ as "streamlit app, compare, generate, home…";
    the first visitor sees the page's own links (and title) instead, from the first frame on."""
    page.goto(fresh_app_server.base_url + "/tokenize", wait_until="commit")
    seen: list[str] = []
    for _ in range(60):  # the first ~15 s, every quarter second
        nav = page.locator('[data-testid="stSidebarNav"]')
        if nav.count():
            seen.append(nav.first.inner_text())
        page.wait_for_timeout(250)
    assert not any("streamlit app" in t.lower() or "next-token" in t for t in seen), seen[:3]
    wait_for_app(page)
    expect(page.get_by_test_id("stMain").get_by_role("heading", level=1)).to_contain_text("Tokenize")
    expect(page.get_by_test_id("stSidebar").get_by_role("link", name="Next token", exact=True)).to_be_visible()
