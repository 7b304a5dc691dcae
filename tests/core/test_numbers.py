"""Numbers typed in Vietnamese and English, the ambiguous ones refused, and only what the value
columns store exactly (core.numbers)."""

from decimal import Decimal as D

import pytest

from core.numbers import NumberError, input_text, parse, parse_canonical


@pytest.mark.parametrize("text, lang, expected", [
    ("1.250,5", "vi", "1250.5"), ("1,250.5", "en", "1250.5"),
    # Unambiguous texts read the same in both languages.
    ("1,250.5", "vi", "1250.5"), ("1.250,5", "en", "1250.5"),
    ("1.234.567", "en", "1234567"), ("1,234,567", "vi", "1234567"),
    ("0,25", "en", "0.25"), ("0.25", "vi", "0.25"), ("1234.567", "vi", "1234.567"), ("0,250", "en", "0.25"),
    ("1 234 567,5", "vi", "1234567.5"), ("1\u00a0234.5", "en", "1234.5"), (" -12 ", "en", "-12"),
    ("\u22125", "vi", "-5"), ("+7", "en", "7"),
    # One dot and three digits is how Vietnamese writes thousands.
    ("1.250", "vi", "1250"), ("125.000", "vi", "125000"),
    ("1,5000000", "vi", "1.5"),  # trailing zeros are not decimals the column lacks
])
def test_a_number_is_read_the_way_its_language_writes_it(text, lang, expected):
    assert parse(text, lang) == D(expected)


@pytest.mark.parametrize("text, lang", [("1,250", "en"), ("1,250", "vi"), ("1.250", "en"), ("-12,500", "en"),
                                        ("999,500", "vi")])
def test_an_ambiguous_text_is_refused_naming_both_readings(text, lang):
    with pytest.raises(NumberError) as exc:
        parse(text, lang)
    assert exc.value.key == "numbers.error.ambiguous"
    digits = text.replace(",", "").replace(".", "")
    whole, fraction = text[:-4], text[-3:].rstrip("0")
    vi, en = exc.value.message("vi"), exc.value.message("en")
    assert digits in vi and f"{whole},{fraction}" in vi  # 1250 or 1,25
    assert digits in en and f"{whole}.{fraction}" in en  # 1250 or 1.25


def test_the_suggested_texts_of_an_ambiguous_number_are_read_back_as_meant():
    with pytest.raises(NumberError) as exc:
        parse("1,234", "en")
    params = exc.value.params
    assert parse(params["thousands"], "en") == D(1234) == parse(params["thousands"], "vi")
    assert parse(params["decimal_en"], "en") == D("1.234") == parse(params["decimal_vi"], "vi")


@pytest.mark.parametrize("text", ["abc", "1,2,3", "1e5", "12%", "--1", "1.2.3,4,5", "12 34", "1,", ".5", "1,25.5",
                                  "١٢", "²", "1_000", "1.250,5,5"])
def test_what_is_not_a_number_is_refused(text):
    for lang in ("vi", "en"):
        with pytest.raises(NumberError) as exc:
            parse(text, lang)
        assert exc.value.key == "forms.error.not_a_number"


def test_the_hint_of_a_refused_text_writes_numbers_the_language_way():
    with pytest.raises(NumberError) as exc:
        parse("abc", "en")
    assert "1,234.5" in exc.value.message("en") and "1.234,5" in exc.value.message("vi")


@pytest.mark.parametrize("value, key", [
    ("99999999999.999999", "numbers.error.not_exact"),  # SQLite stored it as 100000000000
    ("1234567890.123456", "numbers.error.not_exact"),  # 16 digits with decimals
    (D("99999999999.999999"), "numbers.error.not_exact"),
    (99999999999.99998, "numbers.error.not_exact"),  # a JSON / Excel number with 16 digits
    ("1000000000000000000", "forms.error.number_too_big"),  # 19 digits before the point
    ("1.2345678", "forms.error.too_many_decimals"),
    (float("nan"), "forms.error.number_too_big"),
])
def test_what_a_value_column_cannot_store_exactly_is_refused(value, key):
    with pytest.raises(NumberError) as exc:
        parse(value, "en")
    assert exc.value.key == key
    assert exc.value.message("vi") != exc.value.message("en")


@pytest.mark.parametrize("value", ["99999999999.9999", "999999999999999999", "-999999999999999999",
                                   "0.000001", "123456789.123456"])
def test_what_fits_is_kept_whole_without_exponent(value):
    number = parse(value, "en")
    assert number == D(value) and "E" not in str(number)


def test_numbers_given_as_numbers_are_exact():
    assert parse(25.5) == D("25.5") and parse(3) == D(3) and parse(D("1.50")) == D("1.5")
    assert str(parse(D("1E+3"))) == "1000"  # what SQLite receives is the number, not "1E+3"
    with pytest.raises(NumberError):
        parse(True)


def test_a_canonical_text_is_read_the_same_in_every_language():
    assert parse_canonical("1.234") == D("1.234")  # not 1234: the program wrote it, not a person
    assert parse_canonical("-1250") == D(-1250) and parse_canonical("") is None
    with pytest.raises(NumberError):
        parse_canonical("1.234,5")


@pytest.mark.parametrize("value", ["1250", "1.234", "1250.5", "1234567", "0.25", "-1.25", "12.5", "-999.5", "0"])
def test_an_input_cell_shows_a_text_that_reads_back_as_the_same_number(value):
    for lang in ("vi", "en"):
        assert parse(input_text(D(value), lang), lang) == D(value)
    assert input_text(D("1250.5"), "vi") == "1.250,5" and input_text(D("1250.5"), "en") == "1,250.5"
    assert input_text(None, "en") == ""
