"""The rows of the entry grid (core/report_entry/_grid.html) as HTML, written in Python.

The grid of the commune's monthly report is 25 rows × 10 columns; even with each cell worked out
once (core.reporting.grid), Jinja's per-expression work (escaping, attribute lookups, the
``cell_input`` macro) cost ~6 ms of the entry page's ~22 ms of processor time, and the entry page
is the most requested page under load (bench/load.py). Written here the same rows cost about a
fifth of that. The output is the template's, byte for byte: tests/web/test_grid_html.py renders
the Jinja loop this replaced beside it. The input's markup is also the ``cell_input`` macro's
(core/report_entry/_macros.html), which the htmx answers still use: change both together.
"""

from __future__ import annotations

from markupsafe import Markup, escape


def _e(value) -> str:
    """``escape(value)`` as text. Most of what a grid prints (keys, kinds, ids, numbers written as
    text) holds none of the five characters markupsafe replaces, and is then its own escape: the
    check costs a quarter of making the Markup (some 1,500 calls a page)."""
    if type(value) is str and not ("&" in value or "<" in value or ">" in value or '"' in value or "'" in value):
        return value
    return str(escape(value))


def row_label(row, names: dict) -> str:
    """The row's label as the ``row_label`` macro prints it (not escaped)."""
    return str(row.label or (names or {}).get(row.indicator) or row.indicator or row.key)


def cell_input(row, column, key: str, value, label: str, error=None) -> str:
    """The ``cell_input`` macro's markup, without ``oob``."""
    ids = f"{_e(row.key)}-{_e(column.key)}"
    invalid = f' aria-invalid="true" aria-describedby="e-{ids}"' if error else ""
    return (f'<input class="cell-input" id="i-{ids}" name="cell.{_e(key)}" type="text" inputmode="decimal"\n'
            f'       autocomplete="off" spellcheck="false" data-col="{_e(column.key)}" value="{_e(value)}"\n'
            f'       aria-label="{_e(label)} — {_e(column.label)}"{invalid}>')


def grid_body(sheet, lang: str, editable, texts: dict, bases: dict, errors: dict, names: dict,
              note_label: str, greyed_label: str) -> Markup:
    """Every ``<tr>`` of the grid's body, as the template's loop printed them."""
    report_id = sheet.report.id
    note_label, greyed_label = _e(note_label), _e(greyed_label)
    out: list[str] = []
    add = out.append
    for row, cells in sheet.grid(lang, inputs=editable):
        label = row_label(row, names)
        add(f'    <tr class="row-{_e(row.kind)}" data-row="{_e(row.key)}">\n'
            f'      <td class="col-stt">{_e(row.number)}</td>\n'
            f'      <th scope="row" class="col-label indent-{_e(row.indent)}">{_e(label)}</th>\n'
            f'      <td class="col-unit">{_e(row.unit)}</td>\n')
        for cell in cells:
            key = cell.key
            error = errors.get(key)
            classes = f"cell cell-{_e(cell.kind)}"
            if cell.notes:
                classes += " has-notes"
            if error:
                classes += " has-error"
            if cell.flag:
                classes += f" msg-{_e(cell.flag)}"
            add(f'      <td class="{classes}" data-cell="{_e(key)}">\n')
            if cell.kind == "greyed":
                add(f'        <span class="visually-hidden">{greyed_label}</span>\n')
            elif cell.kind == "input" and editable:
                value = texts[key] if key in texts else cell.text
                base = bases[key] if key in bases else cell.base
                add(f"        {cell_input(row, cell.column, key, value, label, error)}\n"
                    f'        <input type="hidden" id="b-{_e(cell.ids)}" name="base.{_e(key)}" value="{_e(base)}">\n')
            else:
                add(f'        <span class="cell-value" id="v-{_e(cell.ids)}">{_e(cell.text)}</span>\n')
            if cell.kind != "greyed" and report_id:
                add(f'        <a class="cell-note" tabindex="-1" href="/reports/{_e(report_id)}/comments?cell={_e(key)}" '
                    f'aria-label="{note_label}"><span aria-hidden="true">✎</span><span class="note-count" '
                    f'id="n-{_e(cell.ids)}">{_e(cell.notes or "")}</span></a>\n')
            if error:  # on the line of </td>, unindented: the template's inline {% if %} printed it so
                add(f'<span class="cell-error" id="e-{_e(cell.ids)}">{_e(error.message(lang))}</span>')
            add("      </td>\n")
        add("    </tr>\n")
    # nosec B704: every value above went through _e (markupsafe.escape); the rest is this module's markup.
    return Markup("".join(out))  # nosec B704
