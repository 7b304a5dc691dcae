"""The formula language of forms: reading, types, printing, evaluation with empty cells, limits, safety."""

from __future__ import annotations

import json
import os
import re
import sys
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, event, given, settings, strategies as st

from core.regimes.expressions import (FUNCTIONS, MAX_DEPTH, MAX_LENGTH, MAX_NODES, RESERVED, Binary, Bool, Call,
                              ExpressionError, Num, Ref, Unary, compile, evaluate, infer, parse, references,
                              rename, unparse, valid_name)

D = Decimal
MAXEX = int(os.environ.get("EXPR_EXAMPLES", "200"))  # raise it locally for a longer hunt
ROOT = Path(__file__).resolve().parents[2]


def resolver(**values):
    """Cells by reference: ``a=1`` for ``a``, ``a__b=2`` for ``a.b``; anything else is empty."""
    cells = {}
    for key, value in values.items():
        name, _, column = key.partition("__")
        cells[Ref(name, column or None)] = None if value is None else D(str(value))
    return cells.get


def ev(text: str, **values):
    return evaluate(parse(text), resolver(**values))


def error(text: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        infer(parse(text))
    return caught.value


# -- reading ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, tree", [
    ("12", Num(D(12))),
    ("12.5", Num(D("12.5"))),
    ("007.250", Num(D("7.25"))),
    ("true", Bool(True)), ("FALSE", Bool(False)), ("True", Bool(True)),
    ("a", Ref("a")), ("row_1.col2", Ref("row_1", "col2")), ("_x", Ref("_x")), ("Ab", Ref("Ab")),
    ("-5", Unary("-", Num(D(5)))),
    ("+a", Unary("+", Ref("a"))),
    ("1 + 2 * 3", Binary("+", Num(D(1)), Binary("*", Num(D(2)), Num(D(3))))),
    ("(1 + 2) * 3", Binary("*", Binary("+", Num(D(1)), Num(D(2))), Num(D(3)))),
    ("a - b - c", Binary("-", Binary("-", Ref("a"), Ref("b")), Ref("c"))),
    ("a / b * c", Binary("*", Binary("/", Ref("a"), Ref("b")), Ref("c"))),
    ("-a * b", Binary("*", Unary("-", Ref("a")), Ref("b"))),
    ("a != b", Binary("<>", Ref("a"), Ref("b"))),
    ("a<>b", Binary("<>", Ref("a"), Ref("b"))),
    ("a <= b + 1", Binary("<=", Ref("a"), Binary("+", Ref("b"), Num(D(1))))),
    ("not a = b", Unary("not", Binary("=", Ref("a"), Ref("b")))),
    ("a > 1 or b > 1 and c > 1",
     Binary("or", Binary(">", Ref("a"), Num(D(1))),
            Binary("and", Binary(">", Ref("b"), Num(D(1))), Binary(">", Ref("c"), Num(D(1)))))),
    ("NOT true AND False Or true",
     Binary("or", Binary("and", Unary("not", Bool(True)), Bool(False)), Bool(True))),
    ("SUM(a, b.c, 1)", Call("sum", (Ref("a"), Ref("b", "c"), Num(D(1))))),
    ("Round(a, 2)", Call("round", (Ref("a"), Num(D(2))))),
    ("if(a > 0, a, 0)", Call("if", (Binary(">", Ref("a"), Num(D(0))), Ref("a"), Num(D(0))))),
    ("present(a.b)", Call("present", (Ref("a", "b"),))),
    (" \t1\n+\u00a02 ", Binary("+", Num(D(1)), Num(D(2)))),
])
def test_parse(text, tree):
    assert parse(text) == tree
    assert parse(unparse(tree)) == tree


