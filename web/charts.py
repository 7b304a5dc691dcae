"""Charts drawn on the server as SVG: no JavaScript, no chart library, printable, readable on a phone.

Four kinds, each a pure function of its numbers:

- ``line_chart`` — series over periods (the figure, the plan, the same period last year);
- ``bar_chart`` — one value per unit as horizontal bars, largest first;
- ``attainment_chart`` — a figure against its plan (a bullet bar and the percentage);
- ``gauge_chart`` — a share of a whole (a half-circle gauge, e.g. reports in over reports due).

Each returns a ``Chart`` (``chart_id=`` names it on the page; by default an id made from its content):
its ``svg`` (``Markup``), its numbers as a ``ChartTable`` and, rendered in a
template (``{{ chart }}``, it has ``__html__``), a ``<figure>`` with the SVG and the same numbers in
a table inside ``<details>`` ("Xem số liệu"), so a screen reader, a keyboard or a colour-blind reader
gets every value. A chart without any number says so ("Chưa có số liệu") and draws no empty frame.
``chart_workbook(tables)`` writes the tables to an Excel file.

Everything a person typed (indicator names, unit names, labels) is escaped; numbers are written in
the reader's language (``core.i18n.format_number``: 1.234,5 in Vietnamese, 1,234.5 in English). The
SVG has a ``viewBox`` and no fixed size, so it scales to its box; colours and line styles are
presentation attributes (the pages' Content-Security-Policy allows no inline style), dark enough
against white for graphics (WCAG 1.4.11, at least 3:1) and told apart by dash and marker as well as
by colour. Text sizes assume the drawing is shown between ~300 and ~420 px wide.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from markupsafe import Markup

from core import export_safety
from core.i18n import DEFAULT_LANGUAGE, core_catalog, format_number

__all__ = ["Chart", "ChartTable", "Series", "attainment_chart", "bar_chart", "chart_workbook", "gauge_chart",
           "line_chart"]

# The drawing's width and text size in user units. It scales to its box: about 0.9 on a 390 px
# phone (text ~12.5 px), 1.2 at the stylesheet's widest (26rem; text ~17 px).
WIDTH = 340
FONT = 14
CHAR = 0.62 * FONT   # a generous average glyph width, so estimated text never runs past its room
PAD = 8
TEXT = "#1d2733"
MUTED = "#55606d"     # 6.4:1 on white
GRID = "#cfd6de"
AXIS = "#76828f"
TRACK = "#e8edf2"
# Series styles: colour (each at least 4.5:1 on white), dash pattern, marker.
STYLES = {
    "actual": ("#0b4f8a", None, "circle"),
    "plan": ("#8a4500", "7 4", "square"),
    "last_year": ("#55606d", "2 3", "diamond"),
    "other": ("#1d6b33", "9 3 2 3", "triangle"),
}
MAX_DECIMALS_SHOWN = 3


def _t(lang: str, key: str, **params) -> str:
    return core_catalog().gettext(lang, key, **params)


def _number(value) -> Decimal | None:
    """A value as a Decimal, or None for a missing or non-numeric one (a text figure)."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return number if number.is_finite() else None


def _decimals_of(values: Iterable) -> int:
    """The decimals that show every value as given (a stored 12.500000 counts one), at most 3."""
    most = 0
    for value in values:
        number = _number(value)
        if number is None:
            continue
        exponent = number.normalize().as_tuple().exponent
        if isinstance(exponent, int) and exponent < 0:
            most = max(most, -exponent)
    return min(most, MAX_DECIMALS_SHOWN)


def _fmt(value, lang: str, decimals: int | None) -> str:
    number = _number(value)
    return "" if number is None else format_number(number, lang, decimals)


def _with_unit(text: str, unit: str) -> str:
    """A number and its unit of measure as written: "8,6%" but "12,5 ha"."""
    if not unit:
        return text
    return f"{text}{unit}" if unit in ("%", "‰") else f"{text} {unit}"


def _width(text: str, size: float = FONT) -> float:
    return len(text) * CHAR * size / FONT


def _xy(value: float) -> str:
    """A coordinate with one decimal at most (12.0 → "12"): short markup, sub-pixel exact enough."""
    text = f"{float(value):.1f}"
    return text[:-2] if text.endswith(".0") else text


