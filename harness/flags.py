"""Command-line flags from config dataclasses: one flag per field, its help the field's comment.

A config is declared once, as a dataclass whose fields carry a trailing comment:

    max_new_tokens: int | None = None  # token limit per response (default 256)

and becomes `--max-new-tokens N` with that help, its default shown. Comment lines right
below a field continue its help. A nested config's fields become flags too, named with the
nested class's `FLAG_PREFIX` (default: the field's name and a dash, as in `--eval-limit`);
fields named in a class's `NOT_FLAGS` are set by the program, not by the user. A class's
`CHOICES` (field -> the registry of its allowed values) gives the flag its choices and is
what `check_choices` holds a config to. The same dataclasses are read from mappings
(`from_mapping`: the recipe files), so flags and files set the same fields the same way,
with one difference: a file is data. A class's `COMMAND_LINE_ONLY` (field -> a function
saying what a value names, or None when it names nothing to trust) lists the fields that
can name code to import or a network destination to which credentials go; a file that sets
one of them to such a value is refused, naming the field and its flag.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import inspect
import io
import re
import tokenize
import typing

from vrbench.errors import VrbenchError


@functools.cache
def _comments(cls) -> dict[str, str]:
    """field name -> its comment, from the class body's source (empty if unavailable)."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    out: dict[str, str] = {}
    last: str | None = None  # the field whose comment may continue on the next lines
    line_of_field: dict[int, str] = {}  # source row -> the field declared there
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        row, col = tok.start
        if tok.type == tokenize.NAME and col == 4 and tok.line.strip().startswith(
                f"{tok.string}:"):
            line_of_field[row], last = tok.string, None
        elif tok.type == tokenize.COMMENT:
            text = tok.string.lstrip("#").strip()
            if row in line_of_field:  # a trailing comment
                last = line_of_field[row]
                out[last] = text
            elif last is not None and not text.startswith("--"):  # its continuation
                out[last] += " " + text
            else:
                last = None
        elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                              tokenize.DEDENT) and row not in line_of_field:
            last = None
    return out


# a field comment's note of its own default, dropped where a subclass or parent
# config sets another
_UNSET_NOTE = re.compile(r"\s*\([^()]*\b(?:default|when not set)\b[^()]*\)")


def field_help(cls) -> dict[str, str]:
    """The help of every field of `cls`, from the most derived class that comments it (its
    note of the default dropped where a subclass sets another)."""
    out: dict[str, str] = {}
    commented_default = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass):
            said = _comments(klass)
            out |= said
            commented_default |= {f.name: _default(f) for f in dataclasses.fields(klass)
                                  if f.name in said}
    final = {f.name: _default(f) for f in dataclasses.fields(cls)}
    return {name: text if commented_default.get(name) == final.get(name)
            else _UNSET_NOTE.sub("", text) for name, text in out.items()}


def choices(cls) -> dict[str, tuple]:
    """field -> its allowed values, from `CHOICES` along the class's bases."""
    out: dict[str, tuple] = {}
    for klass in reversed(cls.__mro__):
        out |= {k: tuple(v) for k, v in vars(klass).get("CHOICES", {}).items()}
    return out


def check_choices(cfg) -> None:
    """Refuse a field outside its `CHOICES` in one sentence (None: not set)."""
    for name, allowed in choices(type(cfg)).items():
        value = getattr(cfg, name)
        if value is not None and value not in allowed:
            raise VrbenchError(f"--{name.replace('_', '-')} must be one of "
                               f"{', '.join(map(str, allowed))}, not {value!r}.")


def _kind(tp) -> str:
    """bool, int, float, str, tuple_float, tuple_int or tuple_str, from a field's type."""
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


def _prefix(name: str, tp) -> str:
    return getattr(tp, "FLAG_PREFIX", f"{name}_")


