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

``put_values`` validates everything first and writes in one transaction: a batch is taken whole or
not at all, and writing the same batch twice changes nothing (the second call reports 0 changed).
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
from core.db import CoreModel, transaction
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


def _check(figure: Figure, indicator: Indicator | None, known_units: set[int]) -> tuple[str, str, dict] | None:
    """(field, message key, its parameters) of the first problem of one figure, or None; a value
    the column cannot hold exactly gives core.numbers' own message (the grid's)."""
    if indicator is None:
        return "code", "values.error.unknown_indicator", {}
    if figure.unit_id not in known_units:
        return "unit", "values.error.unknown_unit", {}
    if figure.kind not in VALUE_KINDS:
        return "kind", "values.error.kind", {}
    try:
        periods.window(figure.frequency, figure.year, figure.index)
    except Exception:  # noqa: BLE001 — any period error is the period's fault
        return "period", "values.error.period", {}
    if indicator.value_type != "text":
        try:
            _number(figure.value)
        except NumberError as exc:
            # Text that is no number at all: this API's own words (core.numbers' advice is about typing).
            if exc.key == NumberError.key:
                return "value", "values.error.number", {}
            return "value", exc.key, exc.params
    return None


def put_values(figures: Iterable[Figure], *, source: str, actor=None) -> int:
    """Write a batch of figures (all or nothing); returns how many rows changed.

    A refused batch raises ValidationError: ``errors`` maps "<number>.<field>" (1-based) to a
    message key; the parameters of the first refused figure's message (the value, the digits
    allowed) are the exception's ``params``."""
    figures = list(figures)
    codes = {f.code for f in figures}
    indicators = {i.code: i for i in Indicator.select().where(Indicator.code.in_(codes) & Indicator.is_current)}
    unit_ids = {f.unit_id for f in figures}
    known_units = {u.id for u in Unit.select(Unit.id).where(Unit.id.in_(unit_ids))}
    errors, params = {}, {}
    for number, figure in enumerate(figures, start=1):
        problem = _check(figure, indicators.get(figure.code), known_units)
        if problem:
            field, key, key_params = problem
            errors[f"{number}.{field}"] = key
            params = params or key_params
    if errors:
        raise ValidationError(errors, **params)
    changed = 0
    with transaction():
        for figure in figures:
            indicator = indicators[figure.code]
            is_text = indicator.value_type == "text"
            value = None if is_text else _number(figure.value)
            text = (str(figure.value) if figure.value not in (None, "") else None) if is_text else None
            key = dict(code=figure.code, unit=figure.unit_id, frequency=figure.frequency, year=figure.year,
                       index=figure.index, kind=figure.kind, option=figure.option)
            row = IndicatorValue.get_or_none(**key)
            if row is None:
                IndicatorValue.create(indicator=indicator, value=value, text=text, source=source, **key)
                changed += 1
            elif row.value != value or row.text != text:  # Decimal equality: 10.500000 == 10.5
                IndicatorValue.update(indicator=indicator, value=value, text=text, source=source,
                                      updated_at=utcnow()).where(IndicatorValue.id == row.id).execute()
                changed += 1
        if changed:
            # Screens keep each unit's figures between requests (core.reporting.data): tell them.
            generations.bump(*(generations.figures_key(f.unit_id) for f in figures))
            audit.record("indicator.values.put", actor=actor, object_type="indicator_value",
                         details={"source": source, "figures": len(figures), "changed": changed})
    return changed


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