def _wrap(text: str, room: float, size: float = FONT, max_lines: int = 4) -> list[str]:
    """``text`` in lines that fit ``room`` user units (by words; a word longer than a line is cut)."""
    per_line = max(4, int(room // (CHAR * size / FONT)))
    lines: list[str] = []
    current = ""
    for word in str(text).split():
        while len(word) > per_line:
            if current:
                lines.append(current)
                current = ""
            lines.append(word[:per_line])
            word = word[per_line:]
        candidate = f"{current} {word}".strip()
        if len(candidate) <= per_line:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current or not lines:
        lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][:max(1, per_line - 1)].rstrip() + "…"
    return lines


# -- the numbers of a chart ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ChartTable:
    """A chart's numbers: ``headers`` names the label column then each value column; each row is
    (label, values, note). ``decimals`` is one number of decimals for every value column, or one per
    column (None: as the values come). The same table is shown under the chart and exported."""

    caption: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, tuple, str], ...]
    decimals: tuple[int | None, ...] | int | None = None
    note_header: str = ""
    links: tuple[str | None, ...] = ()   # a link for each row's label (drill-down), or none

    def column_decimals(self, column: int) -> int | None:
        if isinstance(self.decimals, tuple):
            return self.decimals[column] if column < len(self.decimals) else None
        return self.decimals

    @property
    def has_notes(self) -> bool:
        return any(note for _, _, note in self.rows)

    def html(self, lang: str = DEFAULT_LANGUAGE) -> Markup:
        """The table as HTML: a caption, column headers, one header cell per row, numbers right-aligned."""
        out = [Markup('<div class="table-wrap table-wrap-page"><table class="table table-compact chart-table">'),
               Markup("<caption>%s</caption>") % self.caption, Markup("<thead><tr>")]
        headers = list(self.headers) + ([self.note_header] if self.has_notes else [])
        for position, header in enumerate(headers):
            css = ' class="num"' if 0 < position < len(self.headers) else ""
            # Markup's % escapes its arguments: the header text is escaped, css is one of two constants.
            out.append(Markup('<th scope="col"%s>%s</th>') % (Markup(css), header))  # nosec B704
        out.append(Markup("</tr></thead><tbody>"))
        for number, (label, values, note) in enumerate(self.rows):
            link = self.links[number] if number < len(self.links) else None
            shown = Markup('<a href="%s">%s</a>') % (link, label) if link else label
            out.append(Markup('<tr><th scope="row">%s</th>') % shown)
            for column, value in enumerate(values):
                text = _fmt(value, lang, self.column_decimals(column))
                out.append(Markup('<td class="num">%s</td>') % (text or "—"))
            if self.has_notes:
                out.append(Markup("<td>%s</td>") % note)
            out.append(Markup("</tr>"))
        out.append(Markup("</tbody></table></div>"))
        return Markup("").join(out)


@dataclass(frozen=True)
class Chart:
    """A drawn chart: ``svg`` is None when there was nothing to draw (then ``empty`` says why)."""

    kind: str
    title: str
    lang: str
    svg: Markup | None
    table: ChartTable | None
    empty: str = ""
    notes: tuple[str, ...] = ()      # lines shown under the drawing (units without a figure, …)
    caption: bool = True             # show ``title`` as the figure's caption
    uid: str = ""

    @property
    def is_empty(self) -> bool:
        return self.svg is None

    def __html__(self) -> str:
        parts = [Markup('<figure class="chart chart-%s%s"%s>') % (
            self.kind, " chart-no-data" if self.is_empty else "",
            Markup(' id="%s"') % self.uid if self.uid else "")]
        if self.caption:
            parts.append(Markup('<figcaption class="chart-title">%s</figcaption>') % self.title)
        if self.is_empty:
            parts.append(Markup('<p class="chart-empty">%s</p>') % self.empty)
        else:
            parts.append(self.svg)
        for note in self.notes:
            parts.append(Markup('<p class="chart-note small muted">%s</p>') % note)
        if self.table is not None and self.table.rows:
            parts.append(Markup('<details class="chart-data"><summary>%s</summary>%s</details>') % (
                _t(self.lang, "dashboard.chart.show_numbers"), self.table.html(self.lang)))
        parts.append(Markup("</figure>"))
        return str(Markup("").join(parts))

    def __str__(self) -> str:
        return self.__html__()


@dataclass(frozen=True)
class Series:
    """One line of a line chart: ``values`` line up with the chart's categories (None: no figure).
    ``kind`` chooses its style: "actual", "plan", "last_year" or "other". A point with a ``note``
    (e.g. "ước tính") is drawn hollow and the note is shown with its number."""

    label: str
    values: tuple
    kind: str = "actual"
    notes: tuple = field(default=())

    def note(self, index: int) -> str:
        return (self.notes[index] or "") if index < len(self.notes) else ""