@pytest.mark.parametrize("text, canonical", [
    ("1+2*3", "1 + 2 * 3"),
    ("(1+2)*3", "(1 + 2) * 3"),
    ("a-(b-c)", "a - (b - c)"),
    ("(a-b)-c", "a - b - c"),
    ("-(a+b)", "-(a + b)"),
    ("--a", "--a"),
    ("NOT (A AND B)", "not (A and B)"),
    ("not not x > 1", "not not x > 1"),
    ("(a = b) = true", "(a = b) = true"),
    ("(not a > 1) = (b < 2)", "(not a > 1) = (b < 2)"),
    ("a and (b or c)", "a and (b or c)"),
    ("(a and b) and c", "a and b and c"),
    ("a and (b and c)", "a and (b and c)"),
    ("10.0", "10"), ("0.50", "0.5"), ("000", "0"), ("1" + "0" * 29, "1" + "0" * 29),
    ("0." + "0" * 28 + "1", "0." + "0" * 28 + "1"),
    ("MAX(a,b)", "max(a, b)"),
    ("x != 1", "x <> 1"),
])
def test_unparse_is_canonical(text, canonical):
    assert unparse(parse(text)) == canonical
    assert parse(canonical) == parse(text)


def test_numbers_print_without_exponent():
    assert unparse(Num(D("1E+1"))) == "10"
    assert unparse(Num(D("5E-3"))) == "0.005"
    assert unparse(Num(D("1.2300E+2"))) == "123"


@pytest.mark.parametrize("text, key, position", [
    ("", "expr.error.empty", None),
    ("   ", "expr.error.empty", None),
    ("1 +", "expr.error.end", 3),
    ("(1 + 2", "expr.error.closing", 0),
    ("sum(a, (b)", "expr.error.closing", 3),
    ("1 + 2)", "expr.error.unopened", 5),
    ("1 2", "expr.error.unexpected", 2),
    ("a b", "expr.error.unexpected", 2),
    ("1 # 2", "expr.error.character", 2),
    ("1 == 2", "expr.error.unexpected", 3),
    ("a < b < c", "expr.error.chained", 6),
    ("a = b <> c", "expr.error.chained", 6),
    ("foo(1)", "expr.error.unknown_function", 0),
    ("1 + sqrt(4)", "expr.error.unknown_function", 4),
    ("abs(1, 2)", "expr.error.arity", 0),
    ("x + IF(a > 1, 2)", "expr.error.arity", 4),
    ("sum()", "expr.error.arity_min", 0),
    ("coalesce(a)", "expr.error.arity", 0),
    ("round(a, 11)", "expr.error.round_digits", 9),
    ("round(a, b)", "expr.error.round_digits", 9),
    ("round(a, 1.5)", "expr.error.round_digits", 9),
    ("round(a, -1)", "expr.error.round_digits", 9),
    ("present(1)", "expr.error.present_ref", 8),
    ("present(a + 1)", "expr.error.present_ref", 10),
    (".5", "expr.error.leading_dot", 0),
    ("1 + 12.", "expr.error.bad_number", 4),
    ("1.2.3", "expr.error.character", 3),
    ("a.", "expr.error.dot", 1),
    ("a.1", "expr.error.dot", 1),
    ("a.b.c", "expr.error.character", 3),
    ("sum.x", "expr.error.reserved", 0),
    ("x.And", "expr.error.reserved", 2),
    ("sum + 1", "expr.error.reserved", 0),
    ("IF", "expr.error.reserved", 0),
    ("1,5", "expr.error.comma", 1),
    ("sum(a,)", "expr.error.unexpected", 6),
    ("1" * 31, "expr.error.number_too_long", 0),
    ("1" * 20 + "." + "1" * 11, "expr.error.number_too_long", 0),
    ("a ² 2", "expr.error.character", 2),
    ("٣", "expr.error.character", 0),
    # types
    ("true + 1", "expr.error.number_expected", 0),
    ("1 + (a > 1)", "expr.error.number_expected", 7),
    ("if(1, 2, 3)", "expr.error.bool_expected", 3),
    ("if(a > 1, 2, true)", "expr.error.same_type", 0),
    ("coalesce(a, true)", "expr.error.same_type", 0),
    ("sum(x > 1)", "expr.error.number_expected", 6),
    ("not 3", "expr.error.bool_expected", 4),
    ("a > 0 and 1", "expr.error.bool_expected", 10),
    ("a and true", "expr.error.bool_expected", 0),
    ("true = 1", "expr.error.compare_types", 5),
    ("true < false", "expr.error.number_expected", 0),
    ("-true", "expr.error.number_expected", 1),
    ("abs(a > 0)", "expr.error.number_expected", 6),
])
def test_errors_name_the_problem_and_its_position(text, key, position):
    err = error(text)
    assert (err.key, err.position) == (key, position)
    assert err.params["position"] == position
    assert err.params["column"] == (position + 1 if position is not None else "?")
    vi, en = err.message("vi"), err.message("en")
    assert vi != en and "{" not in vi and "{" not in en and key not in vi
    if position is not None:
        assert f"ký tự {position + 1}" in vi and f"character {position + 1}" in en


