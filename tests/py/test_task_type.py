"""``orroute.Task`` as a type: how it is called, subclassed, copied, compared, collected and
introspected. Its checks and what it keeps of each argument are test_task_checks.py's."""

from __future__ import annotations

import copy
import gc
import importlib.util
import inspect
import pickle
import shutil
import subprocess
import sys
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import orroute
from orroute import Task, _engine

FIELDS = ("id", "type", "messages", "input_size", "max_tokens", "project", "capabilities",
          "quality", "budget", "conversation", "tags", "params", "cache", "compress")


def test_arguments_by_position_and_by_keyword() -> None:
    t = Task("mine", "coding", "hi", 7, 9, "p")
    assert (t.id, t.type, t.messages, t.input_size, t.max_tokens, t.project) == (
        "mine", "coding", [{"role": "user", "content": "hi"}], 7, 9, "p")
    assert Task(**{"messages": "hi", "max_tokens": 3}).max_tokens == 3  # noqa: PIE804
    key = "".join(["max_", "tokens"])  # noqa: FLY002  # a keyword, not the interned name
    assert Task(messages="hi", **{key: 4}).max_tokens == 4
    with pytest.raises(TypeError, match=r"Task.__init__\(\) got an unexpected keyword argument 'tokens'"):
        Task(messages="hi", tokens=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="got multiple values for argument 'id'"):
        Task("a", id="b")  # type: ignore[misc]
    with pytest.raises(TypeError, match="takes from 1 to 15 positional arguments but 16 were given"):
        Task(*range(15))  # type: ignore[misc]


def test_the_signature_and_the_docs() -> None:
    sig = inspect.signature(Task)
    assert tuple(sig.parameters) == FIELDS
    assert sig.parameters["type"].default == "general" and sig.parameters["cache"].default is True
    assert "A task for a model" in (Task.__doc__ or "")
    assert "Task.coerce" in (Task.coerce.__doc__ or "")
    assert (Task.__module__, Task.__qualname__) == ("orroute.task", "Task")
    assert sorted(Task.__slots__) == sorted(FIELDS)


def test_messages_of_every_kind() -> None:
    class Msg(Mapping[str, str]):  # a mapping that is not a dict
        def __getitem__(self, key: str) -> str:
            return {"role": "user", "content": "m"}[key]

        def __iter__(self) -> Iterator[str]:
            return iter(("role", "content"))

        def __len__(self) -> int:
            return 2

    class Msgs(list[Any]):
        pass

    m = Msg()
    assert Task(messages=[m]).messages == [m]
    t = Task(messages=Msgs([{"role": "user"}]))
    assert t.messages.__class__ is list and t.messages == [{"role": "user"}]
    assert Task(messages=(d for d in [{"role": "a"}])).messages == [{"role": "a"}]
    assert Task().messages == [] and Task().messages is not Task().messages
    with pytest.raises(TypeError, match="not iterable"):
        Task(messages=5)  # type: ignore[arg-type]


@pytest.mark.parametrize("kw, error, words", [
    ({"max_tokens": -2**100}, orroute.InvalidArgumentError, "max_tokens must be >= 1, got -1267"),
    ({"max_tokens": "3"}, TypeError, "'<' not supported"),
    ({"input_size": -0.5}, orroute.InvalidArgumentError, "input_size must be >= 0, got -0.5"),
    ({"quality": float("nan")}, orroute.InvalidArgumentError, r"quality must be in \[0, 1\], got nan"),
    ({"quality": -0.1}, orroute.InvalidArgumentError, r"quality must be in \[0, 1\], got -0.1"),
    ({"quality": "x"}, TypeError, "'<=' not supported"),
], ids=["huge-negative", "str-max-tokens", "float-input-size", "nan-quality", "negative-quality",
        "str-quality"])
def test_numbers_compared_as_python_compares_them(kw: dict[str, Any], error: type[Exception],
                                                   words: str) -> None:
    with pytest.raises(error, match=words):
        Task(messages="hi", **kw)
    assert Task(messages="hi", max_tokens=2**100).max_tokens == 2**100


class _Bad:
    def __bool__(self) -> bool:
        raise ZeroDivisionError("no truth")