def _uid(kind: str, *parts) -> str:
    # An element id, not a security measure (and so no bandit B324 to answer).
    digest = hashlib.sha1(repr((kind,) + parts).encode("utf-8"), usedforsecurity=False).hexdigest()[:10]
    return f"chart-{kind}-{digest}"


def _empty(kind: str, title: str, lang: str, message: str | None, caption: bool, chart_id: str) -> Chart:
    return Chart(kind, title, lang, None, None, empty=message or _t(lang, "dashboard.chart.empty"),
                 caption=caption, uid=chart_id)


def _svg_open(uid: str, height: float, title: str, desc: str, width: float = WIDTH) -> Markup:
    return Markup(
        '<svg xmlns="http://www.w3.org/2000/svg" class="chart-svg" viewBox="0 0 %s %s" width="100%%" '
        'preserveAspectRatio="xMidYMid meet" role="img" aria-labelledby="%s-title %s-desc" '
        'font-size="%s" fill="%s"><title id="%s-title">%s</title><desc id="%s-desc">%s</desc>') % (
        _xy(width), _xy(height), uid, uid, FONT, TEXT, uid, title, uid, desc)


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: float | None = None,
          fill: str | None = None, weight: str | None = None, css: str = "") -> Markup:
    attrs = Markup(' x="%s" y="%s"') % (_xy(x), _xy(y))
    if anchor != "start":
        attrs += Markup(' text-anchor="%s"') % anchor
    if size:
        attrs += Markup(' font-size="%s"') % _xy(size)
    if fill:
        attrs += Markup(' fill="%s"') % fill
    if weight:
        attrs += Markup(' font-weight="%s"') % weight
    if css:
        attrs += Markup(' class="%s"') % css
    return Markup("<text%s>%s</text>") % (attrs, text)


# -- scales --------------------------------------------------------------------------------------------

def nice_ticks(low: Decimal, high: Decimal, count: int = 5) -> list[Decimal]:
    """Round tick values covering [low, high]: steps of 1, 2, 2.5 or 5 times a power of ten."""
    if high < low:
        low, high = high, low
    if high == low:
        spread = abs(high) / 10 or Decimal(1)
        low, high = low - spread, high + spread
    raw = (high - low) / (count - 1)
    power = Decimal(10) ** math.floor(math.log10(float(raw)))
    step = next(m * power for m in (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10))
                if m * power >= raw)
    start = (low / step).to_integral_value(rounding="ROUND_FLOOR") * step
    end = (high / step).to_integral_value(rounding="ROUND_CEILING") * step
    ticks, tick = [], start
    while tick <= end + step / 1000 and len(ticks) < 20:
        ticks.append(tick)
        tick += step
    return ticks


def _tick_decimals(ticks: Sequence[Decimal]) -> int:
    return _decimals_of(ticks)


# -- (a) a line over periods ---------------------------------------------------------------------------

