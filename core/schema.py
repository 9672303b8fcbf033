"""Configuration tables as frozen dataclasses: one reader for every table, checking what it is given.

A table's dataclass says what each key takes: its type (bool, int, float, str, tuple[X, ...] for a TOML list,
a union of them) and, declared with `setting(...)`, its range or its choices. `build(cls, table, path, where)`
refuses in one line, naming the file, the table and the key: an unknown key, a missing one, a value of the
wrong type or out of range, and whatever the class's own `problems()` finds across its keys.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path

from core.errors import PipelineError

WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a string",
         tuple[str, ...]: "a list of strings", tuple[float, ...]: "a list of numbers",
         tuple[int, ...]: "a list of whole numbers"}


def setting(default=dataclasses.MISSING, *, at_least=None, above=None, at_most=None, below=None,
            choices: tuple | None = None):
    """A dataclass field with the values it may take: numbers within the bounds (each number of a list), or one
    of `choices`."""
    rules = {k: v for k, v in (("at_least", at_least), ("above", above), ("at_most", at_most), ("below", below),
                               ("choices", choices)) if v is not None}
    return dataclasses.field(default=default, metadata=rules)


def build(cls, table: dict, path: Path | str, where: str):
    """A frozen dataclass from a TOML table (lists become tuples), every key checked; PipelineError otherwise."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise PipelineError(f"{path}: {where} has unknown key(s) {unknown}; known keys: {sorted(known)}")
    missing = [n for n, f in known.items() if n not in table
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise PipelineError(f"{path}: {where} is missing key(s) {missing}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        if problem := value_problem(value, hints[key], known[key].metadata):
            raise PipelineError(f"{path}: {where} {key} {problem}")
    obj = cls(**values)
    problems = obj.problems() if hasattr(obj, "problems") else []
    if problems:
        raise PipelineError(f"{path}: {where} {'; '.join(problems)}")
    return obj


def value_problem(value, hint, rules: typing.Mapping) -> str | None:
    """What is wrong with `value` for a key of type `hint` with `rules` (setting's), or None."""
    kinds = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union \
        else (hint,)
    if not any(is_a(value, kind) for kind in kinds):
        return f"must be {' or '.join(WORDS[k] for k in kinds if k in WORDS)}, got {value!r}"
    if "choices" in rules and value not in rules["choices"]:
        return f"must be one of {', '.join(repr(c) for c in rules['choices'])}, got {value!r}"
    numbers = [v for v in (value if isinstance(value, tuple) else (value,))
               if isinstance(v, (int, float)) and not isinstance(v, bool)]
    for words, inside in (("at least", lambda v, b: v >= b), ("above", lambda v, b: v > b),
                          ("at most", lambda v, b: v <= b), ("below", lambda v, b: v < b)):
        bound = rules.get(words.replace(" ", "_"))
        if bound is not None and not all(inside(v, bound) for v in numbers):
            return f"must be {words} {bound}{' (each of them)' if isinstance(value, tuple) else ''}, got {value!r}"
    return None


def is_a(value, kind) -> bool:
    """isinstance, but a bool is no number here (TOML's true is not 1), a whole number is a float, and
    tuple[X, ...] is a list of X (a TOML list; `build` makes it a tuple)."""
    if kind is type(None):
        return value is None
    if typing.get_origin(kind) is tuple:
        return isinstance(value, tuple) and all(is_a(v, typing.get_args(kind)[0]) for v in value)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
