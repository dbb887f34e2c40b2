"""The subset of CouchDB's Mango selectors the embedded store evaluates.

Implicit equality, ``$eq $ne $gt $gte $lt $lte $in $nin $exists``, ``$and``,
``$or``, and dotted field paths. Anything else is refused rather than guessed,
so a query that works on the embedded store means the same on CouchDB.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..errors import StoreError

_MISSING = object()

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$eq": lambda v, a: v == a,
    "$ne": lambda v, a: v != a,
    "$gt": lambda v, a: v is not _MISSING and _comparable(v, a) and v > a,
    "$gte": lambda v, a: v is not _MISSING and _comparable(v, a) and v >= a,
    "$lt": lambda v, a: v is not _MISSING and _comparable(v, a) and v < a,
    "$lte": lambda v, a: v is not _MISSING and _comparable(v, a) and v <= a,
    "$in": lambda v, a: v in a,
    "$nin": lambda v, a: v not in a,
    "$exists": lambda v, a: (v is not _MISSING) == a,
}


def _comparable(value: Any, argument: Any) -> bool:
    numbers = (int, float)
    both_numbers = isinstance(value, numbers) and isinstance(argument, numbers)
    return both_numbers or type(value) is type(argument)


def _field(doc: dict, path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def matches(doc: dict, selector: dict) -> bool:
    """Whether ``doc`` satisfies ``selector``."""
    for key, condition in selector.items():
        if key == "$and":
            if not all(matches(doc, s) for s in condition):
                return False
        elif key == "$or":
            if not any(matches(doc, s) for s in condition):
                return False
        elif key.startswith("$"):
            raise StoreError(f"selector operator {key} is not supported by the embedded store")
        elif not _field_matches(_field(doc, key), condition):
            return False
    return True


def _field_matches(value: Any, condition: Any) -> bool:
    if not (isinstance(condition, dict) and any(k.startswith("$") for k in condition)):
        return value == condition
    for operator, argument in condition.items():
        compare = _COMPARE.get(operator)
        if compare is None:
            raise StoreError(f"selector operator {operator} is not supported by the embedded store")
        if not compare(value, argument):
            return False
    return True


def sort_key(fields: Sequence[str]) -> Callable[[dict], tuple]:
    """Ascending sort on ``fields``; documents missing a field sort first, as in CouchDB."""

    def key(doc: dict) -> tuple:
        values = []
        for path in fields:
            value = _field(doc, path)
            values.append((0, 0) if value is _MISSING else (1, value))
        return tuple(values)

    return key