def line_chart(categories: Sequence[str], series: Sequence[Series], *, title: str,
               lang: str = DEFAULT_LANGUAGE, decimals: int | None = None, unit: str = "",
               category_labels: Sequence[str] | None = None, category_header: str = "",
               empty: str | None = None, caption: bool = True, chart_id: str = "") -> Chart:
    """Series over periods. ``categories``: the short labels on the axis ("T3/2026"), in order;
    ``category_labels``: the full ones for the table ("Tháng 3 năm 2026"); ``unit`` the unit of
    measure, shown on the axis and in the table. Series without any number are left out; with none
    left, the chart says there is no data."""
    categories = [str(c) for c in categories]
    long_labels = [str(c) for c in (category_labels or ())][:len(categories)]
    long_labels += categories[len(long_labels):]
    aligned = [(s, ([_number(v) for v in s.values] + [None] * len(categories))[:len(categories)]) for s in series]
    aligned = [(s, values) for s, values in aligned if any(v is not None for v in values)]
    if not categories or not aligned:
        return _empty("line", title, lang, empty, caption, chart_id)
    drawn, numbers = [s for s, _ in aligned], [values for _, values in aligned]
    present = [n for values in numbers for n in values if n is not None]
    decimals = _decimals_of(present) if decimals is None else decimals
    uid = chart_id or _uid("line", title, tuple(categories), tuple((s.label, tuple(map(str, s.values))) for s in drawn))

    low, high = min(present), max(present)
    if low >= 0 and low <= high * Decimal("0.6"):
        low = Decimal(0)  # a series of positive amounts starts at zero unless that flattens it
    ticks = nice_ticks(low, high)
    tick_decimals = _tick_decimals(ticks)
    tick_texts = [format_number(t, lang, tick_decimals) for t in ticks]

    # Legend: one row of swatches, wrapped when it does not fit.
    legend, x, y = [], float(PAD), PAD + FONT
    for s in drawn:
        colour, dash, marker = STYLES.get(s.kind, STYLES["other"])
        room = 30 + _width(s.label) + 14
        if x + room > WIDTH - PAD and x > PAD:
            x, y = float(PAD), y + FONT + 6
        legend.append(Markup('<g class="legend-item legend-%s">') % s.kind)
        legend.append(_line_path([(x, y - 4), (x + 24, y - 4)], colour, dash))
        legend.append(_marker(marker, x + 12, y - 4, colour, hollow=False))
        legend.append(_text(x + 30, y, s.label))
        legend.append(Markup("</g>"))
        x += room
    top = y + 14
    if unit:
        legend.append(_text(PAD, top, unit, size=FONT - 1, fill=MUTED, css="axis-unit"))
        top += 8

    left = PAD + max(_width(t) for t in tick_texts) + 6
    right = WIDTH - PAD - 6
    plot_top, plot_height = top + 6, 190.0
    bottom = plot_top + plot_height
    span = float(ticks[-1] - ticks[0]) or 1.0

    def y_of(value: Decimal) -> float:
        return bottom - float(value - ticks[0]) / span * plot_height

    count = len(categories)
    step = (right - left) / max(count - 1, 1) if count > 1 else 0.0

    def x_of(index: int) -> float:
        return left + index * step if count > 1 else (left + right) / 2

    parts = []
    parts.append(Markup('<g class="grid" fill="%s">') % MUTED)
    for tick, text in zip(ticks, tick_texts):
        ty = y_of(tick)
        colour = AXIS if tick == 0 else GRID
        parts.append(Markup('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="1"/>') % (
            _xy(left), _xy(ty), _xy(right), _xy(ty), colour))
        parts.append(_text(left - 6, ty + 4, text, anchor="end"))
    parts.append(Markup("</g>"))

    # Axis labels: every n-th from the last (the latest period), n as small as lets them fit, and one
    # that would still touch its right neighbour (a label kept inside the drawing at an edge) left out.
    widest = max(_width(c) for c in categories) + 8
    every = max(1, math.ceil(widest / step)) if count > 1 and step else 1
    placed, left_edge = [], WIDTH
    for index in range(count - 1, -1, -every):
        label, lx = categories[index], x_of(index)
        start, end, anchor = lx - _width(label) / 2, lx + _width(label) / 2, "middle"
        if start < PAD:
            start, end, anchor, lx = PAD, PAD + _width(label), "start", PAD
        elif end > WIDTH - PAD:
            start, end, anchor, lx = WIDTH - PAD - _width(label), WIDTH - PAD, "end", WIDTH - PAD
        if end + 6 > left_edge:
            continue
        placed.append(_text(lx, bottom + FONT + 6, label, anchor=anchor))
        left_edge = start
    parts.append(Markup('<g class="x-labels" fill="%s">') % MUTED)
    parts.extend(reversed(placed))
    for index in range(count):
        parts.append(Markup('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="1"/>') % (
            _xy(x_of(index)), _xy(bottom), _xy(x_of(index)), _xy(bottom + 4), AXIS))
    parts.append(Markup("</g>"))

    for s, values in zip(drawn, numbers):
        colour, dash, marker = STYLES.get(s.kind, STYLES["other"])
        parts.append(Markup('<g class="series series-%s">') % s.kind)
        segment: list[tuple[float, float]] = []
        for index, value in enumerate(values + [None]):
            if value is None:
                if len(segment) > 1:
                    parts.append(_line_path(segment, colour, dash, width=2.5 if s.kind == "actual" else 2))
                segment = []
                continue
            segment.append((x_of(index), y_of(value)))
        for index, value in enumerate(values):
            if value is None:
                continue
            note = s.note(index)
            tip = f"{s.label}, {long_labels[index]}: {_with_unit(format_number(value, lang, decimals), unit)}"
            tip += f" ({note})" if note else ""
            parts.append(_marker(marker, x_of(index), y_of(value), colour, hollow=bool(note), tip=tip))
        parts.append(Markup("</g>"))

    height = bottom + FONT + 14
    desc = _line_desc(drawn, numbers, long_labels, lang, decimals, unit)
    svg = Markup("").join([_svg_open(uid, height, title, desc), *legend, *parts, Markup("</svg>")])

    headers = (category_header or _t(lang, "dashboard.chart.period"),) + tuple(
        f"{s.label} ({unit})" if unit else s.label for s in drawn)
    rows = []
    for index, label in enumerate(long_labels):
        notes = [f"{s.label}: {s.note(index)}" for s, values in zip(drawn, numbers)
                 if s.note(index) and values[index] is not None]
        rows.append((label, tuple(values[index] for values in numbers), "; ".join(notes)))
    table = ChartTable(title, headers, tuple(rows), decimals, note_header=_t(lang, "dashboard.chart.note"))
    return Chart("line", title, lang, svg, table, caption=caption, uid=uid)