def test_limits():
    assert error("1" + " " * MAX_LENGTH).key == "expr.error.too_long"
    parse("a" + " " * (MAX_LENGTH - 1))  # exactly at the limit is fine
    deep = "(" * MAX_DEPTH + "1" + ")" * MAX_DEPTH
    assert parse(deep) == Num(D(1))
    err = error("(" * (MAX_DEPTH + 1) + "1" + ")" * (MAX_DEPTH + 1))
    assert (err.key, err.position) == ("expr.error.too_deep", MAX_DEPTH)
    assert error("-" * 41 + "1").key == "expr.error.too_deep"
    assert error("not " * 41 + "true").key == "expr.error.too_deep"
    assert error("abs(" * 41 + "1" + ")" * 41).key == "expr.error.too_deep"
    # Far deeper than Python's recursion limit: still a clean error.
    assert error("(" * 1900 + "1" + ")" * 99).key == "expr.error.too_deep"
    # A long flat sum is not deep: 250 terms are fine, 251 exceed the node limit.
    assert infer(parse(" + ".join(["a"] * 250))) == "number"
    assert error(" + ".join(["a"] * 251)).key == "expr.error.too_big"
    with pytest.raises(ExpressionError) as caught:
        infer(Call("sum", tuple(Ref(f"r{i}") for i in range(MAX_NODES))))
    assert caught.value.key == "expr.error.too_big"


