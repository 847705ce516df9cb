"""DynamoDB expressions, evaluated as DynamoDB does, for the soak's in-process table.

Condition and key-condition expressions (comparisons, BETWEEN, IN, AND/OR/NOT, parentheses,
attribute_exists / attribute_not_exists / attribute_type / begins_with / contains / size), projection
expressions, and SET/REMOVE update expressions, with ``#name`` and ``:value`` placeholders. Values are
DynamoDB's typed JSON ({"S": ...}, {"N": ...}, ...). Comparing values of different types is false, as in
DynamoDB; numbers compare as decimals. Parsed expressions are cached (the store sends a handful of shapes).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import Any

Item = dict[str, dict[str, Any]]
Names = dict[str, str]
Values = dict[str, dict[str, Any]]


class ExpressionError(ValueError):
    """An expression DynamoDB would refuse (ValidationException)."""


_TOKEN = re.compile(r"\s*(?:(?P<op><>|<=|>=|=|<|>|\(|\)|,|\+|-)|(?P<name>#[A-Za-z0-9_]+)|(?P<value>:[A-Za-z0-9_]+)"
                    r"|(?P<word>[A-Za-z_][A-Za-z0-9_.\[\]]*))")
_KEYWORDS = {"AND", "OR", "NOT", "BETWEEN", "IN", "SET", "REMOVE", "ADD", "DELETE"}


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ExpressionError(f"Invalid expression: unexpected {text[position:position + 20]!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "word" and value.upper() in _KEYWORDS:
            kind, value = "kw", value.upper()
        out.append((kind, value))
        position = match.end()
    return out


Evaluator = Callable[[Item, Names, Values], Any]


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise ExpressionError(f"Invalid expression: expected {value or 'more'}, got {token}")
        self.at += 1
        return token

    # ---------------------------------------------------------------- conditions
    def condition(self) -> Evaluator:
        left = self.conjunction()
        while (t := self.peek()) is not None and t == ("kw", "OR"):
            self.take()
            right = self.conjunction()
            left = (lambda a, b: lambda i, n, v: a(i, n, v) or b(i, n, v))(left, right)
        return left

    def conjunction(self) -> Evaluator:
        left = self.negation()
        while (t := self.peek()) is not None and t == ("kw", "AND"):
            self.take()
            right = self.negation()
            left = (lambda a, b: lambda i, n, v: a(i, n, v) and b(i, n, v))(left, right)
        return left

    def negation(self) -> Evaluator:
        if self.peek() == ("kw", "NOT"):
            self.take()
            inner = self.negation()
            return lambda i, n, v: not inner(i, n, v)
        return self.primary()

    def primary(self) -> Evaluator:
        token = self.peek()
        if token == ("op", "("):
            self.take()
            inner = self.condition()
            self.take(")")
            return inner
        if token is not None and token[0] == "word" and self.at + 1 < len(self.tokens) \
                and self.tokens[self.at + 1] == ("op", "(") and token[1] != "size":
            return self.function()
        left = self.operand()
        token = self.peek()
        if token == ("kw", "BETWEEN"):
            self.take()
            low = self.operand()
            self.take("AND")
            high = self.operand()
            return lambda i, n, v: _between(left(i, n, v), low(i, n, v), high(i, n, v))
        if token == ("kw", "IN"):
            self.take()
            self.take("(")
            options = [self.operand()]
            while self.peek() == ("op", ","):
                self.take()
                options.append(self.operand())
            self.take(")")
            return lambda i, n, v: any(_compare("=", left(i, n, v), o(i, n, v)) for o in options)
        if token is None or token[0] != "op" or token[1] not in ("=", "<>", "<", "<=", ">", ">="):
            raise ExpressionError(f"Invalid expression: expected a comparator, got {token}")
        op = self.take()[1]
        right = self.operand()
        return lambda i, n, v: _compare(op, left(i, n, v), right(i, n, v))

    def function(self) -> Evaluator:
        name = self.take()[1]
        self.take("(")
        args: list[Evaluator] = []
        paths: list[list[str]] = []
        while True:
            token = self.peek()
            if token is not None and token[0] in ("word", "name") and name in (
                    "attribute_exists", "attribute_not_exists") and not args:
                paths.append(self.path_tokens())
                args.append(lambda i, n, v: None)
            else:
                args.append(self.operand())
            if self.peek() == ("op", ","):
                self.take()
                continue
            break
        self.take(")")
        if name == "attribute_exists":
            path = paths[0]
            return lambda i, n, v: _resolve(i, path, n) is not None
        if name == "attribute_not_exists":
            path = paths[0]
            return lambda i, n, v: _resolve(i, path, n) is None
        if name == "begins_with":
            a, b = args
            return lambda i, n, v: _begins_with(a(i, n, v), b(i, n, v))
        if name == "contains":
            a, b = args
            return lambda i, n, v: _contains(a(i, n, v), b(i, n, v))
        if name == "attribute_type":
            a, b = args
            return lambda i, n, v: (x := a(i, n, v)) is not None and next(iter(x)) == (b(i, n, v) or {}).get("S")
        raise ExpressionError(f"Invalid function name; function: {name}")

    def path_tokens(self) -> list[str]:
        kind, value = self.take()
        if kind not in ("word", "name"):
            raise ExpressionError(f"Invalid expression: expected an attribute, got {value}")
        return [value]

    def operand(self) -> Evaluator:
        token = self.peek()
        if token is None:
            raise ExpressionError("Invalid expression: expected an operand")
        kind, value = token
        if kind == "value":
            self.take()
            return lambda i, n, v: _value(v, value)
        if kind == "word" and value == "size":
            self.take()
            self.take("(")
            inner = self.operand()
            self.take(")")
            return lambda i, n, v: _size(inner(i, n, v))
        if kind in ("word", "name"):
            path = self.path_tokens()
            return lambda i, n, v: _resolve(i, path, n)
        raise ExpressionError(f"Invalid expression: unexpected {value}")


def _value(values: Values, placeholder: str) -> dict[str, Any]:
    if placeholder not in values:
        raise ExpressionError(f"An expression attribute value used in expression is not defined; "
                              f"attribute value: {placeholder}")
    return values[placeholder]


def _name(names: Names, token: str) -> str:
    if token.startswith("#"):
        if token not in names:
            raise ExpressionError(f"An expression attribute name used in the document path is not defined; "
                                  f"attribute name: {token}")
        return names[token]
    return token


def _resolve(item: Item, path: list[str], names: Names) -> dict[str, Any] | None:
    return item.get(_name(names, path[0]))


def _scalar(value: dict[str, Any] | None) -> tuple[str, Any] | None:
    if value is None:
        return None
    (kind, raw), = value.items()
    if kind == "N":
        return kind, Decimal(raw)
    return kind, raw


def _compare(op: str, left: dict[str, Any] | None, right: dict[str, Any] | None) -> bool:
    a, b = _scalar(left), _scalar(right)
    if a is None or b is None:
        return op == "<>" and (a is None) != (b is None)
    if a[0] != b[0]:
        return op == "<>"
    x, y = a[1], b[1]
    if op == "=":
        return bool(x == y)
    if op == "<>":
        return bool(x != y)
    if a[0] not in ("S", "N", "B"):
        raise ExpressionError(f"Invalid operator used in KeyConditionExpression or ConditionExpression: {op}")
    return bool({"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op])


def _between(value: Any, low: Any, high: Any) -> bool:
    return _compare(">=", value, low) and _compare("<=", value, high)


def _begins_with(value: dict[str, Any] | None, prefix: dict[str, Any] | None) -> bool:
    return value is not None and prefix is not None and "S" in value and "S" in prefix \
        and str(value["S"]).startswith(prefix["S"])


def _contains(value: dict[str, Any] | None, part: dict[str, Any] | None) -> bool:
    if value is None or part is None:
        return False
    if "S" in value and "S" in part:
        return part["S"] in value["S"]
    if "SS" in value and "S" in part:
        return part["S"] in value["SS"]
    if "L" in value:
        return part in value["L"]
    return False


def _size(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    (kind, raw), = value.items()
    return {"N": str(len(raw.encode()) if kind == "S" else len(raw))}


@lru_cache(maxsize=512)
def condition(text: str) -> Evaluator:
    parser = _Parser(text)
    evaluator = parser.condition()
    if parser.peek() is not None:
        raise ExpressionError(f"Invalid expression: unexpected {parser.peek()}")
    return evaluator


def matches(text: str | None, item: Item | None, names: Names | None, values: Values | None) -> bool:
    if not text:
        return True
    return bool(condition(text)(item or {}, names or {}, values or {}))


@lru_cache(maxsize=256)
def key_condition(text: str) -> tuple[str, str, Evaluator]:
    """(partition attribute token, its value placeholder, the whole condition): DynamoDB requires ``pk = :v``."""
    tokens = _tokens(text)
    if len(tokens) < 3 or tokens[1] != ("op", "=") or tokens[2][0] != "value":
        raise ExpressionError("Query key condition not supported: the partition key needs an equality")
    return tokens[0][1], tokens[2][1], condition(text)


@lru_cache(maxsize=256)
def projection(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(","))


def project(item: Item, text: str | None, names: Names | None) -> Item:
    if not text:
        return item
    keep = {_name(names or {}, p) for p in projection(text)}
    return {k: v for k, v in item.items() if k in keep}


@lru_cache(maxsize=128)
def _update_plan(text: str) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """(action, attribute token, operand tokens) for each clause of ``SET a = :x, b = :y REMOVE c``."""
    plan: list[tuple[str, str, tuple[str, ...]]] = []
    action = ""
    for chunk in re.split(r"\b(SET|REMOVE)\b", text, flags=re.IGNORECASE):
        chunk = chunk.strip()
        if not chunk:
            continue
        if chunk.upper() in ("SET", "REMOVE"):
            action = chunk.upper()
            continue
        for clause in (c.strip() for c in chunk.split(",") if c.strip()):
            if action == "SET":
                target, _, rest = clause.partition("=")
                plan.append(("SET", target.strip(), tuple(t for t in re.split(r"\s*([+-])\s*", rest.strip()) if t)))
            elif action == "REMOVE":
                plan.append(("REMOVE", clause, ()))
            else:
                raise ExpressionError(f"Invalid UpdateExpression: {text}")
    return tuple(plan)


def apply_update(item: Item, text: str, names: Names | None, values: Values | None) -> Item:
    names, values = names or {}, values or {}
    out = dict(item)
    for action, target, operands in _update_plan(text):
        attribute = _name(names, target)
        if action == "REMOVE":
            out.pop(attribute, None)
            continue
        result = _operand_value(out, operands[0], names, values)
        for index in range(1, len(operands) - 1, 2):
            other = _operand_value(out, operands[index + 1], names, values)
            a, b = Decimal(result["N"]), Decimal(other["N"])
            result = {"N": str(a + b if operands[index] == "+" else a - b)}
        out[attribute] = result
    return out


def _operand_value(item: Item, token: str, names: Names, values: Values) -> dict[str, Any]:
    if token.startswith(":"):
        return _value(values, token)
    found = item.get(_name(names, token))
    if found is None:
        raise ExpressionError(f"The provided expression refers to an attribute that does not exist: {token}")
    return found


def item_size(item: Item) -> int:
    """DynamoDB's item size: attribute names plus values (UTF-8), numbers about one byte per two digits."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    (kind, raw), = value.items()
    if kind == "S":
        return len(raw.encode())
    if kind == "N":
        return (len(raw.lstrip("-").replace(".", "")) + 1) // 2 + 1
    if kind == "B":
        return len(raw)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_size(v) + 1 for k, v in raw.items())
    if kind == "L":
        return 3 + sum(_value_size(v) + 1 for v in raw)
    if kind in ("SS", "NS", "BS"):
        return sum(len(str(x).encode()) for x in raw)
    return len(str(raw))
