"""The entry grid's rows written in Python (web.grid_html) are the Jinja loop they replaced, byte for
byte: every cell kind, typed texts and bases coming back after a refused save, a cell's error, its
comments, the validation flags, the read-only grid a receiver sees, and text that must be escaped.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from tests.web.test_report_entry import app, world  # noqa: F401 — fixtures

# The loop of core/report_entry/_grid.html before web.grid_html, kept as the oracle.
JINJA_LOOP = """{% from "core/report_entry/_macros.html" import row_label, cell_input with context %}
{% set report_id = sheet.report.id %}
  <tbody>
    {% for row, cells in sheet.grid(lang, inputs=editable) %}
    {% set label = row_label(row, names) %}
    <tr class="row-{{ row.kind }}" data-row="{{ row.key }}">
      <td class="col-stt">{{ row.number }}</td>
      <th scope="row" class="col-label indent-{{ row.indent }}">{{ label }}</th>
      <td class="col-unit">{{ row.unit }}</td>
      {% for cell in cells %}
      {% set key = cell.key %}
      {% set error = errors.get(key) %}
      <td class="cell cell-{{ cell.kind }}{% if cell.notes %} has-notes{% endif %}{% if error %} has-error{% endif %}{% if cell.flag %} msg-{{ cell.flag }}{% endif %}" data-cell="{{ key }}">
        {% if cell.kind == "greyed" %}
        <span class="visually-hidden">{{ greyed_label }}</span>
        {% elif cell.kind == "input" and editable %}
        {{ cell_input(row, cell.column, key, texts[key] if key in texts else cell.text, label, error) }}
        <input type="hidden" id="b-{{ cell.ids }}" name="base.{{ key }}" value="{{ bases[key] if key in bases else cell.base }}">
        {% else %}
        <span class="cell-value" id="v-{{ cell.ids }}">{{ cell.text }}</span>
        {% endif %}
        {% if cell.kind != "greyed" and report_id %}
        <a class="cell-note" tabindex="-1" href="/reports/{{ report_id }}/comments?cell={{ key }}" aria-label="{{ note_label }}"><span aria-hidden="true">✎</span><span class="note-count" id="n-{{ cell.ids }}">{{ cell.notes or "" }}</span></a>
        {% endif %}
        {% if error %}<span class="cell-error" id="e-{{ cell.ids }}">{{ error.message(lang) }}</span>{% endif %}
      </td>
      {% endfor %}
    </tr>
    {% endfor %}
  </tbody>"""


class _Error:
    def __init__(self, text):
        self.text = text

    def message(self, lang):
        return f"{self.text} ({lang})"


def _both(client, sheet, lang, editable, texts=None, bases=None, errors=None, names=None):
    env = client.app.state.templates.env
    context = {"sheet": sheet, "lang": lang, "editable": editable, "texts": texts or {}, "bases": bases or {},
               "errors": errors or {}, "names": names or {}, "note_label": 'Ghi chú "ô" <Alt+M>',
               "greyed_label": "Không nhập & khóa"}
    old = env.from_string(JINJA_LOOP).render(context)
    new = env.from_string("  <tbody>\n{{ grid_body(sheet, lang, editable, texts, bases, errors, names, note_label, "
                          "greyed_label) }}  </tbody>").render(context)
    return old.split("<tbody>", 1)[1], new.split("<tbody>", 1)[1]


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_the_rows_written_in_python_are_the_jinja_loops(client, world, lang):  # noqa: F811
    from core.db import db
    from core.reporting import data as reporting
    from tests.fixtures.forms import access_of

    reporter = access_of(world.users["reporter"])
    rid = world.report.id
    with db.connection_context():
        reporting.save(reporter, rid, {("banle", "cur"): ("", "12.5")})
        reporting.add_comment(reporter, rid, "banle", "cur", "Số liệu <tạm tính> & chưa chốt")
        sheet = reporting.load_sheet(reporter, rid)
        inputs = [c for _, cells in sheet.grid(lang, inputs=True) for c in cells if c.kind == "input"]
        assert len(inputs) >= 2 and {c.kind for _, cells in sheet.grid(lang) for c in cells} >= {"input", "computed"}
        typed, bad = inputs[0].key, inputs[1].key
        cases = [
            dict(editable=True),
            dict(editable=True, texts={typed: '7"<b>', bad: "1,2,3"}, bases={typed: "5"},
                 errors={bad: _Error("Không đọc được <số>")}, names={}),
            dict(editable=False),
            dict(editable=False, names={"KX0301": "Bán lẻ <tên> & \"dịch vụ\""}),
        ]
        for case in cases:
            old, new = _both(client, sheet, lang, **case)
            assert new == old
            assert "&lt;" in new or not case.get("errors")  # the hostile texts are escaped, not printed
        # A receiver's read-only grid and the designer's preview (no report id: no comment links).
        preview = dataclasses.replace(sheet, report=SimpleNamespace(id=None))
        old, new = _both(client, preview, lang, editable=False)
        assert new == old and "cell-note" not in new
