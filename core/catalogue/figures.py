"""Figures of indicators (số liệu chỉ tiêu): one value per indicator, unit, period and value kind.

This is the store the province reads its figures from — the same shape as the provincial data
warehouse's read API (office code, indicator code, data type 1–4, period, year → value): a report
accepted at any level writes its figures here (issue 6), dashboards and the national link read
them, a plugin may load figures it ships. Report versions keep their own frozen values; this table
holds the latest figure per key.

A period is (frequency, year, index) as in ``core.regimes.periods`` (``monthly, 2026, 1`` = "Tháng 1 năm
2026"). The key is the indicator's *code*, not its version row, so a series runs across catalogue
versions; the row still records which version the figure was given under. ``option`` is the
disaggregation option (empty = the total).

``put_values`` validates everything first and writes in one transaction, one upsert statement per
batch (an acceptance wrote its figures one at a time before: two statements a figure): a batch is
taken whole or not at all, and writing the same batch twice changes nothing (the second call
reports 0 changed). Consolidated figures (source "consolidation") are written here by live
consolidation (``core.reporting.consolidation``), which says what each counts (``provenance``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from peewee import CharField, Check, DateTimeField, DecimalField, ForeignKeyField, IntegerField, TextField, Tuple

from core import clock
from core import audit, generations
from core.regimes import periods
from core.db import CoreModel, Prepared, db, is_sqlite, transaction
from core.errors import ValidationError
from core.catalogue.indicators import VALUE_KINDS, Indicator
from core.models import Unit, utcnow
from core.numbers import MAX_DECIMALS, NumberError, parse_canonical

MAX_DIGITS, DECIMALS = 24, MAX_DECIMALS  # the value columns of core.numbers


def _in(column, values):
    return Check(f"{column} IN (%s)" % ", ".join(f"'{v}'" for v in values))


class IndicatorValue(CoreModel):
    code = CharField(max_length=10)
    indicator = ForeignKeyField(Indicator, on_delete="RESTRICT")  # the version it was given under
    unit = ForeignKeyField(Unit, on_delete="RESTRICT")
    frequency = CharField(max_length=20, constraints=[_in("frequency", periods.FREQUENCIES)])
    year = IntegerField()
    index = IntegerField()
    kind = CharField(max_length=10, constraints=[_in("kind", VALUE_KINDS)])
    option = CharField(max_length=100, default="")
    value = DecimalField(max_digits=MAX_DIGITS, decimal_places=DECIMALS, null=True)
    text = TextField(null=True)
    source = CharField(max_length=40)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("code", "unit", "frequency", "year", "index", "kind", "option"), True),
                   (("unit", "frequency", "year", "index"), False))


@dataclass(frozen=True)
class Figure:
    """One figure to write: ``value`` is a number (or text for text indicators)."""

    code: str
    unit_id: int
    frequency: str
    year: int
    index: int
    kind: str
    value: object
    option: str = ""


def _number(raw) -> Decimal | None:
    """A figure's value as a program gives it (a number, or its canonical text ``-1234.5``), only
    if the value column stores it exactly on every database: the rule of ``core.numbers``, the same
    as for report cells (SQLite would keep 99999999999.999999 as 100000000000). Raises NumberError."""
    return parse_canonical(raw)


def _check(figure: Figure, value_type: str | None, known_units: set[int], good_periods: set) -> tuple:
    """(problem, value): the first problem of one figure as (field, message key, its parameters),
    or None and the value to store; a value the column cannot hold exactly gives core.numbers'
    own message (the grid's). ``good_periods``: periods already found to exist (filled here)."""
    if value_type is None:
        return ("code", "values.error.unknown_indicator", {}), None
    if figure.unit_id not in known_units:
        return ("unit", "values.error.unknown_unit", {}), None
    if figure.kind not in VALUE_KINDS:
        return ("kind", "values.error.kind", {}), None
    period = (figure.frequency, figure.year, figure.index)
    if period not in good_periods:
        try:
            periods.window(*period)
        except Exception:  # noqa: BLE001 — any period error is the period's fault
            return ("period", "values.error.period", {}), None
        good_periods.add(period)
    if value_type == "text":
        return None, (str(figure.value) if figure.value not in (None, "") else None)
    try:
        return None, _number(figure.value)
    except NumberError as exc:
        # Text that is no number at all: this API's own words (core.numbers' advice is about typing).
        if exc.key == NumberError.key:
            return ("value", "values.error.number", {}), None
        return ("value", exc.key, exc.params), None


# Built once per number of codes (units): an acceptance asks for its form's hundred-odd codes,
# and peewee building a hundred-item IN list cost more than the database answering it.
_INDICATORS = Prepared(lambda p: Indicator.select(Indicator.code, Indicator.id, Indicator.value_type)
                       .where(Indicator.code.in_(p.codes) & Indicator.is_current).tuples())
_UNITS = Prepared(lambda p: Unit.select(Unit.id).where(Unit.id.in_(p.ids)).tuples())


def put_values(figures: Iterable[Figure], *, source: str, actor=None) -> int:
    """Write a batch of figures (all or nothing); returns how many rows changed.

    A refused batch raises ValidationError: ``errors`` maps "<number>.<field>" (1-based) to a
    message key; the parameters of the first refused figure's message (the value, the digits
    allowed) are the exception's ``params``."""
    figures = list(figures)
    if not figures:
        return 0
    indicators = {code: (iid, value_type) for code, iid, value_type in
                  _INDICATORS.run(codes=tuple({f.code for f in figures}))}
    known_units = {u for u, in _UNITS.run(ids=tuple({f.unit_id for f in figures}))}
    errors, params, good_periods = {}, {}, set()
    # One row per key, the last given winning (as writing them one after the other did): a key
    # twice in one upsert statement is refused by PostgreSQL.
    rows: dict[tuple, tuple] = {}
    now = utcnow()
    for number, figure in enumerate(figures, start=1):
        indicator_id, value_type = indicators.get(figure.code, (None, None))
        problem, value = _check(figure, value_type, known_units, good_periods)
        if problem:
            field, key, key_params = problem
            errors[f"{number}.{field}"] = key
            params = params or key_params
            continue
        is_text = value_type == "text"
        key = (figure.code, figure.unit_id, figure.frequency, figure.year, figure.index, figure.kind, figure.option)
        rows[key] = (figure.code, indicator_id, figure.unit_id, figure.frequency, figure.year, figure.index,
                     figure.kind, figure.option, None if is_text else value, value if is_text else None, source, now)
    if errors:
        raise ValidationError(errors, **params)
    with transaction():
        changed = _upsert([rows[key] for key in sorted(rows)])  # one order for every writer: no lock cycle
        if changed:
            # Screens keep each unit's figures between requests (core.reporting.data): tell them.
            generations.bump(*(generations.figures_key(f.unit_id) for f in figures))
            audit.record("indicator.values.put", actor=actor, object_type="indicator_value",
                         details={"source": source, "figures": len(figures), "changed": changed})
    return changed


_COLUMNS = ("code", "indicator_id", "unit_id", "frequency", "year", "index", "kind", "option", "value", "text",
            "source", "updated_at")
_KEY = ("code", "unit_id", "frequency", "year", "index", "kind", "option")


def _upsert(rows: list[tuple]) -> int:
    """Insert or update figures in one statement per batch; returns the rows inserted or changed.

    A stored figure is updated only when its value or text differs (compared by the database as
    numbers: 10.500000 is 10.5), so a batch written twice changes nothing the second time and
    its row count says so: a row the ``WHERE`` of ``DO UPDATE`` skips is not counted, by SQLite
    nor by PostgreSQL."""
    table = IndicatorValue._meta.table_name
    differs = "IS NOT" if is_sqlite() else "IS DISTINCT FROM"
    changed = (f'"{table}"."value" {differs} EXCLUDED."value" '
               f'OR "{table}"."text" {differs} EXCLUDED."text"')
    return bulk_write(IndicatorValue, _COLUMNS, rows, conflict=_KEY,
                      update=("indicator_id", "value", "text", "source", "updated_at"), where=changed)


# Bound parameters per statement on SQLite: under its limit of 32,766.
MAX_PARAMETERS = 30_000
# Column types for PostgreSQL's arrays (peewee's field types).
_ARRAY_TYPES = {"INT": "integer", "AUTO": "integer", "BIGINT": "bigint", "VARCHAR": "text", "TEXT": "text",
                "DECIMAL": "numeric", "DATETIME": "timestamp", "DATE": "date", "BOOL": "boolean"}


def bulk_write(model, columns: tuple[str, ...], rows: list[tuple], *, conflict: tuple[str, ...] = (),
               update: tuple[str, ...] = (), where: str = "") -> int:
    """Insert ``rows`` (tuples in the order of ``columns``, the model's column names, values as
    the driver takes them) into ``model``'s table; with ``conflict``, ``ON CONFLICT (…) DO UPDATE
    SET col = EXCLUDED.col … [WHERE …]`` (or ``DO NOTHING``). Returns the rows inserted or changed.

    Written out rather than built by peewee's ``insert_many``: building the SQL of a 1,000-row
    insert in Python costs more than the database's work (some 10 ms), on every acceptance. On
    SQLite one multi-row ``VALUES`` per batch; on PostgreSQL ``COPY`` for plain rows, and for an
    upsert one ``INSERT … SELECT FROM unnest(array, …)`` per 5,000 rows, a statement of a few
    parameters whatever the number of rows (a thousand-row ``VALUES`` took PostgreSQL three
    times longer to parse and plan).

    The SQL is formatted (``# nosec B608`` below) from the model's table and column names and the
    callers' constant ``where``; every value is a bound parameter or goes through ``COPY``."""
    if not rows:
        return 0
    table = model._meta.table_name
    names = ", ".join(f'"{c}"' for c in columns)
    tail = ""
    if conflict:
        target = ", ".join(f'"{c}"' for c in conflict)
        if update:
            sets = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in update)
            tail = f" ON CONFLICT ({target}) DO UPDATE SET {sets}" + (f" WHERE {where}" if where else "")  # nosec B608
        else:
            tail = f" ON CONFLICT ({target}) DO NOTHING"
    changed = 0
    if is_sqlite():
        one = "(" + ", ".join(["?"] * len(columns)) + ")"
        per = max(1, min(1000, MAX_PARAMETERS // len(columns)))
        for start in range(0, len(rows), per):
            chunk = rows[start:start + per]
            sql = f'INSERT INTO "{table}" ({names}) VALUES ' + ", ".join([one] * len(chunk)) + tail  # nosec B608
            changed += db.execute_sql(sql, [v for row in chunk for v in row]).rowcount
        return changed
    if not conflict:  # plain rows: COPY, the driver formatting them in C
        with db.cursor().copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)
        return len(rows)
    kinds = [_ARRAY_TYPES[model._meta.columns[c].field_type] for c in columns]
    arrays = ", ".join(f"%s::{kind}[]" for kind in kinds)
    sql = f'INSERT INTO "{table}" ({names}) SELECT * FROM unnest({arrays})' + tail  # nosec B608
    for start in range(0, len(rows), 5000):
        columns_of_batch = zip(*rows[start:start + 5000])
        params = [_array_literal(column, kind in _UNQUOTED) for column, kind in zip(columns_of_batch, kinds)]
        changed += db.execute_sql(sql, params).rowcount
    return changed


def bulk_update(model, columns: tuple[str, ...], rows: list[tuple]) -> int:
    """Update rows of ``model``'s table by primary key: ``rows`` are tuples of the key, then the
    values of ``columns`` (the model's column names). Returns the rows updated.

    For a writer that read the rows it changes (live consolidation's running totals): one
    ``UPDATE … FROM`` per batch joining on the key, which costs the database less than an upsert
    that looks every row up by its unique columns first (PostgreSQL: ``unnest`` of one array per
    column; SQLite: a ``VALUES`` list). Formatted SQL as in ``bulk_write`` (names only: ``# nosec B608``)."""
    if not rows:
        return 0
    table, key = model._meta.table_name, model._meta.primary_key.column_name
    changed = 0
    if is_sqlite():
        sets = ", ".join(f'"{c}" = d.column{n}' for n, c in enumerate(columns, start=2))
        one = "(" + ", ".join(["?"] * (len(columns) + 1)) + ")"
        per = max(1, min(1000, MAX_PARAMETERS // (len(columns) + 1)))
        for start in range(0, len(rows), per):
            chunk = rows[start:start + per]
            sql = (f'UPDATE "{table}" SET {sets} FROM (VALUES ' + ", ".join([one] * len(chunk))  # nosec B608
                   + f') AS d WHERE "{table}"."{key}" = d.column1')
            changed += db.execute_sql(sql, [v for row in chunk for v in row]).rowcount
        return changed
    names = (key, *columns)
    kinds = [_ARRAY_TYPES[model._meta.columns[c].field_type] for c in names]
    arrays = ", ".join(f"%s::{kind}[]" for kind in kinds)
    sets = ", ".join(f'"{c}" = d."{c}"' for c in columns)
    # The keys twice: PostgreSQL, knowing how many rows the arrays hold, would rather hash the
    # whole table than look a thousand keys up; "= ANY" of the keys makes it use the index.
    sql = (f'UPDATE "{table}" SET {sets} FROM unnest({arrays}) AS d(' + ", ".join(f'"{c}"' for c in names)  # nosec B608
           + f') WHERE "{table}"."{key}" = d."{key}" AND "{table}"."{key}" = ANY(%s::{kinds[0]}[])')
    for start in range(0, len(rows), 5000):
        params = [_array_literal(v, kind in _UNQUOTED) for v, kind in zip(zip(*rows[start:start + 5000]), kinds)]
        changed += db.execute_sql(sql, params + params[:1]).rowcount
    return changed


_UNQUOTED = frozenset({"integer", "bigint", "numeric"})  # their text never holds a quote, comma or space


def _array_literal(values, bare: bool) -> str:
    """A PostgreSQL array literal (``{1.5,NULL,"a \\"b\\""}``) of one column's values, each
    written as its text as the driver would (``str``), quoted unless ``bare``.

    The driver's own array dumper quotes element by element in Python (a regular expression
    each): for the 1,200 running totals and 600 figures of one acceptance that cost more than
    the database's upsert. Joining the texts is ten times cheaper; the database parses the same
    literal either way."""
    if bare:
        return "{" + ",".join(["NULL" if v is None else str(v) for v in values]) + "}"
    return "{" + ",".join(["NULL" if v is None else '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
                           for v in values]) + "}"


def table(unit_id: int, frequency: str, year: int, index: int, codes: Iterable[str] | None = None,
          option: str = "") -> dict[str, dict[str, Decimal | str | None]]:
    """{code: {kind: value}} for one unit and period."""
    query = IndicatorValue.select().where((IndicatorValue.unit == unit_id) & (IndicatorValue.frequency == frequency)
                                          & (IndicatorValue.year == year) & (IndicatorValue.index == index)
                                          & (IndicatorValue.option == option))
    if codes is not None:
        query = query.where(IndicatorValue.code.in_(list(codes)))
    out: dict[str, dict] = {}
    for row in query:
        out.setdefault(row.code, {})[row.kind] = row.text if row.value is None and row.text else row.value
    return out


def series(code: str, unit_id: int, frequency: str, kind: str, *, since_year: int | None = None,
           option: str = "") -> list[tuple[int, int, Decimal | None]]:
    """[(year, index, value)] in period order: the time series of one figure."""
    query = (IndicatorValue.select(IndicatorValue.year, IndicatorValue.index, IndicatorValue.value)
             .where((IndicatorValue.code == code) & (IndicatorValue.unit == unit_id)
                    & (IndicatorValue.frequency == frequency) & (IndicatorValue.kind == kind)
                    & (IndicatorValue.option == option))
             .order_by(IndicatorValue.year, IndicatorValue.index))
    if since_year is not None:
        query = query.where(IndicatorValue.year >= since_year)
    return [(r.year, r.index, r.value) for r in query]


def latest_period(unit_id: int, frequency: str, *, today: dt.date | None = None) -> tuple[int, int] | None:
    """(year, index) of the latest period holding any figure for the unit, not after today."""
    today = today or clock.today()
    row = (IndicatorValue.select(IndicatorValue.year, IndicatorValue.index)
           .where((IndicatorValue.unit == unit_id) & (IndicatorValue.frequency == frequency)
                  & (IndicatorValue.year <= today.year))
           .order_by(IndicatorValue.year.desc(), IndicatorValue.index.desc()).first())
    return (row.year, row.index) if row else None



# -- the query plugins read figures with (core.api.figures) -----------------------------------------

# The largest question ``query`` answers: codes × units × periods × kinds (× options when they are
# listed) at most this many keys, and at most this many rows returned. A province's monthly report
# from every commune for a year is ~40 codes × 150 units × 12 periods = 72,000: one screen's worth.
MAX_FIGURES = 100_000
# At most this many entries in any one list, so the query's parameters stay within what SQLite
# (32,766) and PostgreSQL (65,535) bind whatever the other lists hold.
MAX_LIST = 5_000
ALL_OPTIONS = "all"


@dataclass(frozen=True)
class FigureRow:
    """One stored figure: ``value`` is a Decimal (the text for text indicators), or None."""

    code: str
    unit_id: int
    frequency: str
    year: int
    index: int
    kind: str
    option: str
    value: Decimal | str | None


class FiguresQueryError(ValidationError):
    """A figures question the store cannot answer; ``errors`` names the argument."""

    def __init__(self, argument: str, key: str, **params):
        super().__init__({argument: key}, argument=argument, **params)
        self.key = key  # the message says what is wrong, in both languages


def _listed(argument: str, values) -> list:
    # A lone string would be read letter by letter ("actual" → a, c, t, …): refused by name.
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise FiguresQueryError(argument, "figures.query.not_a_list")
    out = list(dict.fromkeys(values))  # once each, in the caller's order
    if len(out) > MAX_LIST:
        raise FiguresQueryError(argument, "figures.query.list_too_long", count=len(out), limit=MAX_LIST)
    return out


def query(codes: Iterable[str], units: Iterable[int], periods_: Iterable[tuple[str, int, int]],
          kinds: Iterable[str] = ("actual",), options=None) -> list[FigureRow]:
    """The stored figures of ``codes`` × ``units`` × ``periods_`` × ``kinds``, in one query.

    ``periods_``: (frequency, year, index) triples; ``options``: None for the totals only (option
    ""), ``"all"`` for the totals and every disaggregation option, or a list of option codes ("" for
    the total). Rows come sorted by code, unit, period, kind and option; a key with no figure has
    no row. Refuses (``FiguresQueryError``, a ``ValidationError``) an unknown kind or frequency, a
    period that does not exist, a lone string where a list is expected, and a question larger than
    ``MAX_FIGURES``."""
    codes, units = _listed("codes", codes), _listed("units", units)
    if isinstance(periods_, Iterable) and not isinstance(periods_, (str, bytes)):
        # A period read from JSON is a list: the same triple.
        periods_ = [tuple(p) if isinstance(p, list) else p for p in periods_]
    kinds, periods_ = _listed("kinds", kinds), _listed("periods", periods_)
    for kind in kinds:
        if kind not in VALUE_KINDS:
            raise FiguresQueryError("kinds", "figures.query.kind", kind=str(kind)[:40], known=", ".join(VALUE_KINDS))
    for period in periods_:
        if not isinstance(period, tuple) or len(period) != 3:
            raise FiguresQueryError("periods", "figures.query.period", period=str(period)[:60])
        frequency, year, index = period
        if frequency not in periods.FREQUENCIES:
            raise FiguresQueryError("periods", "figures.query.frequency", frequency=str(frequency)[:40],
                                    known=", ".join(periods.FREQUENCIES))
        try:
            periods.window(frequency, year, index)
        except Exception:  # noqa: BLE001 — any period error is the period's fault
            raise FiguresQueryError("periods", "figures.query.period", period=str(period)[:60]) from None
    if options is None:
        chosen = [""]
    elif options == ALL_OPTIONS:
        chosen = None
    else:
        chosen = [str(o) for o in _listed("options", options)]
    size = len(codes) * len(units) * len(periods_) * len(kinds) * (len(chosen) if chosen else 1)
    if size > MAX_FIGURES:
        raise FiguresQueryError("codes", "figures.query.too_large", size=size, limit=MAX_FIGURES)
    if size == 0:
        return []
    iv = IndicatorValue
    where = (iv.code.in_(codes) & iv.unit.in_(units) & iv.kind.in_(kinds)
             & Tuple(iv.frequency, iv.year, iv.index).in_(periods_))
    if chosen is not None:
        where &= iv.option.in_(chosen)
    # LIMIT one more than the bound: "all" options can multiply the rows past what was asked.
    rows = list(iv.select(iv.code, iv.unit, iv.frequency, iv.year, iv.index, iv.kind, iv.option, iv.value, iv.text)
                .where(where)
                .order_by(iv.code, iv.unit, iv.frequency, iv.year, iv.index, iv.kind, iv.option)
                .limit(MAX_FIGURES + 1).tuples())
    if len(rows) > MAX_FIGURES:
        raise FiguresQueryError("options", "figures.query.too_large", size=len(rows), limit=MAX_FIGURES)
    return [FigureRow(code, unit_id, frequency, year, index, kind, option,
                      text if value is None and text else value)
            for code, unit_id, frequency, year, index, kind, option, value, text in rows]
