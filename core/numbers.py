"""Numbers as people type them, read the way their language writes numbers, and only what the
value columns store exactly.

Vietnamese writes ``1.234.567,5`` (dot between thousands, comma before the decimals), English
``1,234,567.5``. Most texts say which way they are written whatever the language:

- both separators (``1.250,5``, ``1,250.5``): the last one is the decimal separator;
- one separator used twice or more (``1.250.000``, ``1,250,000``): thousands;
- one separator once, not followed by exactly three digits or after more than three digits
  (``1,25``, ``1.5``, ``1234.567``, ``0,250``): the decimal separator;
- spaces (also no-break spaces) may separate groups of three digits.

What is left is a single separator between one to three digits and exactly three digits
(``1,250``, ``12.500``): 1250 one way, 1.25 the other. A comma there is refused in both languages,
naming both readings (numbers copied from an English spreadsheet group thousands with commas;
Vietnamese puts decimals after a comma). In English a dot there is refused too (Vietnamese
groups thousands with dots). In Vietnamese a dot there separates thousands (``1.250`` is 1250),
as every Vietnamese document writes it.

The value columns are ``DECIMAL(24, 6)``: 18 digits before the point, 6 after. SQLite keeps such
a column as a 64-bit integer when the value is whole and as a double otherwise, which holds 15
significant digits exactly (it stored 99999999999.999999 as 100000000000). So a number with
decimals may have at most 15 digits in all, on every database, so that the answer does not
depend on which one the instance runs; whole numbers up to 18 digits are stored exactly by both.
What comes back from ``parse`` is normalised (no exponent, no trailing zeros) so that the text
SQLite receives is the number itself.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from core.errors import BaocaoError

MAX_DECIMALS = 6  # decimal places of a value column
NUMBER_LIMIT = Decimal(10) ** 18  # 24 digits of which 6 decimals: 18 before the point
MAX_EXACT_DIGITS = 15  # significant digits a double keeps exactly (a fraction on SQLite)

_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2212": "-"})
_SHAPE = re.compile(r"([+-]?)([0-9][0-9., ]*)")
_GROUP_HEAD = re.compile(r"[1-9][0-9]{0,2}")  # what may stand before a thousands separator alone


class NumberError(BaocaoError):
    """A text that is not a number one can store (the cell is named by whoever catches it)."""

    key = "forms.error.not_a_number"


def _short(value) -> str:
    return str(value)[:40]


def _digits_grouped(text: str, separator: str | None) -> str:
    """The digits of an integer part whose groups of three are separated by ``separator`` or
    spaces (one kind per number); raises ValueError when the groups are not groups of three."""
    marks = {c for c in text if not c.isdigit()}
    if not marks:
        return text
    if len(marks) != 1 or not marks <= {" ", separator}:
        raise ValueError(text)
    head, *rest = text.split(marks.pop())
    if not (1 <= len(head) <= 3) or any(len(group) != 3 for group in rest):
        raise ValueError(text)
    return head + "".join(rest)


def _read(text: str, lang: str, shown: str) -> Decimal:
    match = _SHAPE.fullmatch(text)
    if not match or not text[-1].isdigit():
        raise NumberError(value=shown)
    sign, body = match.groups()
    dots, commas = body.count("."), body.count(",")
    try:
        if dots and commas:
            decimal_mark = "." if body.rfind(".") > body.rfind(",") else ","
            thousands = "," if decimal_mark == "." else "."
            whole, _, fraction = body.rpartition(decimal_mark)
            if not fraction.isdigit():
                raise ValueError(body)
            digits = _digits_grouped(whole, thousands) + "." + fraction
        elif dots + commas >= 2:
            digits = _digits_grouped(body, "." if dots else ",")
        elif dots + commas == 1:
            mark = "." if dots else ","
            whole, _, fraction = body.partition(mark)
            if not fraction.isdigit():
                raise ValueError(body)
            if len(fraction) == 3 and _GROUP_HEAD.fullmatch(whole):
                if lang == "vi" and mark == ".":
                    digits = whole + fraction
                else:
                    raise _ambiguous(shown, sign + whole + fraction, Decimal(f"{sign}{whole}.{fraction}"), mark)
            else:
                digits = _digits_grouped(whole, None) + "." + fraction
        else:
            digits = _digits_grouped(body, None)
    except ValueError:
        raise NumberError(value=shown) from None
    try:
        return Decimal(sign + digits)
    except InvalidOperation:
        raise NumberError(value=shown) from None


class AmbiguousNumber(NumberError):
    """A text that reads as two numbers: the message names both, the fraction written the way
    the message's language writes it (``1,25`` / ``1.25``)."""

    key = "numbers.error.ambiguous"

    def message(self, lang: str = "vi") -> str:
        from core.i18n import core_catalog

        params = {k: v for k, v in self.params.items() if not k.startswith("decimal_")}
        decimal = self.params.get(f"decimal_{lang}", self.params["decimal_vi"])
        return core_catalog().gettext(lang, self.key, decimal=decimal, **params)