def add_options(parser: argparse.ArgumentParser, cls, prefix: str = "",
                required: tuple[str, ...] = (), within=None) -> None:
    """One flag per field of `cls` (and of its nested configs). `within` is the parent's
    default instance of a nested config."""
    hints = typing.get_type_hints(cls)
    helps = field_help(cls)
    allowed = choices(cls)
    skip = getattr(cls, "NOT_FLAGS", ())
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        tp = hints[f.name]
        default = _default(f, within)
        if dataclasses.is_dataclass(tp):
            add_options(parser, tp, prefix=prefix + _prefix(f.name, tp), within=default)
            continue
        flag = "--" + (prefix + f.name).replace("_", "-")
        dest = prefix + f.name
        kind = _kind(tp)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        text = helps.get(f.name, "").replace("%", "%%")
        if within is not None and default != _default(f):  # the parent's own default
            text = _UNSET_NOTE.sub("", text)
        if f.name in required:
            help_ = (text + " " if text else "") + "(required)"
        elif "(default" in text or default is None:  # the comment says what unset means
            help_ = text
        else:
            help_ = (text + " " if text else "") + f"(default: {shown})"
        if kind == "bool":
            parser.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction,
                                default=default, help=help_)
        elif kind.startswith("tuple"):
            conv = {"tuple_float": float, "tuple_int": int}.get(kind, str)
            # tuple[X, ...]: one or more; tuple[X, X]: two, counted by the config's check
            # (one sentence, as for any other value)
            size = len(typing.get_args(tp))
            count = "one or more" if Ellipsis in typing.get_args(tp) else f"{size} values"
            parser.add_argument(flag, dest=dest, default=default, nargs="+", type=conv,
                                help=f"{help_}, {count}")
        else:
            conv = {"int": int, "float": float, "str": str}[kind]
            parser.add_argument(flag, dest=dest, type=conv, default=default,
                                choices=allowed.get(f.name), required=f.name in required,
                                help=help_)


def build(cls, args: argparse.Namespace, prefix: str = "", within=None):
    """The config the parsed `args` describe (fields that are not flags keep their
    defaults)."""
    hints = typing.get_type_hints(cls)
    skip = getattr(cls, "NOT_FLAGS", ())
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            kwargs[f.name] = build(tp, args, prefix + _prefix(f.name, tp), _default(f, within))
        else:
            value = getattr(args, prefix + f.name)
            kwargs[f.name] = tuple(value) if isinstance(value, list) else value
    if within is not None:
        return dataclasses.replace(within, **kwargs)
    return cls(**kwargs)


def command_line_only(cls) -> dict:
    """field -> what a value of it names that only the command line may set (a function of
    the value, None when harmless), from `COMMAND_LINE_ONLY` along the class's bases."""
    out: dict = {}
    for klass in reversed(cls.__mro__):
        out |= vars(klass).get("COMMAND_LINE_ONLY", {})
    return out


def from_mapping(cls, spec: dict, where: str, within=None, prefix: str = ""):
    """`cls` with the fields `spec` sets (a nested config from a nested mapping), over
    `within`, an instance, for nested configs; `where` names the source in errors. A file is
    data: a field of `COMMAND_LINE_ONLY` set to code or a destination is refused."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(map(str, set(spec) - set(fields)))
    if unknown:
        raise VrbenchError(f"{where} sets unknown field(s) {', '.join(unknown)} of "
                           f"{cls.__name__}.")
    trusted = command_line_only(cls)
    kwargs = {}
    for name, value in spec.items():
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                raise VrbenchError(f"{where}: {name} must be a mapping of its fields.")
            kwargs[name] = from_mapping(tp, value, where, _default(fields[name]),
                                        prefix + _prefix(name, tp))
            continue
        kwargs[name] = tuple(value) if isinstance(value, list) else value
        if name in trusted and (names := trusted[name](kwargs[name])):
            flag = "--" + (prefix + name).replace("_", "-")
            raise VrbenchError(f"{where} sets {flag} to {names}, which only the command line "
                               f"may set (a file is data); remove it from the file and pass "
                               f"{flag} yourself if you trust it.")
    try:
        return dataclasses.replace(within, **kwargs) if within is not None else cls(**kwargs)
    except TypeError as e:
        raise VrbenchError(f"{where}: {e}.") from e