def _line_path(points, colour: str, dash: str | None, width: float = 2.0) -> Markup:
    d = " ".join(("M" if i == 0 else "L") + f"{_xy(px)} {_xy(py)}" for i, (px, py) in enumerate(points))
    dash_attr = Markup(' stroke-dasharray="%s"') % dash if dash else Markup("")
    return Markup('<path d="%s" fill="none" stroke="%s" stroke-width="%s" stroke-linejoin="round"%s/>') % (
        d, colour, _xy(width), dash_attr)


def _marker(shape: str, x: float, y: float, colour: str, *, hollow: bool, tip: str = "") -> Markup:
    fill = "#ffffff" if hollow else colour
    r = 3.5
    if shape == "square":
        tag, shape_attrs = "rect", Markup('x="%s" y="%s" width="%s" height="%s"') % (
            _xy(x - r), _xy(y - r), _xy(2 * r), _xy(2 * r))
    elif shape == "diamond":
        tag, shape_attrs = "path", Markup('d="M%s %sL%s %sL%s %sL%s %sZ"') % (
            _xy(x), _xy(y - r - 1), _xy(x + r + 1), _xy(y), _xy(x), _xy(y + r + 1), _xy(x - r - 1), _xy(y))
    elif shape == "triangle":
        tag, shape_attrs = "path", Markup('d="M%s %sL%s %sL%s %sZ"') % (
            _xy(x), _xy(y - r - 1), _xy(x + r + 1), _xy(y + r), _xy(x - r - 1), _xy(y + r))
    else:
        tag, shape_attrs = "circle", Markup('cx="%s" cy="%s" r="%s"') % (_xy(x), _xy(y), _xy(r))
    # nosec B704 (twice): tag is one of four constants; the other arguments are escaped by Markup's %.
    opening = Markup('<%s %s fill="%s" stroke="%s" stroke-width="1.5"') % (
        Markup(tag), shape_attrs, fill, colour)  # nosec B704
    if tip:
        # A pointer resting on the point shows its number (the table below has them all).
        return opening + Markup("><title>%s</title></%s>") % (tip, Markup(tag))  # nosec B704
    return opening + Markup("/>")


def _line_desc(drawn, numbers, labels, lang, decimals, unit) -> str:
    parts = []
    for s, values in zip(drawn, numbers):
        pairs = [(v, labels[i]) for i, v in enumerate(values) if v is not None]
        low = min(pairs, key=lambda p: p[0])
        high = max(pairs, key=lambda p: p[0])
        last = pairs[-1]
        parts.append(_t(lang, "dashboard.chart.desc.line", series=s.label, count=len(pairs),
                        low=format_number(low[0], lang, decimals), low_at=low[1],
                        high=format_number(high[0], lang, decimals), high_at=high[1],
                        last=format_number(last[0], lang, decimals), last_at=last[1]))
    text = " ".join(parts)
    return f"{text} ({unit})" if unit else text


# -- (b) bars by unit ----------------------------------------------------------------------------------

