"""The grid's cells worked out in Python (core.reporting.grid) print what the ``show`` macro prints
on the other screens, and the per-process figures cache stays within its bound (issue 17 item 5)."""

from decimal import Decimal
from types import SimpleNamespace

import jinja2
import pytest

from core.i18n import format_number
from core.reporting import data as rd
from core.reporting.grid import shown
from web.templating import TEMPLATES_DIR

CASES = [  # value, column decimals, row decimals, kind
    (Decimal("1234.5"), None, None, "computed"), (Decimal("2"), None, None, "computed"),
    (Decimal("2.000000"), None, None, "computed"), (Decimal("-0.005"), None, None, "computed"),
    (Decimal("1234567.891"), 1, None, "computed"), (Decimal("2.5"), None, 0, "prefill"),
    (Decimal("12.3456"), None, None, "prefill"), (Decimal("12.3456"), 2, 0, "input"),
    (Decimal("0"), None, None, "computed"), (None, None, None, "computed"),
]


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_a_cell_reads_as_the_show_macro_writes_it(lang):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)), autoescape=True)
    macro = env.from_string('{% from "core/report_entry/_macros.html" import show with context %}'
                            "{{ show(value, row, column, kind) }}")
    for value, col_decimals, row_decimals, kind in CASES:
        row, column = SimpleNamespace(decimals=row_decimals), SimpleNamespace(decimals=col_decimals)
        expected = macro.render(value=value, row=row, column=column, kind=kind,
                                fmt_number=lambda v, d=None: format_number(v, lang, d))
        assert shown(value, row, column, kind, lang) == expected, (value, col_decimals, row_decimals, kind)


def test_the_figures_kept_per_process_stay_within_their_bound(monkeypatch):
    monkeypatch.setattr(rd, "_FIGURES", rd.OrderedDict())
    monkeypatch.setattr(rd, "_FIGURES_HELD", 2_500)

    def unit(n):  # 1,000 figures of unit n, read once and then kept while unchanged
        return rd._while_unchanged(rd._FIGURES, (n, ("A",), 2026), 1, lambda: {(n, i): i for i in range(1000)},
                                   rd._FIGURES_SIZE, weigh=lambda entry: len(entry[1]), most=rd._FIGURES_HELD)

    first = unit(1)
    assert unit(1) is first  # kept
    for n in range(2, 6):
        unit(n)
    assert sum(len(figures) for _, figures in rd._FIGURES.values()) <= 2_500
    assert [key[2] for key in rd._FIGURES] == [4, 5]  # the oldest went first
    monkeypatch.setattr(rd, "_FIGURES_HELD", 10)
    unit(6)
    assert [key[2] for key in rd._FIGURES] == [6]  # the newest stays, whatever its size
