"""A configuration with overrides: pipeline.toml's tables, a dict merged over them, written as one TOML file.

The stages read their configuration from one file (core.config.load_config, CONFIG=path), so overrides
are not a second source of truth beside it: they make a new file, which every stage then reads as it
reads pipeline.toml. Its name is its content's hash, so the same overrides always give the same file.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from pathlib import Path

from core.errors import PipelineError

BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def merge(base: dict, overrides: dict) -> dict:
    """base with overrides merged in, table by table: a dict merges into a table, any other value replaces
    the key, and None removes it (TOML has no null). Neither argument is changed."""
    out = dict(base)
    for key, value in overrides.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def dumps(table: dict) -> str:
    """The TOML text of nested tables of strings, numbers, booleans and lists of them."""
    lines: list[str] = []
    _write_table(lines, [], table)
    text = "\n".join(lines).strip() + "\n"
    if tomllib.loads(text) != _plain(table):          # what TOML cannot say exactly is refused, never changed
        raise PipelineError("overrides: the merged configuration does not survive being written as TOML; "
                            "use strings, numbers, booleans, lists of them, and tables")
    return text


def write_merged(base: Path, overrides: dict, folder: Path) -> Path:
    """The base configuration file with overrides merged in, written as folder/config-<hash>.toml."""
    try:
        raw = tomllib.loads(Path(base).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PipelineError(f"{base}: configuration file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise PipelineError(f"{base}: not valid TOML ({e})") from None
    if not isinstance(overrides, dict):
        raise PipelineError(f"overrides must be a dict of tables, like {{'folds': {{'k': 3}}}}, not {overrides!r}")
    text = f"# {Path(base).resolve()} with overrides from the notebook API (pipeline.load)\n" + \
        dumps(merge(raw, overrides))
    path = folder / f"config-{hashlib.sha256(text.encode()).hexdigest()[:12]}.toml"
    if not path.exists():
        from core.artifacts import write_text
        write_text(path, text)
    return path


def _write_table(lines: list[str], keys: list[str], table: dict) -> None:
    values = {k: v for k, v in table.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in table.items() if isinstance(v, dict)}
    if keys and (values or not tables):
        lines += ["", "[" + ".".join(_key(k) for k in keys) + "]"]
    lines += [f"{_key(k)} = {_value(v, [*keys, k])}" for k, v in values.items()]
    for k, sub in tables.items():
        _write_table(lines, [*keys, k], sub)


def _key(key) -> str:
    key = str(key)
    return key if BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def _value(value, where: list[str]) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else
                                                         "inf" if value > 0 else "-inf")
    if isinstance(value, (str, Path)):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v, where) for v in value) + "]"
    raise PipelineError(f"overrides: {'.'.join(map(str, where))} = {value!r}: a {type(value).__name__} has no "
                        f"TOML form; use a string, number, boolean or a list of them")


def _plain(value):
    """What tomllib gives back for a value: lists for tuples, strings for paths."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, Path) else value
