"""Configuration files as TOML tables: one merged over another, a file over its base, tables written back.

A configuration may name a base file (`base = "pipeline.toml"`, relative to it): its tables are merged over
the base's, so a second competition's file holds only what differs (its [competition], [kaggle]) and the
model catalogue stays in one place. The notebook API's overrides (pipeline.overrides) merge the same way.
"""
from __future__ import annotations

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


def read_tables(path: Path) -> dict:
    """A configuration file's tables, merged over those of its base file (and its base's base) when it names one."""
    files = config_files(path)
    tables = {}
    for file in reversed(files):
        tables = merge(tables, {k: v for k, v in _parse(file, file == files[0]).items() if k != "base"})
    return tables


def config_files(path: Path) -> list[Path]:
    """The configuration file, then its base, the base's base, ...: every file its settings come from."""
    files = [Path(path)]
    while (base := _parse(files[-1], len(files) == 1).get("base")) is not None:
        if not isinstance(base, str) or not base:
            raise PipelineError(f'{files[-1]}: base must name a configuration file, like base = "pipeline.toml"')
        file = (files[-1].parent / base).resolve()
        if file in [f.resolve() for f in files]:
            raise PipelineError(f"{files[-1]}: base = {base!r} leads back to {file.name}, a file already in the "
                                f"chain; a configuration cannot be its own base")
        if not file.is_file():
            raise PipelineError(f"{files[-1]}: base file {file} not found; fix base = {base!r} (a path relative "
                                f"to {files[-1].parent})")
        files.append(file)
    return files


def resolved_text(path: Path) -> str:
    """The configuration as one self-contained TOML text: the file itself, or its tables merged with its bases'."""
    path = Path(path)
    if len(config_files(path)) == 1:
        return path.read_text(encoding="utf-8")
    return f"# {path.name} merged over its base file(s)\n" + dumps(read_tables(path))


def _parse(path: Path, selected: bool) -> dict:
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        hint = "set CONFIG=path or restore pipeline.toml" if selected else "fix the base entry that names it"
        raise PipelineError(f"{path}: configuration file not found; {hint}") from None
    except tomllib.TOMLDecodeError as e:
        raise PipelineError(f"{path}: not valid TOML ({e})") from None


def dumps(table: dict) -> str:
    """The TOML text of nested tables of strings, numbers, booleans and lists of them."""
    lines: list[str] = []
    _write_table(lines, [], table)
    text = "\n".join(lines).strip() + "\n"
    if tomllib.loads(text) != _plain(table):          # what TOML cannot say exactly is refused, never changed
        raise PipelineError("overrides: the merged configuration does not survive being written as TOML; "
                            "use strings, numbers, booleans, lists of them, and tables")
    return text


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
