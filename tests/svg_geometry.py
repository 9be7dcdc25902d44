"""What a chart rendered to SVG (by vl-convert) shows a person: the visible texts with their boxes on the page, the
bars and cells, the axes and legends. Used by tests/test_chart_render.py.

Two traps this module avoids: a label Vega culls for overlap stays in the SVG as a <text> with opacity 0 (every
ancestor's opacity, fill-opacity, display and clip path is taken into account), and the SVG's element order is the
data's order, not the screen's (boxes come from the composed transforms, so compare positions, never indices).
Text widths are measured with the font a renderer picks here: the first family of the element's font-family list
that fontconfig has installed."""

from __future__ import annotations

import math
import re
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache

SVG_NS = "{http://www.w3.org/2000/svg}"
GENERIC_FAMILIES = {"serif", "sans-serif", "monospace", "cursive", "fantasy", "system-ui"}

# --------------------------------------------------------------------------- fonts


@lru_cache(maxsize=1)
def installed_families() -> frozenset[str]:
    """Every font family fontconfig knows here (lower case)."""
    out = subprocess.run(["fc-list", ":", "family"], capture_output=True, text=True, check=True).stdout
    return frozenset(name.strip().lower() for line in out.splitlines() for name in line.split(","))


def family_list(css: str) -> list[str]:
    """A CSS font-family list as names, quotes removed."""
    return [f.strip().strip("'\"") for f in css.split(",") if f.strip()]


def resolved_family(css: str) -> str | None:
    """The first named (non-generic) family of the list that is installed here; None when there is none."""
    for name in family_list(css):
        if name.lower() not in GENERIC_FAMILIES and name.lower() in installed_families():
            return name
    return None


@lru_cache(maxsize=None)
def _charset(family: str) -> tuple[tuple[int, int], ...]:
    """The code point ranges the installed `family` has glyphs for (fontconfig's charset)."""
    out = subprocess.run(["fc-match", "-f", "%{charset}", family], capture_output=True, text=True, check=True).stdout
    ranges = []
    for part in out.split():
        lo, _, hi = part.partition("-")
        ranges.append((int(lo, 16), int(hi or lo, 16)))
    return tuple(ranges)


def covers(family: str, text: str) -> bool:
    """Whether the installed `family` has a glyph for every character of `text`."""
    ranges = _charset(family)
    return all(any(lo <= ord(c) <= hi for lo, hi in ranges) for c in set(text) if not c.isspace())


@lru_cache(maxsize=None)
def _font(css: str, bold: bool, size: float):
    from PIL import ImageFont

    family = resolved_family(css) or family_list(css)[-1]  # a generic-only list: fontconfig's pick for it
    path = subprocess.run(["fc-match", "-f", "%{file}", f"{family}:weight={'bold' if bold else 'regular'}"],
                          capture_output=True, text=True, check=True).stdout
    return ImageFont.truetype(path, size)


def text_extent(text: str, css: str, size: float, bold: bool = False) -> tuple[float, float, float]:
    """(advance width, ascent above the baseline, descent below it) of `text` in pixels."""
    font = _font(css, bold, size)
    _, top, _, bottom = font.getbbox(text or " ", anchor="ls")
    return font.getlength(text), max(-top, 0.0), max(bottom, 0.0)


# --------------------------------------------------------------------------- transforms and boxes

Matrix = tuple[float, float, float, float, float, float]  # a, b, c, d, e, f as in SVG's matrix()
IDENTITY: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)


def _mul(m: Matrix, n: Matrix) -> Matrix:
    a, b, c, d, e, f = m
    a2, b2, c2, d2, e2, f2 = n
    return (a * a2 + c * b2, b * a2 + d * b2, a * c2 + c * d2, b * c2 + d * d2,
            a * e2 + c * f2 + e, b * e2 + d * f2 + f)


def parse_transform(value: str | None) -> Matrix:
    """An SVG transform attribute (translate, rotate, scale, matrix) as one matrix."""
    m = IDENTITY
    for name, args in re.findall(r"(\w+)\s*\(([^)]*)\)", value or ""):
        v = [float(x) for x in re.split(r"[\s,]+", args.strip()) if x]
        if name == "translate":
            step = (1.0, 0.0, 0.0, 1.0, v[0], v[1] if len(v) > 1 else 0.0)
        elif name == "rotate":
            r = math.radians(v[0])
            step = (math.cos(r), math.sin(r), -math.sin(r), math.cos(r), 0.0, 0.0)
            if len(v) == 3:
                step = _mul(_mul((1, 0, 0, 1, v[1], v[2]), step), (1, 0, 0, 1, -v[1], -v[2]))
        elif name == "scale":
            step = (v[0], 0.0, 0.0, v[1] if len(v) > 1 else v[0], 0.0, 0.0)
        elif name == "matrix":
            step = tuple(v)  # type: ignore[assignment]
        else:
            raise ValueError(f"unknown transform {name!r}")
        m = _mul(m, step)
    return m


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in the SVG's pixels (y grows downwards)."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    def overlaps(self, other: "Box", tol: float = 0.5) -> bool:
        """Whether the two boxes share more than `tol` pixels in both directions."""
        return (min(self.x1, other.x1) - max(self.x0, other.x0) > tol
                and min(self.y1, other.y1) - max(self.y0, other.y0) > tol)

    def inside(self, other: "Box", tol: float = 0.5) -> bool:
        """Whether this box lies within `other` (up to `tol` pixels)."""
        return (self.x0 >= other.x0 - tol and self.y0 >= other.y0 - tol and self.x1 <= other.x1 + tol
                and self.y1 <= other.y1 + tol)

    def contains_point(self, x: float, y: float) -> bool:
        return self.x0 <= x <= self.x1 and self.y0 <= y <= self.y1