def test_an_error_in_a_truth_test_is_raised() -> None:
    for field in ("params", "capabilities", "tags", "cache"):
        with pytest.raises(ZeroDivisionError):
            Task(messages="hi", **{field: _Bad()})


class _Lower(Task):
    """A subclass's property over a field: the constructor assigns it as Python would."""

    @property  # type: ignore[override]
    def project(self) -> str | None:
        return self._project

    @project.setter
    def project(self, value: str | None) -> None:
        self._project = value.lower() if value else value


class _Own(Task):
    __slots__ = Task.__slots__  # the same names again, as this class's own slots

    def __init__(self, note: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.note = note  # type: ignore[attr-defined]


class _Noted(Task):
    def __init__(self, note: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.note = note


def test_a_subclass_is_made_and_read_as_python_makes_and_reads_it() -> None:
    t = _Lower(messages="hi", project="ABC")
    assert t.project == "abc" and t.max_tokens is None and isinstance(t, Task)
    assert _engine.task_request(t).project == "abc"  # the engine reads it by name
    with pytest.raises(AttributeError):
        _Own("n", messages="hi")  # __slots__ has no `note`

    n = _Noted("n", messages="hi", max_tokens=5)
    assert (n.note, n.max_tokens, n.messages) == ("n", 5, [{"role": "user", "content": "hi"}])
    assert _engine.task_request(n).request_json.count('"max_tokens":5') == 1
    back = pickle.loads(pickle.dumps(n))
    assert back == n and back.note == "n" and type(back) is _Noted
    assert copy.deepcopy(n) == n

    class Relaid(Task):
        __slots__ = ("extra", *Task.__slots__)

    r = Relaid(messages="hi", max_tokens=6, id="r")
    assert (r.id, r.max_tokens) == ("r", 6)  # the subclass's own slots hold them
    with pytest.raises(AttributeError):  # not in Task's own slot, which Relaid's hides
        Task.max_tokens.__get__(r)  # type: ignore[attr-defined]
    assert _engine.task_request(r).task_id == "r"


def test_copies_pickles_and_equality() -> None:
    t = Task(messages="hi", max_tokens=5, budget="0.5", tags={"u": "a"}, params={"temperature": 0})
    for other in (copy.copy(t), copy.deepcopy(t), pickle.loads(pickle.dumps(t))):
        assert other == t and (other != t) is False and other is not t and type(other) is Task
    assert copy.deepcopy(t).messages is not t.messages
    u = copy.copy(t)
    u.max_tokens = 6
    assert u != t and (u == t) is False
    assert (t == 1) is False and (t != 1) is True
    assert t.__eq__(1) is NotImplemented
    assert Task.__hash__ is None
    with pytest.raises(TypeError, match="unhashable"):
        hash(t)


@pytest.mark.parametrize("protocol", [0, 1])
@pytest.mark.parametrize("cls", [Task, _Noted], ids=["Task", "subclass"])
def test_pickle_protocols_0_and_1_are_a_type_error(cls: type[Task], protocol: int) -> None:
    # they rebuild an instance by calling its C base with it (copyreg._reduce_ex): a subclass's
    # raised InvalidArgumentError; TypeError is what Python raises for what they cannot pickle
    t = cls(note="n", messages="hi") if cls is _Noted else cls(messages="hi")
    with pytest.raises(TypeError, match=f"cannot pickle '{cls.__name__}' object with protocol "
                                        f"{protocol}: a Task needs protocol 2 or higher"):
        pickle.dumps(t, protocol=protocol)
    assert pickle.loads(pickle.dumps(t, protocol=2)) == t


def test_fields_are_writable_and_nothing_else() -> None:
    t = Task(messages="hi")
    t.max_tokens = 10
    t.messages = ["anything"]  # type: ignore[list-item]
    assert (t.max_tokens, t.messages) == (10, ["anything"])
    with pytest.raises(AttributeError):
        t.other = 1  # type: ignore[attr-defined]
    del t.project
    with pytest.raises(AttributeError, match="project"):
        _ = t.project
    with pytest.raises(AttributeError, match="project"):
        repr(t)
    with pytest.raises(TypeError):
        weakref.ref(t)
    assert repr(Task(id="x", messages="hi", max_tokens=3, project="p", budget="1")) == (
        "Task(id='x', type='general', messages=<1>, max_tokens=3, project='p', "
        "budget=Decimal('1'))")


def test_init_again_replaces_the_fields() -> None:
    t = Task(id="a", messages="hi", max_tokens=5, project="p")
    t.__init__(id="b", messages="yo")  # type: ignore[misc]
    assert (t.id, t.max_tokens, t.project, t.messages[0]["content"]) == ("b", None, None, "yo")
    with pytest.raises(orroute.InvalidArgumentError):
        t.__init__(messages="x", max_tokens=0)  # type: ignore[misc]
    assert t.id == "b"  # refused before anything was stored


def test_a_task_in_a_cycle_is_collected() -> None:
    class Marker:
        task: Any = None

    m = Marker()
    t = Task(messages="hi", params={"m": m})
    m.task = t
    seen = weakref.ref(m)
    assert gc.is_tracked(t)
    del t, m
    gc.collect()
    assert seen() is None


def test_import_orroute_loads_task_but_not_the_core() -> None:
    code = ("import sys, orroute; orroute.Task; "
            "print('orroute._core' in sys.modules, 'orroute._task' in sys.modules)")
    env = {"PYTHONPATH": str(Path(orroute.__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=env, timeout=60).stdout
    assert out.split() == ["False", "True"]


def _other_pythons() -> dict[str, tuple[str, str]]:
    """tools/other_python.py's: CPythons of other versions found here, with their headers."""
    path = Path(__file__).resolve().parents[2] / "tools" / "other_python.py"
    spec = importlib.util.spec_from_file_location("other_python", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.other_pythons()  # type: ignore[no-any-return]


def test_the_c_type_compiles_for_every_cpython_the_package_supports() -> None:
    """cpp/pyext/task.c is built for every CPython from 3.10 (pyproject's requires-python): it
    compiles against the headers of each other version found here, warning-free as CMake builds
    it (3.10's headers have no Py_ALWAYS_INLINE, a 3.11 macro)."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    includes = [include for _, include in _other_pythons().values()]
    if cc is None or not includes:
        pytest.skip("no C compiler or no CPython of another version with its headers here")
    source = Path(__file__).resolve().parents[2] / "cpp" / "pyext" / "task.c"
    for include in includes:
        out = subprocess.run([cc, "-fsyntax-only", "-std=c11", "-Wall", "-Wextra", "-Wpedantic",
                              "-Wshadow", "-Werror", f"-I{include}", str(source)],
                             check=False, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, (include, out.stderr[-2000:])


class _Hostile:
    """Raises from every operation the constructor may ask of a value."""

    def _no(self, *args: Any) -> Any:
        raise RuntimeError("hostile")

    __bool__ = __lt__ = __le__ = __eq__ = __iter__ = __len__ = __contains__ = _no
    __getitem__ = __format__ = __str__ = __repr__ = __float__ = __index__ = keys = _no
    __hash__ = None  # type: ignore[assignment]


def test_any_arguments_give_a_task_or_an_exception() -> None:
    # every byte from a caller is hostile: whatever the values, the constructor returns or
    # raises (an ordinary exception), never crashes, and a task made is whole
    import random

    values = [None, 0, -1, 1, 1.5, float("nan"), -2**70, 2**70, True, False, "", "x", "coding",
              b"x", (), [], [{"role": "user"}], [1], ({"role": "a"},), {"role": "x"}, {1: 2},
              {"temperature": 0}, {"model": "m"}, object(), _Hostile(), [_Hostile()],
              {"k": _Hostile()}, iter([{"role": "u"}])]
    rng = random.Random(23)
    made = 0
    for _ in range(3000):
        kw = {f: rng.choice(values) for f in rng.sample(FIELDS, rng.randint(1, len(FIELDS)))}
        kw.pop("compress", None)  # a Compression's own checks: tests/py/test_compress*.py
        try:
            t = Task(**kw)
        except Exception:  # noqa: BLE001, S112  (any ordinary error is an answer)
            continue
        made += 1
        for f in FIELDS:
            getattr(t, f)  # every field set
        assert t.messages.__class__ is list and t.params.__class__ is dict
    assert made > 0