def test_the_deepest_trees_stay_far_from_the_recursion_limit():
    # The deepest texts within the limits: a flat chain of 250 terms, under 40 levels of grouping.
    chain = " - ".join(["a"] * 200)
    text = "abs(" * 13 + "-(" * 13 + chain + ")" * 13 + ")" * 13  # 39 levels: a minus and its parenthesis are two
    tree = parse(text)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(limit // 2 + 100)  # leave the other half to whoever calls us
    try:
        assert infer(tree) == "number" and parse(unparse(tree)) == tree
        assert evaluate(tree, resolver(a=1)) == D(198) and len(references(tree)) == 1
        assert rename(tree, {"a": "b"}) != tree and references(tree) == [Ref("a")]
    finally:
        sys.setrecursionlimit(limit)
    # A tree built by hand is held to the same depth.
    deep = Num(D(1))
    for _ in range(400):
        deep = Unary("-", deep)
    with pytest.raises(ExpressionError) as caught:
        infer(deep)
    assert caught.value.key == "expr.error.too_deep"


@pytest.mark.parametrize("text", [
    "__import__('os')", "__import__(\"os\")", "().__class__", "open(\"x\")", "open('x')", "1; 2", "a[0]",
    "lambda: 0", "lambda x: x", "a.__class__.__bases__", "exec('1')", "eval(a)", "x if y else z",
    "a ** 2", "a // 2", "a % 2", "[1]", "{1}", "`a`", "1 # comment", "a\\b", "f'x'", "a @ b", "1e5", "0x1F",
])
def test_python_never_gets_through(text):
    with pytest.raises(ExpressionError):
        infer(parse(text))


# -- evaluation ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, values, expected", [
    ("1 + 2 * 3", {}, D(7)),
    ("(1 + 2) * 3", {}, D(9)),
    ("10 / 4", {}, D("2.5")),
    ("2 - 3 - 4", {}, D(-5)),
    ("-2 * -3", {}, D(6)),
    ("0.1 + 0.2 = 0.3", {}, True),
    ("1 / 3 * 3", {}, D("0.9999999999999999999999999999")),
    ("a + b.c", {"a": 1, "b__c": "2.5"}, D("3.5")),
    ("a + b", {"a": 1}, None),
    ("a * 0", {}, None),
    ("a / 0", {"a": 5}, None),
    ("a / b", {"a": 5, "b": "0.00"}, None),
    ("0 / 0", {}, None),
    ("a > 1", {}, None),
    ("a = a", {}, None),
    ("a <> 2", {"a": 2}, False),
    ("a >= 2", {"a": 2}, True),
    ("a != 3", {"a": 2}, True),
    ("-a", {}, None),
    ("abs(a)", {"a": -3}, D(3)),
    ("abs(a)", {}, None),
    ("sum(a, b, c)", {"a": 1, "c": 2}, D(3)),
    ("sum(a, b)", {}, None),
    ("min(a, b, c)", {"a": 5, "c": -2}, D(-2)),
    ("max(a, b, 4)", {"a": 5}, D(5)),
    ("avg(a, b, c)", {"a": 1, "b": 2}, D("1.5")),
    ("avg(a, b)", {}, None),
    ("sum(a)", {"a": 7}, D(7)),
    ("round(a, 0)", {"a": "2.5"}, D(3)),
    ("round(a, 0)", {"a": "-2.5"}, D(-3)),
    ("round(a, 2)", {"a": "2.345"}, D("2.35")),
    ("round(a, 2)", {"a": "0.125"}, D("0.13")),
    ("round(a, 1)", {}, None),
    ("coalesce(a, 0)", {}, D(0)),
    ("coalesce(a, 0)", {"a": 4}, D(4)),
    ("coalesce(a, b)", {}, None),
    ("coalesce(a > 1, true)", {}, True),
    ("present(a)", {}, False),
    ("present(a)", {"a": 0}, True),
    ("present(a.b)", {"a__b": 0}, True),
    ("if(a > 0, a, -a)", {"a": -4}, D(4)),
    ("if(a > 0, a, -a)", {}, None),
    ("if(true, 1, a / 0)", {}, D(1)),
    ("if(false, 1, 2)", {}, D(2)),
    ("true = (1 < 2)", {}, True),
    ("true <> (1 < 2)", {}, False),
    # three-valued logic: False wins for and, True wins for or, otherwise empty spreads
    ("a > 0 and false", {}, False),
    ("false and a > 0", {}, False),
    ("a > 0 and true", {}, None),
    ("true and true", {}, True),
    ("a > 0 or true", {}, True),
    ("true or a > 0", {}, True),
    ("a > 0 or false", {}, None),
    ("false or false", {}, False),
    ("not a > 0", {}, None),
    ("not a > 0", {"a": 1}, False),
    ("NOT false", {}, True),
])
def test_evaluate(text, values, expected):
    result = ev(text, **values)
    assert result == expected and type(result) is type(expected)


def test_values_are_decimals_never_floats():
    assert isinstance(ev("1.1 + 2.2"), Decimal) and ev("1.1 + 2.2") == D("3.3")


def test_overflow_is_an_expression_error():
    huge = D("9E+999998")
    for text in ("a * a", "a * 100 + a", "round(a, 2)", "sum(a, a, a, a, a, a, a, a, a, a, a, a)"):
        with pytest.raises(ExpressionError) as caught:
            ev(text, a=huge)
        assert caught.value.key == "expr.error.overflow" and caught.value.position is None
        assert "{" not in caught.value.message("vi")


def test_compile_builds_once_and_checks_types():
    fn = compile(parse("a + 1"))
    assert fn(resolver(a=1)) == 2 and fn(resolver()) is None
    with pytest.raises(ExpressionError):
        compile(parse("a + true"))


def test_the_thread_decimal_context_does_not_matter():
    import decimal

    with decimal.localcontext() as ctx:
        ctx.prec = 3
        ctx.traps[decimal.Inexact] = True
        assert ev("1 / 3") == D("0.3333333333333333333333333333")


# -- references and renaming --------------------------------------------------------------------------------

def test_references_in_order_without_duplicates():
    tree = parse("sum(b, a.x) + if(present(a), a, b) * c.x - a.x")
    assert references(tree) == [Ref("b"), Ref("a", "x"), Ref("a"), Ref("c", "x")]
    assert references(parse("1 + 2")) == []