def _box_of(m: Matrix, x0: float, y0: float, x1: float, y1: float) -> Box:
    a, b, c, d, e, f = m
    pts = [(a * x + c * y + e, b * x + d * y + f) for x, y in ((x0, y0), (x1, y0), (x0, y1), (x1, y1))]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return Box(min(xs), min(ys), max(xs), max(ys))


def path_box(d: str) -> tuple[float, float, float, float] | None:
    """Bounding box (x0, y0, x1, y1) of a path made of M/L/H/V/Z commands (rects, rules); None when empty."""
    x = y = 0.0
    xs, ys = [], []
    for cmd, args in re.findall(r"([MLHVZmlhvz])([^MLHVZmlhvz]*)", d or ""):
        v = [float(t) for t in re.findall(r"-?\d*\.?\d+(?:e-?\d+)?", args)]
        rel = cmd.islower()
        c = cmd.upper()
        if c in "ML":
            for i in range(0, len(v) - 1, 2):
                x, y = (x + v[i], y + v[i + 1]) if rel else (v[i], v[i + 1])
                xs.append(x), ys.append(y)
        elif c == "H":
            for t in v:
                x = x + t if rel else t
                xs.append(x), ys.append(y)
        elif c == "V":
            for t in v:
                y = y + t if rel else t
                xs.append(x), ys.append(y)
    if not xs:
        return None
    return min(xs), min(ys), max(xs), max(ys)


# --------------------------------------------------------------------------- what is drawn


@dataclass(frozen=True)
class Text:
    """One visible text: its string, its box, font and where it sits (mark classes, enclosing axis)."""

    text: str
    box: Box
    size: float
    family: str
    bold: bool
    classes: tuple[str, ...]  # the classes of every enclosing group, outermost first
    axis: str | None  # aria-label of the enclosing axis ("X-axis titled …"), if any
    clipped: bool  # a clip path cuts part of it off

    def role(self, name: str) -> bool:
        """Whether an enclosing group has class `name` (e.g. role-axis-label, role-legend-label, role-mark)."""
        return any(name in c.split() for c in self.classes)


@dataclass(frozen=True)
class Shape:
    """One visible mark path (a bar, a cell, a rule) with its box and aria-label."""

    box: Box
    label: str
    classes: tuple[str, ...]
    fill: str | None


@dataclass
class Drawing:
    """Everything visible in one SVG."""

    width: float
    height: float
    texts: list[Text]
    shapes: list[Shape]
    fonts: set[str]  # every font-family list used by a <text>
    colours: set[str]  # every fill and stroke colour of a visible element

    def axis_labels(self, axis: str) -> list[Text]:
        """Visible labels of the axis whose aria-label starts with `axis` ("X-axis", "Y-axis titled 'rank")."""
        return [t for t in self.texts if t.role("role-axis-label") and (t.axis or "").startswith(axis)]

    def axes(self) -> list[str]:
        """aria-labels of every axis drawn."""
        return sorted({t.axis for t in self.texts if t.axis})

    def legend_labels(self) -> list[Text]:
        return [t for t in self.texts if t.role("role-legend-label")]

    def mark_texts(self) -> list[Text]:
        """Texts drawn by text marks (cell text, segment names), not axes or legends."""
        return [t for t in self.texts if t.role("role-mark")]

    def bars(self) -> list[Shape]:
        """Visible rect-mark paths (bars, heatmap cells, stretches)."""
        return [s for s in self.shapes if any("mark-rect" in c.split() and "role-mark" in c.split()
                                              for c in s.classes)]


def _visible_number(value: str | None) -> bool:
    if value is None:
        return True
    try:
        return float(value) > 0
    except ValueError:
        return True


