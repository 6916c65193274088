"""YAML loading that remembers where every value came from, and typed field readers.

``load(path)`` returns plain dicts/lists/scalars wrapped so that every mapping and list knows the
file, line and column of itself and of each of its entries. ``Node`` readers (``need``, ``get``)
turn a wrong type, a missing key or an unknown key into a ``UserError`` naming file:line:column,
the key path, what was found and what is allowed.
"""
from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

from memsim.errors import UserError


class Mark:
    __slots__ = ("file", "line", "column")

    def __init__(self, file: str, line: int, column: int):
        self.file, self.line, self.column = file, line, column

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class YMap(dict):
    """A mapping from YAML; ``mark`` is where it starts, ``key_marks``/``value_marks`` per key."""

    mark: Mark
    key_marks: dict
    value_marks: dict


class YList(list):
    """A sequence from YAML; ``mark`` is where it starts, ``item_marks`` per item."""

    mark: Mark
    item_marks: list


def _mark(file: str, m: yaml.Mark) -> Mark:
    return Mark(file, m.line + 1, m.column + 1)


class _Loader(yaml.SafeLoader):
    pass


def _build(node: yaml.Node, loader: _Loader, file: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        out = YMap()
        out.mark, out.key_marks, out.value_marks = _mark(file, node.start_mark), {}, {}
        loader.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = _build(key_node, loader, file)
            if isinstance(key, (YMap, YList)):
                raise UserError("a mapping key must be a plain value", str(_mark(file, key_node.start_mark)))
            if key in out:
                raise UserError(f"duplicate key {key!r}", str(_mark(file, key_node.start_mark)))
            out[key] = _build(value_node, loader, file)
            out.key_marks[key] = _mark(file, key_node.start_mark)
            out.value_marks[key] = _mark(file, value_node.start_mark)
        return out
    if isinstance(node, yaml.SequenceNode):
        out = YList(_build(n, loader, file) for n in node.value)
        out.mark = _mark(file, node.start_mark)
        out.item_marks = [_mark(file, n.start_mark) for n in node.value]
        return out
    return loader.construct_object(node, deep=True)


def parse(text: str, file: str) -> Any:
    """Parse YAML text; syntax errors become ``UserError`` at the offending position."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        return _build(root, loader, file)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = str(_mark(file, mark)) if mark else file
        problem = e.problem or str(e)
        raise UserError(f"YAML syntax error: {problem}", where) from None
    except yaml.YAMLError as e:
        raise UserError(f"YAML error: {e}", file) from None
    finally:
        loader.dispose()


def load(path: str | Path, display: str | None = None) -> Any:
    """Read and parse a YAML file; ``display`` is the name used in messages (default: as given)."""
    path = Path(path)
    name = display or str(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise UserError("file not found", name) from None
    except IsADirectoryError:
        raise UserError("is a directory, expected a YAML file", name) from None
    except UnicodeDecodeError as e:
        raise UserError(f"not UTF-8 text (byte {e.start})", name) from None
    except OSError as e:
        raise UserError(f"cannot read: {e.strerror}", name) from None
    return parse(text, name)


def where(container: Any, key: Any = None) -> str | None:
    """file:line:column of ``container[key]`` (or of the container itself)."""
    if isinstance(container, YMap) and key is not None and key in container.value_marks:
        return str(container.value_marks[key])
    if isinstance(container, YList) and isinstance(key, int) and key < len(container.item_marks):
        return str(container.item_marks[key])
    mark = getattr(container, "mark", None)
    return str(mark) if mark else None


def type_name(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    return f"the string {value!r}"


def closest(word: str, choices: Iterable[str]) -> str | None:
    found = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.5)
    return found[0] if found else None


def suggest(word: str, choices: Iterable[str]) -> str:
    choices = list(choices)
    near = closest(word, choices)
    hint = f" (did you mean {near!r}?)" if near else ""
    return f"{hint}; allowed: {', '.join(choices)}"


def expect_mapping(value: Any, what: str, at: str | None) -> YMap:
    if not isinstance(value, dict):
        raise UserError(f"{what} must be a mapping, found {type_name(value)}", at)
    return value


def check_keys(mapping: YMap, path: str, allowed: Iterable[str], required: Iterable[str] = ()) -> None:
    """Unknown keys (with the closest valid one) and missing required keys are errors."""
    allowed = list(allowed)
    for key in mapping:
        if key not in allowed:
            at = str(mapping.key_marks[key]) if key in getattr(mapping, "key_marks", {}) else where(mapping)
            raise UserError(f"unknown key {_join(path, key)!r}{suggest(key, allowed)}", at)
    for key in required:
        if key not in mapping:
            raise UserError(f"missing key {_join(path, key)!r}", where(mapping))


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


# --- typed readers ---------------------------------------------------------------------------

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB)?\s*$")
_UNITS = {None: 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


def parse_size(value: Any) -> int | None:
    """``32KiB``, ``1.25MiB``, ``4096`` -> bytes; None when it is not a whole number of bytes."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        m = _SIZE.match(value)
        if m:
            number, unit = m.groups()
            scaled = float(number) * _UNITS[unit] if "." in number else int(number) * _UNITS[unit]
            if scaled == int(scaled):
                return int(scaled)
    return None


def as_int(value: Any, what: str, at: str | None, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{what} must be an integer, found {type_name(value)}", at)
    if minimum is not None and value < minimum:
        raise UserError(f"{what} must be at least {minimum}, found {value}", at)
    if maximum is not None and value > maximum:
        raise UserError(f"{what} must be at most {maximum}, found {value}", at)
    return value


def as_size(value: Any, what: str, at: str | None, minimum: int = 1) -> int:
    size = parse_size(value)
    if size is None:
        raise UserError(
            f"{what} must be a size in bytes (an integer, or a number with KiB/MiB/GiB, e.g. 32KiB), "
            f"found {type_name(value)}",
            at,
        )
    if size < minimum:
        raise UserError(f"{what} must be at least {minimum}, found {size}", at)
    return size


def as_number(value: Any, what: str, at: str | None, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{what} must be a number, found {type_name(value)}", at)
    if positive and not value > 0:
        raise UserError(f"{what} must be positive, found {value}", at)
    return float(value)


def as_bool(value: Any, what: str, at: str | None) -> bool:
    if not isinstance(value, bool):
        raise UserError(f"{what} must be true or false, found {type_name(value)}", at)
    return value


def as_str(value: Any, what: str, at: str | None) -> str:
    if not isinstance(value, str):
        raise UserError(f"{what} must be a string, found {type_name(value)}", at)
    return value


def as_choice(value: Any, what: str, at: str | None, choices: Iterable[str]) -> str:
    choices = list(choices)
    if not isinstance(value, str) or value not in choices:
        shown = type_name(value)
        hint = suggest(value, choices) if isinstance(value, str) else f"; allowed: {', '.join(choices)}"
        raise UserError(f"{what} must be one of the allowed values, found {shown}{hint}", at)
    return value


def field(mapping: YMap, key: str, path: str, read: Callable[..., Any], default: Any = ..., **kw: Any) -> Any:
    """Read ``mapping[key]`` with ``read(value, what, at, **kw)``; missing -> default or error."""
    if key not in mapping:
        if default is ...:
            raise UserError(f"missing key {_join(path, key)!r}", where(mapping))
        return default
    return read(mapping[key], _join(path, key), where(mapping, key), **kw)
