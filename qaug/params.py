"""``params.yaml`` → typed stage parameters, checked before any work starts.

Each stage owns a frozen dataclass mirrored by its own section of ``params.yaml``
(plus the top-level ``seed``). Unknown keys, wrong types and out-of-range values
raise :class:`ParamsError` naming the key and what to write instead.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

T = TypeVar("T")


class ParamsError(ValueError):
    """A parameter in params.yaml is missing, unknown, mistyped or out of range."""


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    return read_mapping(path, "run qaug from the project root (where params.yaml is) or pass --params")


def read_mapping(path: str | Path, where_to_look: str, error: type[ParamsError] = ParamsError) -> dict[str, Any]:
    """A YAML file holding a mapping (params.yaml, a grid file); ``error`` names the file and what is wrong.

    Stricter than ``yaml.safe_load``: a key given twice in one mapping is an error (safe_load keeps the later
    value without a word, and DVC refuses the file midway through a run), and so is text that is not UTF-8."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path} not found: {where_to_look}")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise error(f"{path} is not UTF-8 text (byte 0x{data[err.start]:02x} on line {line}); save it as UTF-8") from None
    try:
        raw = _load_unique(text, path, error) or {}
    except yaml.YAMLError as err:
        raise error(f"{path} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise error(f"{path} must be a mapping, got {type(raw).__name__}")
    return raw


def _load_unique(text: str, path: Path, error: type[ParamsError]) -> Any:
    """``yaml.safe_load(text)``, refusing a mapping that gives a key twice (at any depth; ``<<`` merges may override)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _refuse_duplicates(node, loader, (), path, error, set())
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _refuse_duplicates(node: yaml.Node, loader: yaml.SafeLoader, trail: tuple[str, ...], path: Path,
                       error: type[ParamsError], seen: set[int]) -> None:
    if id(node) in seen:  # an alias of a node already walked (or a recursive one)
        return
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _refuse_duplicates(item, loader, (*trail[:-1], f"{trail[-1] if trail else ''}[{i}]"), path, error, seen)
    elif isinstance(node, yaml.MappingNode):
        lines: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = loader.construct_object(key_node, deep=True)
            name = (*trail, str(key))
            line = key_node.start_mark.line + 1
            try:
                if key in lines:
                    where = f"line {line}" if lines[key] == line else f"lines {lines[key]} and {line}"
                    raise error(f"{path}: key {'.'.join(name)} appears twice ({where}); keep one")
                lines[key] = line
            except TypeError:  # an unhashable key: safe_load's own error names it
                continue
            _refuse_duplicates(value_node, loader, name, path, error, seen)


def seed_of(raw: dict[str, Any]) -> int:
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ParamsError(f"params.yaml: seed must be a non-negative integer, got {seed!r}")
    return seed


def section(cls: type[T], raw: dict[str, Any], name: str) -> T:
    """Build ``cls`` from ``raw[name]`` (missing keys take the dataclass defaults)."""
    data = raw.get(name, {})
    if data is None:
        data = {}
    return _build(cls, data, name)


def _build(cls: type[T], data: Any, where: str) -> T:
    if not isinstance(data, dict):
        raise ParamsError(f"params.yaml: {where} must be a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ParamsError(
            f"params.yaml: {', '.join(f'{where}.{k}' for k in unknown)} is not a parameter of {where} "
            f"(known: {', '.join(sorted(fields))})"
        )
    hints = typing.get_type_hints(cls)
    values = {k: _convert(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    obj = cls(**values)
    check = getattr(obj, "validate", None)
    if check is not None:
        try:
            check()
        except ParamsError as err:
            message = str(err)
            if "got " not in message and hasattr(err, "field"):
                try:
                    value = _value_at(obj, err.field)
                    message += f", got {list(value) if isinstance(value, tuple) else value!r}"  # a YAML list
                except LookupError:
                    pass
            raise ParamsError(f"params.yaml: {where}.{message}") from None
    return obj


def _convert(value: Any, hint: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        mappings = [a for a in options if typing.get_origin(a) is dict]
        if isinstance(value, dict) and mappings:  # a mapping's own errors name the bad entry
            return _convert(value, mappings[0], where)
        errors = []
        for option in options:
            try:
                return _convert(value, option, where)
            except ParamsError as err:
                errors.append(str(err))
        raise ParamsError(errors[0] if len(errors) == 1 else f"params.yaml: {where} has an invalid value {value!r}")
    if origin is Literal:
        if value not in args:
            raise ParamsError(f"params.yaml: {where} must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ParamsError(f"params.yaml: {where} must be a mapping, got {value!r}")
        key_hint, item_hint = args or (Any, Any)
        return {_convert(k, key_hint, f"{where} key {k!r}"): _convert(v, item_hint, f"{where}.{k}") for k, v in value.items()}
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ParamsError(f"params.yaml: {where} must be a list, got {value!r}")
        item = args[0] if args else Any
        return tuple(_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if hint is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"params.yaml: {where} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"params.yaml: {where} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamsError(f"params.yaml: {where} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ParamsError(f"params.yaml: {where} must be a string, got {value!r}")
        return value
    if hint is Any:
        return value
    raise TypeError(f"unsupported parameter type {hint} for {where}")


def require(condition: bool, field: str, message: str) -> None:
    """Raise a ParamsError for ``field`` (relative to its section) unless ``condition``; the section's
    parser adds the offending value."""
    if not condition:
        err = ParamsError(f"{field} {message}")
        err.field = field  # type: ignore[attr-defined]
        raise err


def lookup(raw: Any, dotted: str) -> Any:
    """``raw``'s value at ``a.b`` in nested mappings; None where a part is missing."""
    for part in dotted.split("."):
        if not isinstance(raw, dict) or part not in raw:
            return None
        raw = raw[part]
    return raw


def _value_at(obj: Any, dotted: str) -> Any:
    """``obj.a.b`` (attributes or mapping keys, compared as text); raises LookupError when absent."""
    for part in dotted.split("."):
        if isinstance(obj, dict):
            match = [v for k, v in obj.items() if str(k) == part]
            if not match:
                raise LookupError(dotted)
            obj = match[0]
        elif hasattr(obj, part):
            obj = getattr(obj, part)
        else:
            raise LookupError(dotted)
    return obj


def to_dict(obj: Any) -> dict[str, Any]:
    """Parameters as plain data (tuples → lists) for metrics files and artifacts."""
    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(obj))