def drawing(svg: str) -> Drawing:
    """Parse an SVG from vl-convert (or any Vega SVG) into what a person sees."""
    root = ET.fromstring(svg)
    width, height = float(root.get("width")), float(root.get("height"))
    clips: dict[str, tuple[float, float, float, float]] = {}
    for cp in root.iter(f"{SVG_NS}clipPath"):
        boxes = [path_box(p.get("d", "")) for p in cp.iter(f"{SVG_NS}path")]
        boxes += [(float(r.get("x", 0)), float(r.get("y", 0)), float(r.get("x", 0)) + float(r.get("width", 0)),
                   float(r.get("y", 0)) + float(r.get("height", 0))) for r in cp.iter(f"{SVG_NS}rect")]
        boxes = [b for b in boxes if b]
        if boxes:
            clips[cp.get("id")] = (min(b[0] for b in boxes), min(b[1] for b in boxes),
                                   max(b[2] for b in boxes), max(b[3] for b in boxes))
    texts: list[Text] = []
    shapes: list[Shape] = []
    fonts: set[str] = set()
    colours: set[str] = set()

    def walk(el, m: Matrix, classes: tuple, axis: str | None, clip: Box | None, inherited: dict):
        tag = el.tag.replace(SVG_NS, "")
        if tag in ("defs", "clipPath", "title", "desc"):
            return
        if el.get("display") == "none" or el.get("visibility") == "hidden" or not _visible_number(el.get("opacity")):
            return  # neither this element nor anything inside it shows
        m = _mul(m, parse_transform(el.get("transform")))
        state = dict(inherited)
        for key in ("fill", "fill-opacity", "stroke", "stroke-opacity", "font-family", "font-size", "font-weight",
                    "text-anchor"):
            if el.get(key) is not None:
                state[key] = el.get(key)
        ref = re.match(r"url\(#([^)]+)\)", el.get("clip-path") or "")
        if ref and ref.group(1) in clips:
            cb = _box_of(m, *clips[ref.group(1)])
            clip = cb if clip is None else Box(max(clip.x0, cb.x0), max(clip.y0, cb.y0), min(clip.x1, cb.x1),
                                               min(clip.y1, cb.y1))
        if tag == "g":
            cls = el.get("class")
            if cls:
                classes = classes + (cls,)
            if cls and "role-axis" in cls.split() and el.get("aria-label"):
                axis = el.get("aria-label")
            for child in el:
                walk(child, m, classes, axis, clip, state)
            return
        fill, fill_visible = state.get("fill"), _visible_number(state.get("fill-opacity"))
        if tag == "text":
            content = "".join(el.itertext())
            if not content.strip() or fill in ("none", "transparent") or not fill_visible:
                return
            css = state.get("font-family", "sans-serif")
            size = float(re.sub(r"px$", "", state.get("font-size", "11")))
            bold = state.get("font-weight") in ("bold", "700", "800", "900")
            spans = [c for c in el if c.tag.rsplit("}", 1)[-1] == "tspan"]
            lines, dy = [], 0.0  # a multi-line text is one <tspan> a line, each `dy` below the one before
            for span in spans or [el]:
                dy += float(span.get("dy", 0)) if spans else 0.0
                lines.append(("".join(span.itertext()) if spans else content, dy))
            for line, down in lines:
                advance, ascent, descent = text_extent(line, css, size, bold)
                shift = {"middle": -advance / 2, "end": -advance}.get(state.get("text-anchor", "start"), 0.0)
                box = _box_of(m, shift, down - ascent, shift + advance, down + descent)
                texts.append(Text(line, box, size, css, bold, classes, axis,
                                  clipped=clip is not None and not box.inside(clip)))
            fonts.add(css)
            colours.add(fill or "black")
            return
        if tag in ("path", "rect", "line"):
            stroke = state.get("stroke")
            if tag == "path":
                pb = path_box(el.get("d", ""))
            elif tag == "rect":
                x, y = float(el.get("x", 0)), float(el.get("y", 0))
                pb = (x, y, x + float(el.get("width", 0)), y + float(el.get("height", 0)))
            else:
                pb = (float(el.get("x1", 0)), float(el.get("y1", 0)), float(el.get("x2", 0)), float(el.get("y2", 0)))
            if pb is None:
                return
            if fill not in (None, "none", "transparent") and fill_visible:
                colours.add(fill)
            if stroke not in (None, "none", "transparent") and _visible_number(state.get("stroke-opacity")):
                colours.add(stroke)
            shapes.append(Shape(_box_of(m, *pb), el.get("aria-label") or "", classes, fill))
        for child in el:
            walk(child, m, classes, axis, clip, state)

    walk(root, IDENTITY, (), None, None, {})
    return Drawing(width, height, texts, shapes, fonts, colours)


# --------------------------------------------------------------------------- checks


def overlapping(texts: list[Text], tol: float = 0.5) -> list[tuple[str, str]]:
    """Pairs of texts whose boxes overlap (a sweep over x, so large heatmaps stay fast)."""
    order = sorted(texts, key=lambda t: t.box.x0)
    pairs = []
    for i, a in enumerate(order):
        for b in order[i + 1:]:
            if b.box.x0 >= a.box.x1 - tol:
                break
            if a.box.overlaps(b.box, tol):
                pairs.append((a.text, b.text))
    return pairs


def shows(shown: str, full: str) -> bool:
    """Whether a drawn label `shown` is the text `full`, or a visibly marked cut of it ("12: ␣resist…")."""
    return shown == full or (shown.endswith("…") and len(shown) > 1 and full.startswith(shown[:-1]))


def aria_fields(label: str) -> dict[str, str]:
    """The fields of a Vega aria-label ("token: ␣a; id: 7; rank: 1") as a dict."""
    parts = re.split(r"; (?=[A-Za-z][\w ()=×-]*: )", label)
    return dict(p.partition(": ")[::2] for p in parts if ": " in p)
