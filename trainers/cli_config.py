"""Command-line options from the trainers' config dataclasses, so that every field of
`SFTConfig` / `RLConfig` (and their `optim` and `eval` parts) is settable as a flag."""

from __future__ import annotations

import argparse
import dataclasses
import typing


def _kind(tp) -> str:
    """bool, int, float, str, tuple_float or tuple_str, from a field's (resolved) type."""
    if typing.get_origin(tp) is tuple:
        inner = typing.get_args(tp)[0]
        return {float: "tuple_float", int: "tuple_int"}.get(inner, "tuple_str")
    args = [a for a in typing.get_args(tp) if a is not type(None)]  # X | None -> X
    base = args[0] if args else tp
    return {bool: "bool", int: "int", float: "float"}.get(base, "str")


def _default(f: dataclasses.Field, within=None):
    if within is not None:
        return getattr(within, f.name)
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def add_options(parser: argparse.ArgumentParser, cls, prefix: str = "",
                required: tuple[str, ...] = (), within=None) -> None:
    """One flag per field; nested configs' flags are plain (`--lr`), but for `eval`
    (`--eval-limit`). `within` is the parent's default instance of a nested config."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        default = _default(f, within)
        if dataclasses.is_dataclass(tp):
            add_options(parser, tp, prefix=f"{f.name}_" if f.name == "eval" else "",
                        within=default)
            continue
        flag = "--" + (prefix + f.name).replace("_", "-")
        dest = prefix + f.name
        kind = _kind(tp)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        help_ = f"(default: {shown})" if f.name not in required else "(required)"
        if kind == "bool":
            parser.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction,
                                default=default, help=help_)
        elif kind.startswith("tuple"):
            conv = {"tuple_float": float, "tuple_int": int}.get(kind, str)
            parser.add_argument(flag, dest=dest, default=default, nargs="+", type=conv,
                                help=help_ + ", one or more")
        else:
            conv = {"int": int, "float": float, "str": str}[kind]
            parser.add_argument(flag, dest=dest, type=conv, default=default,
                                required=f.name in required, help=help_)


def build(cls, args: argparse.Namespace, prefix: str = ""):
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            kwargs[f.name] = build(tp, args, prefix=f"{f.name}_" if f.name == "eval" else "")
        else:
            value = getattr(args, prefix + f.name)
            kwargs[f.name] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)