def test_rename():
    tree = parse("a + a.x + b.a + present(c)")
    renamed = rename(tree, {"a": "z", "x": "y", "c": "d"})
    assert unparse(renamed) == "z + z.y + b.z + present(d)"
    assert rename(tree, {}) == tree
    assert unparse(rename(parse("round(a, 2)"), {"a": "b"})) == "round(b, 2)"
    for bad in ("sum", "TRUE", "a b", "1a", "dân_số", ""):
        with pytest.raises(ExpressionError) as caught:
            rename(tree, {"a": bad})
        assert caught.value.key == "expr.error.bad_name" and caught.value.params["name"] == bad


def test_nodes_compare_by_value_whatever_their_position():
    assert parse("a + 1") == parse(" a+1") and hash(parse("a + 1")) == hash(parse("a   + 1"))
    assert len({parse("x"), parse("  x"), Ref("x")}) == 1


def test_valid_name():
    assert valid_name("row_1") and valid_name("_a") and valid_name("lambda")
    assert not any(valid_name(n) for n in ("", "1a", "a-b", "a.b", "Sum", "AND", "if", "đ", "a b"))


# -- messages ------------------------------------------------------------------------------------------

def test_every_error_key_used_exists_in_both_languages_with_its_placeholders():
    source = (ROOT / "core" / "regimes" / "expressions.py").read_text(encoding="utf-8")
    used = set(re.findall(r'"(expr\.error\.[a-z_]+)"', source))
    assert len(used) >= 20
    catalogues = {lang: json.loads((ROOT / "core" / "locale" / f"{lang}.expressions.json").read_text("utf-8"))
                  for lang in ("vi", "en")}
    for lang, messages in catalogues.items():
        assert sorted(used - set(messages)) == [], lang
        assert sorted(set(messages) - used) == [], lang  # no stale message


# -- properties ----------------------------------------------------------------------------------------------

PLACEHOLDER = re.compile(r"\{[a-z_]+\}")  # a parameter the message failed to fill
LANGUAGE_CHARS = "0123456789.abcxyzAXZ_ ()+-*/=<>!,\t\n"
words = st.sampled_from(["and", "or", "not", "true", "false", "sum(", "min(", "round(", "if(", "present(",
                         "coalesce(", "avg(", "ABS(", "Max(", "a.b", "x", "y", "1", "2.5", "0", ".", ",", "(", ")",
                         "(", ")", "<>", "!=", "=", "<", ">=", "+", "-", "*", "/", "-", "+"])
# Mostly the language's own words and characters (so that many texts parse), some random unicode.
pieces = st.one_of(words, words, words, st.text(alphabet=LANGUAGE_CHARS, max_size=4), st.text(max_size=2))


@settings(max_examples=MAXEX*3, deadline=None)
@given(st.one_of(st.lists(words, max_size=14), st.lists(pieces, max_size=14)).map(" ".join))
def test_any_text_parses_or_fails_cleanly(text):
    try:
        tree = parse(text)
    except ExpressionError as err:
        event(err.key)
        assert err.position is None or 0 <= err.position <= len(text)
        assert not PLACEHOLDER.search(err.message("vi")) and not PLACEHOLDER.search(err.message("en"))
        return
    event("parsed")
    assert parse(unparse(tree)) == tree
    try:
        infer(tree)
    except ExpressionError as err:
        assert err.key in {"expr.error.number_expected", "expr.error.bool_expected",
                           "expr.error.compare_types", "expr.error.same_type"}


names = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,5}\Z").filter(lambda n: n.lower() not in RESERVED)
refs = st.builds(Ref, names, st.one_of(st.none(), names))
literals = st.decimals(min_value=0, max_value=D("1E15"), places=4, allow_nan=False, allow_infinity=False).map(Num)
leaves = st.one_of(literals, st.booleans().map(Bool), refs)
ANY_FUNCTIONS = ["sum", "min", "max", "avg", "abs", "if", "coalesce"]