def bar_chart(items: Sequence[tuple], *, title: str, lang: str = DEFAULT_LANGUAGE, decimals: int | None = None,
              unit: str = "", label_header: str = "", value_header: str = "", sort: bool = True,
              empty: str | None = None, caption: bool = True, missing_shown: int = 8, chart_id: str = "") -> Chart:
    """Horizontal bars: ``items`` are (label, value) or (label, value, link). Largest first (``sort``);
    each label sits above its bar on the full width, wrapped, so a long unit name is never cut. Items
    without a value are not drawn: a line under the chart names them (the first ``missing_shown``)
    and the table lists them."""
    rows = []
    for item in items:
        label, value = str(item[0]), _number(item[1])
        link = item[2] if len(item) > 2 else None
        rows.append((label, value, link))
    valued = [r for r in rows if r[1] is not None]
    missing = [r for r in rows if r[1] is None]
    if not valued:
        return _empty("bars", title, lang, empty, caption, chart_id)
    if sort:
        valued.sort(key=lambda r: r[1], reverse=True)
    decimals = _decimals_of(r[1] for r in valued) if decimals is None else decimals
    texts = [_with_unit(format_number(r[1], lang, decimals), unit) for r in valued]
    uid = chart_id or _uid("bars", title, tuple((r[0], str(r[1])) for r in valued))

    low = min(Decimal(0), min(r[1] for r in valued))
    high = max(Decimal(0), max(r[1] for r in valued))
    value_room = max(_width(t) for t in texts) + 10
    left, right = float(PAD), WIDTH - PAD - value_room
    span = float(high - low) or 1.0

    def x_of(value: Decimal) -> float:
        return left + float(value - low) / span * (right - left)

    zero = x_of(Decimal(0))
    parts, y = [], float(PAD)
    bar_height = 14.0
    for (label, value, link), text in zip(valued, texts):
        lines = _wrap(label, WIDTH - 2 * PAD)
        group = [Markup('<g class="bar">')]
        for line in lines:
            y += FONT + 2
            group.append(_text(PAD, y, line))
        y += 5
        x0, x1 = sorted((zero, x_of(value)))
        group.append(Markup('<rect x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s: %s</title></rect>') % (
            _xy(x0), _xy(y), _xy(max(x1 - x0, 1.0)), _xy(bar_height), STYLES["actual"][0], label, text))
        if value < 0:
            group.append(_text(x0 - 4, y + bar_height - 3, text, anchor="end", weight="600")
                         if x0 - _width(text) - 4 > PAD else _text(max(x1, zero) + 4, y + bar_height - 3, text,
                                                                  weight="600"))
        else:
            group.append(_text(x1 + 4, y + bar_height - 3, text, weight="600"))
        group.append(Markup("</g>"))
        y += bar_height + 8
        if link:
            parts.append(Markup('<a href="%s">') % link)
            parts.extend(group)
            parts.append(Markup("</a>"))
        else:
            parts.extend(group)
    if low < 0:
        parts.append(Markup('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="1"/>') % (
            _xy(zero), _xy(PAD), _xy(zero), _xy(y), AXIS))
    height = y + PAD
    desc = _t(lang, "dashboard.chart.desc.bars", count=len(valued), first=valued[0][0], first_value=texts[0],
              last=valued[-1][0], last_value=texts[-1])
    svg = Markup("").join([_svg_open(uid, height, title, desc), *parts, Markup("</svg>")])

    notes = []
    if missing:
        names = [r[0] for r in missing[:missing_shown]]
        more = len(missing) - len(names)
        listed = ", ".join(names) + (_t(lang, "dashboard.chart.and_more", count=more) if more > 0 else "")
        notes.append(_t(lang, "dashboard.chart.missing", count=len(missing), names=listed))
    ordered = valued + missing
    header = value_header or _t(lang, "dashboard.chart.value")
    table = ChartTable(title, (label_header or _t(lang, "dashboard.chart.unit"),
                               f"{header} ({unit})" if unit else header),
                       tuple((r[0], (r[1],), "") for r in ordered), decimals,
                       links=tuple(r[2] for r in ordered))
    return Chart("bars", title, lang, svg, table, notes=tuple(notes), caption=caption, uid=uid)


# -- (c) a figure against its plan ---------------------------------------------------------------------

