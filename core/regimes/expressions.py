"""The formula language of forms: computed rows and columns, validation rules.

Form designers (civil servants) write these formulas, so the text never reaches
Python's eval, exec or ast: a tokenizer and a recursive-descent parser build a
small tree of frozen dataclasses, ``infer`` checks that numbers and true/false
values are not mixed, and ``compile`` turns the tree into closures once so that
a form can re-evaluate hundreds of formulas on every keystroke.

Values are ``Decimal`` (never float) or ``bool``; ``None`` is an empty cell and
spreads through arithmetic and comparisons (three-valued logic for and/or/not).
A reference is ``NAME`` or ``NAME.NAME``; what it means (a row key, a row and a
column) is the caller's business through the resolver it passes in.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache, reduce
from typing import Callable, Union

from core.errors import BaocaoError

MAX_LENGTH = 2000
MAX_DEPTH = 40
MAX_NODES = 500
MAX_DIGITS = 30
MAX_ROUND_DIGITS = 10

KEYWORDS = frozenset({"and", "or", "not", "true", "false"})
# name → (fewest arguments, most arguments or None for any number)
FUNCTIONS = {
    "sum": (1, None), "min": (1, None), "max": (1, None), "avg": (1, None),
    "abs": (1, 1), "round": (2, 2), "if": (3, 3), "coalesce": (2, 2), "present": (1, 1),
}
RESERVED = KEYWORDS | frozenset(FUNCTIONS)

COMPARISONS = ("=", "<>", "<", "<=", ">", ">=")
ARITHMETIC = ("+", "-", "*", "/")
LOGIC = ("and", "or")
NUMBER, BOOL = "number", "bool"

# Evaluation happens in a context of its own, whatever the thread's context is.
_CONTEXT = decimal.Context(prec=28, rounding=decimal.ROUND_HALF_EVEN,
                           traps=[decimal.Overflow, decimal.InvalidOperation, decimal.DivisionByZero])


class ExpressionError(BaocaoError):
    """A formula that cannot be read, is of the wrong type, or overflows when evaluated.

    ``position`` is the 0-based character offset the message points at, or None;
    the message shows it 1-based as ``column``."""

    key = "expr.error.unexpected"

    def __init__(self, key: str | None = None, /, position: int | None = None, **params):
        column = position + 1 if position is not None else "?"
        super().__init__(key, position=position, column=column, **params)
        self.position = position


# -- the tree ---------------------------------------------------------------------------------------
# ``pos`` is where the node was read (for messages); it takes no part in equality or hashing.
# Equality and hashing are by value but never recursive: a long flat sum is a tree some 250
# levels deep, and the dataclass methods would nest Python calls that deep.

class _Node:
    __slots__ = ()

    def _scalars(self) -> tuple:
        raise NotImplementedError

    def __post_init__(self):
        # Children are built first, so their hashes are already known: hashing stays flat.
        object.__setattr__(self, "_hash", hash((type(self).__name__, self._scalars(),
                                                tuple(hash(c) for c in _children(self)))))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other) -> bool:
        if not isinstance(other, _Node):
            return NotImplemented
        stack = [(self, other)]
        while stack:
            a, b = stack.pop()
            if a is b:
                continue
            if type(a) is not type(b) or a._hash != b._hash or a._scalars() != b._scalars():
                return False
            kids_a, kids_b = _children(a), _children(b)
            if len(kids_a) != len(kids_b):
                return False
            stack.extend(zip(kids_a, kids_b))
        return True

    def __ne__(self, other) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

@dataclass(frozen=True, eq=False)
class Num(_Node):
    value: Decimal
    pos: int | None = field(default=None, compare=False, repr=False)

    def _scalars(self):
        return (self.value,)


@dataclass(frozen=True, eq=False)
class Bool(_Node):
    value: bool
    pos: int | None = field(default=None, compare=False, repr=False)

    def _scalars(self):
        return (self.value,)


@dataclass(frozen=True, eq=False)
class Ref(_Node):
    name: str
    column: str | None = None
    pos: int | None = field(default=None, compare=False, repr=False)

    def _scalars(self):
        return (self.name, self.column)


@dataclass(frozen=True, eq=False)
class Unary(_Node):
    op: str
    operand: "Node"
    pos: int | None = field(default=None, compare=False, repr=False)

    def _scalars(self):
        return (self.op,)


@dataclass(frozen=True, eq=False)
class Binary(_Node):
    op: str
    left: "Node"
    right: "Node"
    pos: int | None = field(default=None, compare=False, repr=False)

    def _scalars(self):
        return (self.op,)


@dataclass(frozen=True, eq=False)
class Call(_Node):
    name: str
    args: tuple
    pos: int | None = field(default=None, compare=False, repr=False)

    def _scalars(self):
        return (self.name, len(self.args))


Node = Union[Num, Bool, Ref, Unary, Binary, Call]


def valid_name(name: str) -> bool:
    """True if ``name`` can be written as a reference (a row or column key usable in formulas)."""
    return (bool(name) and _is_name_start(name[0]) and all(_is_name_char(c) for c in name)
            and name.lower() not in RESERVED)


def _is_name_start(c: str) -> bool:
    return c == "_" or ("a" <= c <= "z") or ("A" <= c <= "Z")


def _is_name_char(c: str) -> bool:
    return _is_name_start(c) or ("0" <= c <= "9")


def _is_digit(c: str) -> bool:
    # Only ASCII digits: str.isdigit() also accepts "²" and other scripts' digits.
    return "0" <= c <= "9"


# -- reading ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Token:
    kind: str          # "num", "ref", "kw", "func", "op", "(", ")", ",", "end"
    text: str          # as written (for messages); lower-case for kw and func
    pos: int
    value: object = None


_OPERATORS = ("<>", "!=", "<=", ">=", "=", "<", ">", "+", "-", "*", "/")


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif _is_digit(c):
            start = i
            while i < n and _is_digit(text[i]):
                i += 1
            if i < n and text[i] == ".":
                i += 1
                if i >= n or not _is_digit(text[i]):
                    raise ExpressionError("expr.error.bad_number", position=start, token=text[start:i])
                while i < n and _is_digit(text[i]):
                    i += 1
            if i < n and text[i] == ".":
                raise ExpressionError("expr.error.character", position=i, char=".")
            literal = text[start:i]
            if sum(ch != "." for ch in literal) > MAX_DIGITS:
                raise ExpressionError("expr.error.number_too_long", position=start, limit=MAX_DIGITS)
            out.append(_Token("num", literal, start, Decimal(literal)))
        elif _is_name_start(c):
            start = i
            while i < n and _is_name_char(text[i]):
                i += 1
            name = text[start:i]
            low = name.lower()
            if i < n and text[i] == ".":
                if low in RESERVED:
                    raise ExpressionError("expr.error.reserved", position=start, name=name)
                if i + 1 >= n or not _is_name_start(text[i + 1]):
                    raise ExpressionError("expr.error.dot", position=i, name=name)
                cstart = i = i + 1
                while i < n and _is_name_char(text[i]):
                    i += 1
                column = text[cstart:i]
                if column.lower() in RESERVED:
                    raise ExpressionError("expr.error.reserved", position=cstart, name=column)
                out.append(_Token("ref", text[start:i], start, (name, column)))
            elif low in KEYWORDS:
                out.append(_Token("kw", low, start))
            elif low in FUNCTIONS:
                out.append(_Token("func", low, start))
            else:
                out.append(_Token("ref", name, start, (name, None)))
        elif c in "(),":
            out.append(_Token(c, c, i))
            i += 1
        else:
            for op in _OPERATORS:
                if text.startswith(op, i):
                    out.append(_Token("op", "<>" if op == "!=" else op, i))
                    i += len(op)
                    break
            else:
                if c == "." and i + 1 < n and _is_digit(text[i + 1]):
                    raise ExpressionError("expr.error.leading_dot", position=i)
                raise ExpressionError("expr.error.character", position=i, char=c)
    out.append(_Token("end", "", n))
    return out


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokens(text)
        self.at = 0
        self.depth = 0
        self.nodes = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        tok = self.tokens[self.at]
        self.at += 1
        return tok

    def node(self, node):
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ExpressionError("expr.error.too_big", position=node.pos, limit=MAX_NODES)
        return node

    def enter(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError("expr.error.too_deep", position=pos, limit=MAX_DEPTH)

    def unexpected(self, tok: _Token) -> ExpressionError:
        if tok.kind == "end":
            return ExpressionError("expr.error.end", position=tok.pos)
        if tok.kind == ",":
            return ExpressionError("expr.error.comma", position=tok.pos)
        return ExpressionError("expr.error.unexpected", position=tok.pos, token=tok.text)

    def is_kw(self, word: str) -> bool:
        return self.tok.kind == "kw" and self.tok.text == word

    # Grammar, loosest first: or, and, not, comparison, + -, * /, unary - +, atoms.
    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise ExpressionError("expr.error.empty", position=None)
        node = self.or_()
        if self.tok.kind != "end":
            tok = self.tok
            if tok.kind == ")":
                raise ExpressionError("expr.error.unopened", position=tok.pos)
            raise self.unexpected(tok)
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.is_kw("or"):
            pos = self.take().pos
            node = self.node(Binary("or", node, self.and_(), pos=pos))
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.is_kw("and"):
            pos = self.take().pos
            node = self.node(Binary("and", node, self.not_(), pos=pos))
        return node

    def not_(self) -> Node:
        if self.is_kw("not"):
            pos = self.take().pos
            self.enter(pos)
            operand = self.not_()
            self.depth -= 1
            return self.node(Unary("not", operand, pos=pos))
        return self.comparison()

    def comparison(self) -> Node:
        node = self.additive()
        if self.tok.kind == "op" and self.tok.text in COMPARISONS:
            tok = self.take()
            node = self.node(Binary(tok.text, node, self.additive(), pos=tok.pos))
            if self.tok.kind == "op" and self.tok.text in COMPARISONS:
                raise ExpressionError("expr.error.chained", position=self.tok.pos, op=self.tok.text)
        return node

    def additive(self) -> Node:
        node = self.multiplicative()
        while self.tok.kind == "op" and self.tok.text in ("+", "-"):
            tok = self.take()
            node = self.node(Binary(tok.text, node, self.multiplicative(), pos=tok.pos))
        return node

    def multiplicative(self) -> Node:
        node = self.unary()
        while self.tok.kind == "op" and self.tok.text in ("*", "/"):
            tok = self.take()
            node = self.node(Binary(tok.text, node, self.unary(), pos=tok.pos))
        return node

    def unary(self) -> Node:
        if self.tok.kind == "op" and self.tok.text in ("-", "+"):
            tok = self.take()
            self.enter(tok.pos)
            operand = self.unary()
            self.depth -= 1
            return self.node(Unary(tok.text, operand, pos=tok.pos))
        return self.atom()

    def atom(self) -> Node:
        tok = self.tok
        if tok.kind == "num":
            self.take()
            return self.node(Num(tok.value, pos=tok.pos))
        if tok.kind == "kw" and tok.text in ("true", "false"):
            self.take()
            return self.node(Bool(tok.text == "true", pos=tok.pos))
        if tok.kind == "ref":
            self.take()
            if self.tok.kind == "(":
                raise ExpressionError("expr.error.unknown_function", position=tok.pos, name=tok.text)
            name, column = tok.value
            return self.node(Ref(name, column, pos=tok.pos))
        if tok.kind == "func":
            return self.call()
        if tok.kind == "(":
            self.take()
            self.enter(tok.pos)
            node = self.or_()
            self.close(tok)
            self.depth -= 1
            return node
        raise self.unexpected(tok)

    def close(self, opening: _Token) -> None:
        if self.tok.kind == ")":
            self.take()
            return
        if self.tok.kind == "end":
            raise ExpressionError("expr.error.closing", position=opening.pos)
        raise self.unexpected(self.tok)

    def call(self) -> Node:
        name_tok = self.take()
        name = name_tok.text
        if self.tok.kind != "(":
            raise ExpressionError("expr.error.reserved", position=name_tok.pos,
                                  name=self.text[name_tok.pos:name_tok.pos + len(name)])
        opening = self.take()
        self.enter(opening.pos)
        args: list[Node] = []
        if self.tok.kind != ")":
            args.append(self.or_())
            while self.tok.kind == ",":
                self.take()
                args.append(self.or_())
        self.close(opening)
        self.depth -= 1
        node = Call(name, tuple(args), pos=name_tok.pos)
        _check_call_shape(node)
        return self.node(node)


def _check_call_shape(node: Call) -> None:
    """Arity and the literal/reference arguments that some functions require."""
    if node.name not in FUNCTIONS:
        raise ExpressionError("expr.error.unknown_function", position=node.pos, name=node.name)
    least, most = FUNCTIONS[node.name]
    got = len(node.args)
    if most is None and got < least:
        raise ExpressionError("expr.error.arity_min", position=node.pos, name=node.name, expected=least, got=got)
    if most is not None and not least <= got <= most:
        raise ExpressionError("expr.error.arity", position=node.pos, name=node.name, expected=least, got=got)
    if node.name == "round":
        digits = node.args[1]
        if not (isinstance(digits, Num) and digits.value == digits.value.to_integral_value()
                and 0 <= digits.value <= MAX_ROUND_DIGITS):
            raise ExpressionError("expr.error.round_digits", position=_pos(digits, node), limit=MAX_ROUND_DIGITS)
    if node.name == "present" and not isinstance(node.args[0], Ref):
        raise ExpressionError("expr.error.present_ref", position=_pos(node.args[0], node))


def _pos(node, fallback=None) -> int | None:
    pos = getattr(node, "pos", None)
    return pos if pos is not None else getattr(fallback, "pos", None)


def parse(text: str) -> Node:
    """The tree of a formula; raises ExpressionError pointing at the first problem."""
    if not isinstance(text, str):
        raise TypeError("parse() takes a str")
    if len(text) > MAX_LENGTH:
        raise ExpressionError("expr.error.too_long", position=None, limit=MAX_LENGTH, length=len(text))
    return _Parser(text).parse()


# -- writing ----------------------------------------------------------------------------------------

# Binding strength, loosest first; an operand that binds more loosely than its place needs parentheses.
_PREC = {"or": 1, "and": 2, "not": 3, **{op: 4 for op in COMPARISONS}, "+": 5, "-": 5, "*": 6, "/": 6}
_UNARY_PREC, _ATOM_PREC = 7, 8


def _prec(node) -> int:
    if isinstance(node, Binary):
        return _PREC[node.op]
    if isinstance(node, Unary):
        return _PREC["not"] if node.op == "not" else _UNARY_PREC
    return _ATOM_PREC


def _number_text(value: Decimal) -> str:
    # Plain digits, never an exponent (Decimal("1E+1") prints as 10), no trailing zeros.
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def unparse(node) -> str:
    """Canonical text of a tree: lower-case keywords and functions, minimal parentheses."""
    def wrap(child, least: int) -> str:
        text = unparse(child)
        return f"({text})" if _prec(child) < least else text

    if isinstance(node, Num):
        return _number_text(node.value)
    if isinstance(node, Bool):
        return "true" if node.value else "false"
    if isinstance(node, Ref):
        return node.name if node.column is None else f"{node.name}.{node.column}"
    if isinstance(node, Unary):
        if node.op == "not":
            return "not " + wrap(node.operand, _PREC["not"])
        return node.op + wrap(node.operand, _UNARY_PREC)
    if isinstance(node, Binary):
        prec = _PREC[node.op]
        # Left-associative: the left operand may bind as loosely as the operator itself, the right
        # one must bind tighter; comparisons do not chain, so both sides must bind tighter.
        left = wrap(node.left, prec + 1 if node.op in COMPARISONS else prec)
        return f"{left} {node.op} {wrap(node.right, prec + 1)}"
    if isinstance(node, Call):
        return f"{node.name}({', '.join(unparse(a) for a in node.args)})"
    raise TypeError(f"not an expression node: {node!r}")


# -- walking ----------------------------------------------------------------------------------------

def _children(node) -> tuple:
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, Call):
        return node.args
    return ()


def references(node) -> list[Ref]:
    """Every reference in reading order, each once (positions dropped)."""
    seen: dict[Ref, None] = {}
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, Ref):
            seen.setdefault(Ref(current.name, current.column), None)
        stack.extend(reversed(_children(current)))
    return list(seen)


def rename(node, mapping: dict[str, str]):
    """The same tree with reference names and column parts renamed (a key renamed in the designer).

    A new name that a formula could not spell (``valid_name``) is refused, so the tree still prints."""
    for new_name in mapping.values():
        if not valid_name(new_name):
            raise ExpressionError("expr.error.bad_name", position=None, name=new_name)
    return _rename(node, mapping)


def _rename(node, mapping: dict[str, str]):
    if isinstance(node, Ref):
        column = mapping.get(node.column, node.column) if node.column is not None else None
        return replace(node, name=mapping.get(node.name, node.name), column=column)
    if isinstance(node, Unary):
        return replace(node, operand=_rename(node.operand, mapping))
    if isinstance(node, Binary):
        return replace(node, left=_rename(node.left, mapping), right=_rename(node.right, mapping))
    if isinstance(node, Call):
        return replace(node, args=tuple(_rename(a, mapping) for a in node.args))
    return node


# A parsed tree is at most about MAX_NODES / 2 + MAX_DEPTH levels deep (a long flat sum leans left);
# a tree built by hand is held to that too, so that the recursive walks never near Python's limit.
MAX_TREE_DEPTH = MAX_NODES // 2 + 2 * MAX_DEPTH


def _check_size(node) -> None:
    count, stack = 0, [(node, 1)]
    while stack:
        current, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ExpressionError("expr.error.too_big", position=None, limit=MAX_NODES)
        if depth > MAX_TREE_DEPTH:
            raise ExpressionError("expr.error.too_deep", position=None, limit=MAX_DEPTH)
        stack.extend((child, depth + 1) for child in _children(current))


# -- types ------------------------------------------------------------------------------------------

def infer(node) -> str:
    """"number" or "bool"; raises ExpressionError where numbers and true/false values are mixed."""
    _check_size(node)
    return _infer(node)


def _expect(node, wanted: str) -> None:
    got = _infer(node)
    if got != wanted:
        key = "expr.error.number_expected" if wanted == NUMBER else "expr.error.bool_expected"
        raise ExpressionError(key, position=node.pos, text=unparse(node))


def _infer(node) -> str:
    if isinstance(node, Num):
        if not node.value.is_finite():
            raise ValueError("a number literal must be finite")
        return NUMBER
    if isinstance(node, Bool):
        return BOOL
    if isinstance(node, Ref):
        return NUMBER
    if isinstance(node, Unary):
        if node.op == "not":
            _expect(node.operand, BOOL)
            return BOOL
        if node.op not in ("-", "+"):
            raise ValueError(f"unknown unary operator {node.op!r}")
        _expect(node.operand, NUMBER)
        return NUMBER
    if isinstance(node, Binary):
        if node.op in ARITHMETIC:
            _expect(node.left, NUMBER)
            _expect(node.right, NUMBER)
            return NUMBER
        if node.op in LOGIC:
            _expect(node.left, BOOL)
            _expect(node.right, BOOL)
            return BOOL
        if node.op in COMPARISONS:
            left, right = _infer(node.left), _infer(node.right)
            if left != right:
                raise ExpressionError("expr.error.compare_types", position=node.pos, op=node.op)
            if left == BOOL and node.op not in ("=", "<>"):
                _expect(node.left, NUMBER)
            return BOOL
        raise ValueError(f"unknown binary operator {node.op!r}")
    if isinstance(node, Call):
        _check_call_shape(node)
        if node.name in ("sum", "min", "max", "avg", "abs", "round"):
            for arg in node.args:
                _expect(arg, NUMBER)
            return NUMBER
        if node.name == "present":
            return BOOL
        if node.name == "if":
            cond, then, other = node.args
            _expect(cond, BOOL)
            kind = _infer(then)
            if _infer(other) != kind:
                raise ExpressionError("expr.error.same_type", position=node.pos, name=node.name)
            return kind
        if node.name == "coalesce":
            kind = _infer(node.args[0])
            if _infer(node.args[1]) != kind:
                raise ExpressionError("expr.error.same_type", position=node.pos, name=node.name)
            return kind
    raise TypeError(f"not an expression node: {node!r}")


# -- evaluation -------------------------------------------------------------------------------------

Value = Union[Decimal, bool, None]
Resolver = Callable[[Ref], Union[Decimal, None]]


def _arith(op: str, left, right):
    if op == "/":
        def div(r):
            a, b = left(r), right(r)
            if a is None or b is None or b == 0:
                return None
            return _CONTEXT.divide(a, b)
        return div
    fn = {"+": _CONTEXT.add, "-": _CONTEXT.subtract, "*": _CONTEXT.multiply}[op]

    def arith(r):
        a, b = left(r), right(r)
        return None if a is None or b is None else fn(a, b)
    return arith


_COMPARE = {
    "=": lambda a, b: a == b, "<>": lambda a, b: a != b,
    "<": lambda a, b: _CONTEXT.compare_signal(a, b) < 0, "<=": lambda a, b: _CONTEXT.compare_signal(a, b) <= 0,
    ">": lambda a, b: _CONTEXT.compare_signal(a, b) > 0, ">=": lambda a, b: _CONTEXT.compare_signal(a, b) >= 0,
}


def _build(node) -> Callable[[Resolver], Value]:
    if isinstance(node, (Num, Bool)):
        value = node.value
        return lambda r: value
    if isinstance(node, Ref):
        ref = Ref(node.name, node.column)
        return lambda r: r(ref)
    if isinstance(node, Unary):
        operand = _build(node.operand)
        if node.op == "not":
            return lambda r: None if (v := operand(r)) is None else not v
        fn = _CONTEXT.minus if node.op == "-" else _CONTEXT.plus
        return lambda r: None if (v := operand(r)) is None else fn(v)
    if isinstance(node, Binary):
        left, right = _build(node.left), _build(node.right)
        if node.op in ARITHMETIC:
            return _arith(node.op, left, right)
        if node.op == "and":
            def and_(r):
                a = left(r)
                if a is False:
                    return False
                b = right(r)
                if b is False:
                    return False
                return None if a is None or b is None else True
            return and_
        if node.op == "or":
            def or_(r):
                a = left(r)
                if a is True:
                    return True
                b = right(r)
                if b is True:
                    return True
                return None if a is None or b is None else False
            return or_
        compare = _COMPARE[node.op]

        def comparison(r):
            a, b = left(r), right(r)
            if a is None or b is None:
                return None
            # Booleans compare with = and <> only (infer sees to it); their order is meaningless.
            return compare(a, b) if isinstance(a, Decimal) else (a == b) == (node.op == "=")
        return comparison
    if isinstance(node, Call):
        return _build_call(node)
    raise TypeError(f"not an expression node: {node!r}")


def _build_call(node: Call):
    args = [_build(a) for a in node.args]
    name = node.name
    if name in ("sum", "min", "max", "avg"):
        combine = {"sum": _CONTEXT.add, "min": _CONTEXT.min, "max": _CONTEXT.max, "avg": _CONTEXT.add}[name]

        def aggregate(r):
            values = [v for f in args if (v := f(r)) is not None]
            if not values:
                return None
            total = reduce(combine, values) if len(values) > 1 else _CONTEXT.plus(values[0])
            return _CONTEXT.divide(total, Decimal(len(values))) if name == "avg" else total
        return aggregate
    if name == "abs":
        (arg,) = args
        return lambda r: None if (v := arg(r)) is None else _CONTEXT.abs(v)
    if name == "round":
        arg = args[0]
        exponent = Decimal(1).scaleb(-int(node.args[1].value))
        return lambda r: (None if (v := arg(r)) is None
                          else v.quantize(exponent, rounding=ROUND_HALF_UP, context=_CONTEXT))
    if name == "if":
        cond, then, other = args

        def if_(r):
            c = cond(r)
            return None if c is None else then(r) if c else other(r)
        return if_
    if name == "coalesce":
        first, second = args
        return lambda r: v if (v := first(r)) is not None else second(r)
    if name == "present":
        ref = Ref(node.args[0].name, node.args[0].column)
        return lambda r: r(ref) is not None
    raise TypeError(f"not an expression node: {node!r}")


@lru_cache(maxsize=4096)
def compile(node) -> Callable[[Resolver], Value]:  # noqa: A001 - the name the callers import
    """Check the tree's types, then build its evaluator once; the result takes a resolver
    (Ref → Decimal or None) and returns Decimal, bool or None (None: not evaluated)."""
    infer(node)
    run = _build(node)

    def evaluator(resolve: Resolver) -> Value:
        try:
            return run(resolve)
        except decimal.DecimalException:
            raise ExpressionError("expr.error.overflow", position=None) from None
    return evaluator


def evaluate(node, resolve: Resolver) -> Value:
    """The value of a tree for one set of cell values; see ``compile``."""
    return compile(node)(resolve)
