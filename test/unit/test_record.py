"""relaykit/record.py behaves as @dataclass(frozen=True) did for relaykit's values: the same
class written both ways gives the same repr, ==, hash, defaults, replace() and refusals."""

from __future__ import annotations

import dataclasses

import pytest

from relaykit import record as rec


def _both():
    @dataclasses.dataclass(frozen=True)
    class Table:
        """A table."""

        name: str
        lines: tuple = ()
        params: dict = dataclasses.field(default_factory=dict)
        decisions: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)
        secret: bool = False

    @rec.record
    class Table2:  # noqa: F811 (the same class, as a record)
        """A table."""

        name: str
        lines: tuple = ()
        params: dict = rec.field(default_factory=dict)
        decisions: dict = rec.field(default_factory=dict, compare=False, repr=False)
        secret: bool = False

    Table2.__qualname__ = Table.__qualname__
    return (Table, dataclasses.replace, dataclasses.FrozenInstanceError), (Table2, rec.replace, rec.FrozenInstanceError)


@pytest.mark.parametrize("args, kwargs", [
    (("t",), {}),
    (("t", ("a b",)), {"secret": True}),
    ((), {"name": "t", "params": {"x": "1"}, "decisions": {"k": 1}}),
])
def test_a_record_is_what_the_frozen_dataclass_was(args, kwargs):
    (cls, replace, frozen), (rcls, rreplace, rfrozen) = _both()
    made, remade = cls(*args, **kwargs), rcls(*args, **kwargs)
    assert repr(made) == repr(remade)
    assert [getattr(made, f.name) for f in dataclasses.fields(made)] == [getattr(remade, f.name)
                                                                          for f in rec.fields(remade)]
    other, reother = replace(made, decisions={"other": 2}), rreplace(remade, decisions={"other": 2})
    assert (made == other) == (remade == reother) is True  # decisions are not compared
    changed, rechanged = replace(made, lines=("x y",)), rreplace(remade, lines=("x y",))
    assert (made == changed) == (remade == rechanged) is False
    assert remade != made  # another class: not equal, whatever the values
    for either in (made, remade):  # hashed by the compared fields: a dict among them is unhashable
        with pytest.raises(TypeError):
            hash(either)
    with pytest.raises(rfrozen):
        remade.name = "other"
    with pytest.raises(AttributeError):
        del remade.lines
    assert rcls.__match_args__ == cls.__match_args__
    assert rcls("a").params is not rcls("a").params  # a new default each time


def test_a_record_of_hashable_fields_hashes_by_the_compared_ones():
    @rec.record
    class Decision:
        """A decision."""

        nexthops: tuple
        relay_only: bool = False
        note: str = rec.field(default="", compare=False)

    assert hash(Decision(("a",), True, "x")) == hash(Decision(("a",), True, "y")) == hash((("a",), True))
    assert len({Decision(("a",)), Decision(("a",), note="z"), Decision(("b",))}) == 2


def test_a_non_default_field_after_a_default_one_is_refused_as_by_dataclasses():
    with pytest.raises(TypeError):
        @rec.record
        class Bad:
            """Bad."""

            first: int = 0
            second: int


def test_equal_records_compare_their_fields_as_tuples():
    """An identical value is equal at once, as in dataclasses: no elementwise pass over a
    100k-line tuple shared by two records (core/replan compares the inputs that way)."""
    (_, _, _), (rcls, _, _) = _both()

    class Costly(tuple):
        def __eq__(self, other):
            raise AssertionError("compared element by element")

        __hash__ = tuple.__hash__

    lines = Costly(("a b",))
    assert rcls("t", lines) == rcls("t", lines)