def attainment_chart(value, plan, *, title: str, lang: str = DEFAULT_LANGUAGE, decimals: int | None = None,
                     unit: str = "", period: str = "", value_label: str = "", plan_label: str = "",
                     empty: str | None = None, caption: bool = True, chart_id: str = "") -> Chart:
    """A bullet bar: the figure as a bar, the plan as a mark across it, and the share of the plan in
    large type. Without a figure, or without a plan above zero, the chart says so instead."""
    number, target = _number(value), _number(plan)
    if number is None:
        return _empty("attainment", title, lang, empty, caption, chart_id)
    if target is None or target <= 0:
        return _empty("attainment", title, lang, _t(lang, "dashboard.chart.no_plan"), caption, chart_id)
    decimals = _decimals_of([number, target]) if decimals is None else decimals
    percent = (number / target * 100).quantize(Decimal("0.1"))
    value_label = value_label or _t(lang, "dashboard.chart.actual")
    plan_label = plan_label or _t(lang, "dashboard.chart.plan")
    value_text = f"{value_label}: {_with_unit(format_number(number, lang, decimals), unit)}"
    plan_text = f"{plan_label}: {_with_unit(format_number(target, lang, decimals), unit)}"
    headline = _t(lang, "dashboard.chart.attained", percent=format_number(percent, lang, 1))
    uid = chart_id or _uid("attainment", title, str(number), str(target), period)

    scale_max = max(number, target) * Decimal("1.1")
    left, right = float(PAD), WIDTH - PAD

    def x_of(v: Decimal) -> float:
        return left + max(0.0, float(v) / float(scale_max)) * (right - left)

    parts = [_text(PAD, PAD + 20, headline, size=20, weight="700", css="attainment-percent")]
    y = PAD + 20
    if period:
        for line in _wrap(period, WIDTH - 2 * PAD, FONT):
            y += FONT + 4
            parts.append(_text(PAD, y, line, fill=MUTED))
    track_top = y + 12
    parts.append(Markup('<rect x="%s" y="%s" width="%s" height="28" fill="%s" stroke="%s" stroke-width="1"/>') % (
        _xy(left), _xy(track_top), _xy(right - left), TRACK, GRID))
    bar_width = max(x_of(number) - left, 1.0 if number > 0 else 0.0)
    parts.append(Markup('<rect x="%s" y="%s" width="%s" height="14" fill="%s" class="attainment-value">'
                        '<title>%s</title></rect>') % (_xy(left), _xy(track_top + 7), _xy(bar_width),
                                                       STYLES["actual"][0], value_text))
    plan_x = x_of(target)
    parts.append(Markup('<rect x="%s" y="%s" width="4" height="40" fill="%s" class="attainment-plan">'
                        '<title>%s</title></rect>') % (_xy(plan_x - 2), _xy(track_top - 6), TEXT, plan_text))
    y = track_top + 28 + FONT + 8
    parts.append(Markup('<rect x="%s" y="%s" width="14" height="8" fill="%s"/>') % (
        _xy(PAD), _xy(y - 8), STYLES["actual"][0]))
    parts.append(_text(PAD + 20, y, value_text))
    y += FONT + 8
    parts.append(Markup('<rect x="%s" y="%s" width="4" height="12" fill="%s"/>') % (_xy(PAD + 5), _xy(y - 10), TEXT))
    parts.append(_text(PAD + 20, y, plan_text))
    height = y + PAD
    desc = f"{headline}. {value_text}; {plan_text}." + (f" {period}" if period else "")
    svg = Markup("").join([_svg_open(uid, height, title, desc), *parts, Markup("</svg>")])
    table = ChartTable(title, (_t(lang, "dashboard.chart.period"), f"{value_label}{f' ({unit})' if unit else ''}",
                               f"{plan_label}{f' ({unit})' if unit else ''}", _t(lang, "dashboard.chart.percent")),
                       ((period or title, (number, target, percent), ""),), (decimals, decimals, 1))
    return Chart("attainment", title, lang, svg, table, caption=caption, uid=uid)


# -- (d) a share of a whole ----------------------------------------------------------------------------