def _ambiguous(shown: str, thousands: str, fraction: Decimal, mark: str) -> NumberError:
    return AmbiguousNumber(value=shown, sep=mark, thousands=thousands,
                           decimal_vi=input_text(fraction, "vi"), decimal_en=input_text(fraction, "en"))


def storable(number: Decimal, shown: str) -> Decimal:
    """``number`` if a value column stores it exactly on either database, normalised; otherwise
    NumberError naming ``shown`` (what the person gave)."""
    if not number.is_finite() or abs(number) >= NUMBER_LIMIT:
        raise NumberError("forms.error.number_too_big", value=shown)
    if number == number.to_integral_value():
        return number.quantize(Decimal(1))  # exponent 0: "1000", never "1E+3"
    number = number.normalize()
    sign, digits, exponent = number.as_tuple()
    if -exponent > MAX_DECIMALS:
        raise NumberError("forms.error.too_many_decimals", value=shown, decimals=MAX_DECIMALS)
    if len(digits) > MAX_EXACT_DIGITS:
        raise NumberError("numbers.error.not_exact", value=shown, digits=MAX_EXACT_DIGITS)
    return number


def parse(value, lang: str = "vi") -> Decimal | None:
    """What a person gave for a cell: a text written the way ``lang`` writes numbers (see the
    module), or a number (a JSON number, an Excel numeric cell: exact as it is); "" → None.
    Raises NumberError with a message in both languages."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise NumberError(value=_short(value))
    if isinstance(value, (int, Decimal)):
        return storable(Decimal(value), _short(value))
    if isinstance(value, float):
        # The shortest text that reads back as this double: what Excel and JSON showed.
        if value != value or value in (float("inf"), float("-inf")):
            raise NumberError("forms.error.number_too_big", value=_short(value))
        return storable(Decimal(repr(value)), _short(value))
    return _parse_text(str(value), lang)


# An autosave posts every cell of the grid with its base; the same few hundred texts come back
# request after request. Reading them is pure (text → Decimal), so the answers are kept; a text
# that is refused raises each time (exceptions are not cached).
@lru_cache(maxsize=16384)
def _parse_text(value: str, lang: str) -> Decimal | None:
    text = value.translate(_SPACES).strip()
    if text == "":
        return None
    shown = _short(text)
    return storable(_read(text, lang, shown), shown)


def parse_canonical(value) -> Decimal | None:
    """A number written by the program itself (``canonical``: ``-1234.5``, no grouping): the
    bases of the grid and of the Excel template, a conflict's saved value. Not for what people
    type: ``1.234`` here is one point two three four in every language."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return parse(value)
    return _parse_canonical_text(str(value).strip())


@lru_cache(maxsize=16384)
def _parse_canonical_text(text: str) -> Decimal | None:
    if not re.fullmatch(r"[+-]?[0-9]+(\.[0-9]+)?", text):
        raise NumberError(value=_short(text))
    return storable(Decimal(text), _short(text))


def input_text(value, lang: str = "vi") -> str:
    """A stored number as an input cell shows it in ``lang`` (``1.234,5`` / ``1,234.5``), written
    so that ``parse`` reads it back as the same number: where the grouped text would be ambiguous
    a whole number is shown without grouping (``1250``) and a fraction with one more zero
    (``1,2340``)."""
    from core.i18n import format_number

    if value is None or value == "":
        return ""
    number = Decimal(value) if not isinstance(value, float) else Decimal(repr(value))
    number = number.quantize(Decimal(1)) if number == number.to_integral_value() else number.normalize()
    text = format_number(number, lang)
    sign = "-" if text.startswith("-") else ""
    body = text.lstrip("-")
    marks = [c for c in body if c in ".,"]
    if len(marks) == 1:
        whole, _, fraction = body.partition(marks[0])
        if len(fraction) == 3 and _GROUP_HEAD.fullmatch(whole) and not (lang == "vi" and marks[0] == "."):
            body = whole + fraction if number == number.to_integral_value() else body + "0"
    return sign + body
