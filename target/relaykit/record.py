"""Frozen records: what `@dataclass(frozen=True)` gave relaykit's values, without importing
dataclasses (it imports inspect, ast, dis, tokenize and enum: a quarter of the start-up
imports of `relaykit configure`, issue 19).

    @record
    class Table:
        \"\"\"A docstring.\"\"\"

        name: str
        lines: tuple[str, ...] = ()
        params: dict[str, str] = field(default_factory=dict)
        decisions: dict = field(default_factory=dict, compare=False, repr=False)

The fields are the class's own annotations, in order (with `from __future__ import
annotations` they are strings: only their names matter). A class attribute is a field's
default; field() gives instead a default_factory (a new value for each record) and
compare=False / repr=False. As dataclasses does, unless the class defines them itself:
__init__ (positional or keyword arguments), __repr__, __eq__ (same class, the compared
fields), __hash__ (of the compared fields), __match_args__; assigning or deleting an
attribute raises FrozenInstanceError. replace(record, **changes) makes a changed copy.
"""

from __future__ import annotations

from operator import attrgetter

_MISSING = object()


class FrozenInstanceError(AttributeError):
    """An attribute of a record was assigned or deleted."""


class Field:
    __slots__ = ("name", "default", "default_factory", "compare", "repr")

    def __init__(self, default=_MISSING, default_factory=_MISSING, compare: bool = True, repr: bool = True) -> None:
        self.name = ""
        self.default, self.default_factory, self.compare, self.repr = default, default_factory, compare, repr


def field(*, default=_MISSING, default_factory=_MISSING, compare: bool = True, repr: bool = True) -> Field:
    """A field's options (as dataclasses.field): its default or default_factory, and
    whether it takes part in ==, hash() and repr()."""
    if default is not _MISSING and default_factory is not _MISSING:
        raise ValueError("cannot give both default and default_factory")
    return Field(default, default_factory, compare, repr)


def record(cls: type) -> type:
    """Make `cls` a frozen record (see the module's docstring)."""
    fields = []
    for name in cls.__dict__.get("__annotations__", {}):
        value = cls.__dict__.get(name, _MISSING)
        spec = value if isinstance(value, Field) else Field(default=value)
        spec.name = name
        if spec.default is _MISSING:
            if name in cls.__dict__:
                delattr(cls, name)  # a Field with a factory: no class attribute
        else:
            setattr(cls, name, spec.default)
        if fields and spec.default is _MISSING and spec.default_factory is _MISSING and (
                fields[-1].default is not _MISSING or fields[-1].default_factory is not _MISSING):
            raise TypeError(f"{cls.__name__}: non-default field {name!r} follows a default field")
        fields.append(spec)
    cls.__record_fields__ = tuple(fields)
    names = tuple(f.name for f in fields)
    compared = tuple(f.name for f in fields if f.compare)
    _add(cls, "__init__", _init(cls, fields))
    _add(cls, "__repr__", _repr(tuple(f.name for f in fields if f.repr)))
    _add(cls, "__eq__", _eq(compared))
    # As dataclasses (eq and frozen): hashable by the compared fields, unless the class
    # defines __hash__ itself (defining only __eq__ leaves __hash__ None in its dict).
    explicit = cls.__dict__.get("__hash__", _MISSING)
    if explicit is _MISSING or (explicit is None and "__eq__" in cls.__dict__):
        cls.__hash__ = _hash(compared)
    cls.__setattr__ = _frozen_setattr
    cls.__delattr__ = _frozen_delattr
    _add(cls, "__match_args__", names)
    return cls


def replace(obj, **changes):
    """A copy of the record `obj` with these fields changed (as dataclasses.replace)."""
    for spec in obj.__record_fields__:
        if spec.name not in changes:
            changes[spec.name] = getattr(obj, spec.name)
    return obj.__class__(**changes)


def fields(obj) -> tuple[Field, ...]:
    """The record's (or record class's) fields, in order."""
    return obj.__record_fields__


def _add(cls: type, name: str, value: object) -> None:
    if name not in cls.__dict__:
        setattr(cls, name, value)


def _init(cls: type, fields: list[Field]):
    """__init__ compiled for these fields, as dataclasses does: one assignment a field, the
    fastest way to make the 100k records `setup relay list` may resolve."""
    params, body, scope = [], [], {"_MISSING": _MISSING, "_set": object.__setattr__}
    for spec in fields:
        name = spec.name
        if spec.default_factory is not _MISSING:
            scope[f"_factory_{name}"] = spec.default_factory
            params.append(f"{name}=_MISSING")
            body.append(f"  _set(self, {name!r}, _factory_{name}() if {name} is _MISSING else {name})")
        else:
            if spec.default is not _MISSING:
                scope[f"_default_{name}"] = spec.default
                params.append(f"{name}=_default_{name}")
            else:
                params.append(name)
            body.append(f"  _set(self, {name!r}, {name})")
    source = f"def __init__(self, {', '.join(params)}):\n" + ("\n".join(body) or "  pass") + "\n"
    exec(source, scope)  # noqa: S102 (our own field names, checked by Python as identifiers)
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _repr(names: tuple[str, ...]):
    def __repr__(self) -> str:
        return f"{type(self).__qualname__}({', '.join(f'{n}={getattr(self, n)!r}' for n in names)})"
    return __repr__


def _values(names: tuple[str, ...]):
    """The compared fields of a record as a tuple, by a C getter: no code compiled per
    class (exec's compile is ~0.15 ms here, and `relaykit configure` imports 18 records)."""
    if len(names) > 1:
        return attrgetter(*names)
    if names:
        get = attrgetter(names[0])
        return lambda obj: (get(obj),)
    return lambda obj: ()


def _eq(names: tuple[str, ...]):
    """As dataclasses: the fields compared as tuples (an identical value is equal at once)."""
    values = _values(names)

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return values(self) == values(other)
    return __eq__


def _hash(names: tuple[str, ...]):
    values = _values(names)

    def __hash__(self):
        return hash(values(self))
    return __hash__


def _frozen_setattr(self, name: str, value: object) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")