def gauge_chart(done, total, *, title: str, lang: str = DEFAULT_LANGUAGE, done_label: str = "",
                total_label: str = "", row_label: str = "", note: str = "", empty: str | None = None,
                caption: bool = True, chart_id: str = "") -> Chart:
    """A half-circle gauge of ``done`` out of ``total`` (e.g. reports received of reports due), with
    the percentage and the two counts. ``row_label`` names the row of its table (the period),
    ``note`` a line under the drawing. Nothing due: the chart says there is no data."""
    done_n, total_n = _number(done), _number(total)
    if done_n is None or total_n is None or total_n <= 0:
        return _empty("gauge", title, lang, empty, caption, chart_id)
    share = min(max(done_n / total_n, Decimal(0)), Decimal(1))
    percent = (done_n / total_n * 100).quantize(Decimal("0.1"))
    done_label = done_label or _t(lang, "dashboard.chart.done")
    total_label = total_label or _t(lang, "dashboard.chart.total")
    counts = _t(lang, "dashboard.chart.gauge_counts", done=format_number(done_n, lang),
                total=format_number(total_n, lang))
    percent_text = f"{format_number(percent, lang, 1)}%"
    uid = chart_id or _uid("gauge", title, str(done_n), str(total_n), row_label)
    width, cx, cy, radius, stroke = 240.0, 120.0, 118.0, 92.0, 22.0

    def point(fraction: float) -> tuple[float, float]:
        angle = math.pi * (1 - fraction)
        return cx + radius * math.cos(angle), cy - radius * math.sin(angle)

    sx, sy = point(0)
    ex, ey = point(1)
    parts = [Markup('<path d="M%s %s A%s %s 0 0 1 %s %s" fill="none" stroke="%s" stroke-width="%s"/>') % (
        _xy(sx), _xy(sy), _xy(radius), _xy(radius), _xy(ex), _xy(ey), TRACK, _xy(stroke))]
    if share > 0:
        px, py = point(float(share))
        parts.append(Markup('<path d="M%s %s A%s %s 0 0 1 %s %s" fill="none" stroke="%s" stroke-width="%s" '
                            'class="gauge-value"/>') % (_xy(sx), _xy(sy), _xy(radius), _xy(radius), _xy(px),
                                                        _xy(py), STYLES["actual"][0], _xy(stroke)))
    parts.append(_text(cx, cy - 14, percent_text, anchor="middle", size=30, weight="700", css="gauge-percent"))
    parts.append(_text(cx, cy + 24, counts, anchor="middle", fill=MUTED))
    height = cy + 34
    desc = f"{percent_text}: {done_label} {format_number(done_n, lang)}, {total_label} {format_number(total_n, lang)}."
    desc += f" {note}" if note else ""
    svg = Markup("").join([_svg_open(uid, height, title, desc, width=width), *parts, Markup("</svg>")])
    table = ChartTable(title, (_t(lang, "dashboard.chart.period"), done_label, total_label,
                               _t(lang, "dashboard.chart.percent")),
                       ((row_label or title, (done_n, total_n, percent), ""),), (0, 0, 1))
    return Chart("gauge", title, lang, svg, table, notes=(note,) if note else (), caption=caption, uid=uid)


# -- Excel ---------------------------------------------------------------------------------------------

def _sheet_name(text: str, taken: set[str]) -> str:
    name = "".join("_" if c in '[]:*?/\\' else c for c in text).strip("'")[:28] or "Sheet"
    candidate, number = name, 2
    while candidate.lower() in taken:
        candidate = f"{name[:26]} {number}"
        number += 1
    taken.add(candidate.lower())
    return candidate


def chart_workbook(tables: Sequence[ChartTable], *, title: str = "", lines: Sequence[tuple[str, str]] = (),
                   lang: str = DEFAULT_LANGUAGE) -> bytes:
    """An Excel workbook (.xlsx) with one sheet per table: the title and ``lines`` ((label, text):
    the unit, the time of export) above the table, numbers as numbers (shown with the table's
    decimals), texts kept as texts (core.export_safety)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=True)
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DCE6F1")
    taken: set[str] = set()
    for table in tables:
        sheet = book.create_sheet(_sheet_name(table.caption, taken))
        headers = list(table.headers) + ([table.note_header] if table.has_notes else [])
        for column in range(1, len(headers) + 1):
            sheet.column_dimensions[get_column_letter(column)].width = 40 if column == 1 else 18

        def cell(value, **style):
            return export_safety.write_only_cell(sheet, value, **style)

        if title:
            sheet.append([cell(title, font=Font(bold=True, size=14))])
        sheet.append([cell(table.caption, font=bold)])
        for label, text in lines:
            sheet.append([cell(label, font=bold), cell(text)])
        sheet.append([])
        sheet.append([cell(h, font=bold, fill=fill, alignment=Alignment(wrap_text=True, vertical="top"))
                      for h in headers])
        for label, values, note in table.rows:
            row = [cell(label)]
            for column, value in enumerate(values):
                number = _number(value)
                if number is None:
                    row.append(None)
                    continue
                places = table.column_decimals(column)
                places = _decimals_of([number]) if places is None else places
                row.append(cell(number, number_format="#,##0" + ("." + "0" * places if places else "")))
            if table.has_notes:
                row.append(cell(note or None))
            sheet.append(row)
    if not tables:
        book.create_sheet("Sheet")
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