def _any_trees(children):
    def call(name):
        least, most = FUNCTIONS[name]
        return st.lists(children, min_size=least, max_size=most or 4).map(lambda args: Call(name, tuple(args)))

    return st.one_of(
        st.builds(Unary, st.sampled_from(["-", "+", "not"]), children),
        st.builds(Binary, st.sampled_from(["+", "-", "*", "/", "=", "<>", "<", "<=", ">", ">=", "and", "or"]),
                  children, children),
        *[call(name) for name in ANY_FUNCTIONS],
        st.builds(lambda x, n: Call("round", (x, Num(D(n)))), children, st.integers(0, 10)),
        refs.map(lambda r: Call("present", (r,))),
    )


any_trees = st.recursive(leaves, _any_trees, max_leaves=25)


def nesting(node) -> int:
    """Parentheses, calls and prefix operators the printed text nests (what MAX_DEPTH counts), at most."""
    kids = [nesting(c) for c in (node.args if isinstance(node, Call) else
                                 (node.operand,) if isinstance(node, Unary) else
                                 (node.left, node.right) if isinstance(node, Binary) else ())]
    return (0 if isinstance(node, (Num, Bool, Ref)) else 2) + max(kids, default=0)


@settings(max_examples=MAXEX, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_trees)
def test_printing_then_reading_gives_the_same_tree(tree):
    assume(nesting(tree) <= MAX_DEPTH)
    assert parse(unparse(tree)) == tree


@lru_cache(maxsize=None)
def typed(kind: str, depth: int):
    """Well-typed trees of ``kind`` ("number" or "bool") at most ``depth`` levels deep."""
    if kind == "number":
        base = st.one_of(literals, refs)
    else:
        base = st.one_of(st.booleans().map(Bool), refs.map(lambda r: Call("present", (r,))))
    if depth == 0:
        return base
    num, cond = typed("number", depth - 1), typed("bool", depth - 1)
    if kind == "number":
        options = [
            st.builds(Unary, st.sampled_from(["-", "+"]), num),
            st.builds(Binary, st.sampled_from(["+", "-", "*", "/"]), num, num),
            *[st.lists(num, min_size=1, max_size=4).map(lambda a, n=n: Call(n, tuple(a)))
              for n in ("sum", "min", "max", "avg")],
            num.map(lambda x: Call("abs", (x,))),
            st.builds(lambda x, n: Call("round", (x, Num(D(n)))), num, st.integers(0, 10)),
            st.builds(lambda c, a, b: Call("if", (c, a, b)), cond, num, num),
            st.builds(lambda a, b: Call("coalesce", (a, b)), num, num),
        ]
    else:
        options = [
            st.builds(Unary, st.just("not"), cond),
            st.builds(Binary, st.sampled_from(["and", "or"]), cond, cond),
            st.builds(Binary, st.sampled_from(["=", "<>", "<", "<=", ">", ">="]), num, num),
            st.builds(Binary, st.sampled_from(["=", "<>"]), cond, cond),
            st.builds(lambda c, a, b: Call("if", (c, a, b)), cond, cond, cond),
            st.builds(lambda a, b: Call("coalesce", (a, b)), cond, cond),
        ]
    return st.one_of(base, *options)


cell_values = st.one_of(
    st.none(), st.just(D(0)), st.just(D("-0")), st.just(D("9.999999999999999999999999999E+999999")),
    st.just(D("-1E+999990")), st.just(D("1E-999999")), st.just(D("1E-1000020")),
    st.decimals(allow_nan=False, allow_infinity=False),
)


@settings(max_examples=MAXEX, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["number", "bool"]).flatmap(lambda kind: st.tuples(st.just(kind), typed(kind, 3))),
       st.data())
def test_well_typed_trees_evaluate_to_their_type_or_overflow(kind_tree, data):
    kind, tree = kind_tree
    assert infer(tree) == kind
    cells = {ref: data.draw(cell_values) for ref in references(tree)}
    resolve = cells.get
    try:
        result = evaluate(tree, resolve)
    except ExpressionError as err:
        assert err.key == "expr.error.overflow"
        event("overflow")
        return
    event(type(result).__name__)
    assert result is None or isinstance(result, Decimal if kind == "number" else bool)
    # Freshly built closures (past compile's cache) agree with evaluate.
    assert compile.__wrapped__(tree)(resolve) == result
