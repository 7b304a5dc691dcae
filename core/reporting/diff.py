"""What changed between two submitted versions of a report, cell by cell and section by section.

Both sides come from the versions' canonical JSON (core.reporting.workflow): what the unit sent is
what is compared, never the live draft. The two versions may have been filled with different form
versions (a report reopened after the form changed keeps its own version, but a comparison across
reports or a migrated report may not): labels come from the newer version's form, then the older
one's, then the bare keys, so a cell that no form names any more still shows.

Cells are listed in the order of the newer form (rows, then columns), unknown keys last. A section
that changed carries its text as a list of (tag, text) pieces — "equal", "delete", "insert" — from
a line-level diff whose replaced blocks are diffed again word by word, so a long report with one
edited sentence shows that sentence, not the whole page. Values stay canonical decimal strings
(a computed ratio keeps every digit it was frozen with); screens format them for the reader's
language (1.234,5 in Vietnamese) with the decimals the entry grid shows (``decimals``).
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from core.regimes.form_engine import column_label
from core.regimes.forms import FormVersion

CHANGED, ADDED, REMOVED = "changed", "added", "removed"
WORD_DIFF_LIMIT = 4000  # tokens per replaced block; beyond it the block shows as deleted + inserted
_TOKENS = re.compile(r"\d+(?:[.,]\d+)*|\w+|\s+|[^\w\s]")  # a number like 1.234,5 is one word


@dataclass(frozen=True)
class CellChange:
    key: str  # "row.col"
    row_label: str
    column_label: str
    old: str | None  # canonical decimal string, None when the cell was empty
    new: str | None
    kind: str  # changed, added, removed
    decimals: int | None = None  # as the entry grid shows the cell (None: as many as the value has)


@dataclass(frozen=True)
class SectionChange:
    key: str
    title: str
    old: str
    new: str
    kind: str
    pieces: tuple[tuple[str, str], ...]  # (equal | delete | insert, text)


@dataclass(frozen=True)
class AttachmentChange:
    kind: str  # added, removed
    name: str
    size: int
    sha256: str


@dataclass
class Diff:
    old_number: int
    new_number: int
    old_form: str  # "BM-THANG v1"
    new_form: str
    cells: list[CellChange] = field(default_factory=list)
    sections: list[SectionChange] = field(default_factory=list)
    attachments: list[AttachmentChange] = field(default_factory=list)

    @property
    def form_changed(self) -> bool:
        return self.old_form != self.new_form

    @property
    def empty(self) -> bool:
        return not (self.cells or self.sections or self.attachments)


class _Labels:
    """Row, column and section labels from the forms of the newer then the older version."""

    def __init__(self, forms: list, period: dict):
        self.rows, self.columns, self.sections, self.order, self.formats = {}, {}, {}, {}, {}
        freq, year, index = period.get("frequency", ""), period.get("year", 0), period.get("index", 0)
        for form in reversed(forms):  # the newer form last, so its labels win
            for r in form.rows:
                self.rows[r.key] = f"{r.number}. {r.label}" if r.number and r.label else (r.label or r.indicator or r.key)
            for c in form.columns:
                self.columns[c.key] = column_label(c, freq, year, index) or c.key
            for s in form.outline:
                self.sections[s["key"]] = s.get("title") or s["key"]
        newer = forms[0] if forms else None
        if newer is not None:
            rank = {c.key: i for i, c in enumerate(newer.columns)}
            for i, r in enumerate(newer.rows):
                for c in newer.columns:
                    self.order[f"{r.key}.{c.key}"] = (i, rank[c.key])
                    decimals = c.decimals if c.decimals is not None else r.decimals
                    self.formats[f"{r.key}.{c.key}"] = (decimals, newer.cell_kind(r, c) == "computed")

    def decimals(self, key: str, *values) -> int | None:
        """The grid's rule (core/report_entry/_macros.html ``show``): the cell's decimals, and for a
        computed cell without any, none for whole numbers and two otherwise."""
        decimals, computed = self.formats.get(key, (None, False))
        if decimals is not None or not computed:
            return decimals
        try:
            whole = all(Decimal(v) == Decimal(v).to_integral_value() for v in values if v is not None)
        except InvalidOperation:
            return None
        return 0 if whole else 2

    def cell_order(self, key: str):
        return (0, self.order[key], key) if key in self.order else (1, (0, 0), key)


def _compiled(form_version_id):
    version = FormVersion.get_or_none(FormVersion.id == form_version_id)
    return version.compiled() if version is not None else None


def content_of(version) -> dict:
    return json.loads(version.canonical)


def _form_name(content: dict) -> str:
    form = content.get("form") or {}
    return f"{form.get('code', '')} v{form.get('version', '')}".strip()


def word_pieces(old: str, new: str) -> tuple[tuple[str, str], ...]:
    """(tag, text) pieces turning ``old`` into ``new``: lines first, then words inside changed lines."""
    pieces: list[tuple[str, str]] = []
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        left, right = "".join(a[i1:i2]), "".join(b[j1:j2])
        if tag == "equal":
            pieces.append(("equal", left))
        elif tag == "delete":
            pieces.append(("delete", left))
        elif tag == "insert":
            pieces.append(("insert", right))
        else:
            pieces.extend(_words(left, right))
    merged: list[tuple[str, str]] = []
    for tag, text in pieces:  # neighbours of one kind read as one piece
        if not text:
            continue
        if merged and merged[-1][0] == tag:
            merged[-1] = (tag, merged[-1][1] + text)
        else:
            merged.append((tag, text))
    return tuple(merged)


def _words(old: str, new: str) -> list[tuple[str, str]]:
    a, b = _TOKENS.findall(old), _TOKENS.findall(new)
    if len(a) > WORD_DIFF_LIMIT or len(b) > WORD_DIFF_LIMIT:
        return [("delete", old), ("insert", new)]
    out = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append(("equal", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(("delete", "".join(a[i1:i2])))
        if j2 > j1:
            out.append(("insert", "".join(b[j1:j2])))
    return _join_runs(out)


def _join_runs(pieces: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """A space left equal between two changed words splits one edit in two ("ổn định" → "tăng
    mạnh" reads as delete/insert/space/delete/insert): such a run becomes one delete and one insert."""
    out: list[tuple[str, str]] = []
    run: list[tuple[str, str]] = []

    def flush():
        while run and run[-1][0] == "equal":  # a trailing space belongs to what follows
            trailing = run.pop()
            flush()
            out.append(trailing)
            return
        if run:
            out.append(("delete", "".join(t for tag, t in run if tag != "insert")))
            out.append(("insert", "".join(t for tag, t in run if tag != "delete")))
            run.clear()

    for i, (tag, text) in enumerate(pieces):
        inside = 0 < i < len(pieces) - 1 and pieces[i - 1][0] != "equal" and pieces[i + 1][0] != "equal"
        if tag != "equal" or (inside and run and not text.strip()):
            run.append((tag, text))
        else:
            flush()
            out.append((tag, text))
    flush()
    return [(tag, text) for tag, text in out if text]


def diff_versions(old, new) -> Diff:
    """What changed from version ``old`` to version ``new`` (two ReportVersion rows)."""
    before, after = content_of(old), content_of(new)
    forms = [f for f in (_compiled(new.form_version_id), _compiled(old.form_version_id)) if f is not None]
    period = (after.get("report") or {}).get("period") or {}
    labels = _Labels(forms, period)
    diff = Diff(old.number, new.number, _form_name(before), _form_name(after))

    old_values, new_values = before.get("values") or {}, after.get("values") or {}
    for key in sorted(set(old_values) | set(new_values), key=labels.cell_order):
        was, now = old_values.get(key), new_values.get(key)
        if was == now:
            continue
        row, _, col = key.partition(".")
        kind = ADDED if was is None else REMOVED if now is None else CHANGED
        diff.cells.append(CellChange(key, labels.rows.get(row, row), labels.columns.get(col, col), was, now, kind,
                                     labels.decimals(key, was, now)))

    old_sections, new_sections = before.get("sections") or {}, after.get("sections") or {}
    outline = [s["key"] for s in forms[0].outline] if forms else []
    keys = [k for k in outline if k in old_sections or k in new_sections]
    keys += sorted((set(old_sections) | set(new_sections)) - set(keys))
    for key in keys:
        was, now = old_sections.get(key, ""), new_sections.get(key, "")
        if was == now:
            continue
        kind = ADDED if not was else REMOVED if not now else CHANGED
        diff.sections.append(SectionChange(key, labels.sections.get(key, key), was, now, kind, word_pieces(was, now)))

    def files(content):
        return {(a["sha256"], a["name"]): a for a in content.get("attachments") or []}

    old_files, new_files = files(before), files(after)
    for kind, here, there in ((REMOVED, old_files, new_files), (ADDED, new_files, old_files)):
        for ident in sorted(set(here) - set(there), key=lambda i: (i[1], i[0])):
            a = here[ident]
            diff.attachments.append(AttachmentChange(kind, a["name"], a["size"], a["sha256"]))
    return diff


def version_grid(version) -> dict:
    """The values of one version as a read-only table in form order: the columns that hold a value,
    and each row (headings kept, to read the table as the form shows it) with its values."""
    content = content_of(version)
    form = _compiled(version.form_version_id)
    labels = _Labels([form] if form else [], (content.get("report") or {}).get("period") or {})
    values = content.get("values") or {}
    used = {key.partition(".")[2] for key in values}
    keys = [c.key for c in form.columns if c.key in used] if form else []
    keys += sorted(used - set(keys))
    columns = [{"key": k, "label": labels.columns.get(k, k)} for k in keys]
    rows, seen = [], set()
    for r in (form.rows if form else []):
        seen.add(r.key)
        cells = [values.get(f"{r.key}.{k}") for k in keys]
        if r.kind == "heading" or any(v is not None for v in cells):
            rows.append({"key": r.key, "label": labels.rows[r.key], "heading": r.kind == "heading", "cells": cells,
                         "decimals": [labels.decimals(f"{r.key}.{k}", v) for k, v in zip(keys, cells)]})
    for row in sorted({key.partition(".")[0] for key in values} - seen):
        rows.append({"key": row, "label": row, "heading": False, "cells": [values.get(f"{row}.{k}") for k in keys],
                     "decimals": [None] * len(keys)})
    return {"columns": columns, "rows": rows}
