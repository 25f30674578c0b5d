"""Answer verifiers: check a model's answer before accepting it, escalate when the check fails.

Built in (the checks run in the C++ core; a hostile answer gives a failed verdict, never an
exception): :func:`json_valid`, :func:`json_schema`, :func:`tool_calls`, :func:`arithmetic`,
:func:`code` (runs the answer's code and the given tests in a subprocess with time and memory
limits), :func:`self_consistency` (k samples must agree) and :class:`EscalationScorer` (a learned
"will the strong model do better" probability). A verifier is any callable taking an
:class:`Answer` and returning a :class:`Verdict`, a bool (pass/fail) or None (abstain); register
one by name in a line:

>>> import orroute.verify as v
>>> v.register_verifier("short", lambda a: len(a.content) < 2000)
>>> v.get_verifier("short")(v.Answer(prompt="hi", content="hello")).outcome
'pass'
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from . import _core
from ._exceptions import InvalidArgumentError

__all__ = [
    "Answer",
    "EscalationScorer",
    "OperatingPoint",
    "Verdict",
    "Verifier",
    "answer_key",
    "arithmetic",
    "as_verdict",
    "choose_operating_point",
    "code",
    "get_verifier",
    "json_schema",
    "json_valid",
    "register_verifier",
    "run_python",
    "run_verifiers",
    "sandbox_report",
    "self_consistency",
    "tool_calls",
    "verifier_names",
]

Outcome = Literal["pass", "fail", "abstain"]
_OUTCOMES: dict[Any, Outcome] = {
    _core.VerdictOutcome.PASS: "pass",
    _core.VerdictOutcome.FAIL: "fail",
    _core.VerdictOutcome.ABSTAIN: "abstain",
}


@dataclass(frozen=True)
class Verdict:
    """One verifier's judgement: ``outcome`` ``"pass"``/``"fail"``/``"abstain"``, ``score`` in
    [0, 1] (confidence that the answer is acceptable), ``reason`` and the verifier's ``name``."""

    outcome: Outcome
    score: float = 0.5
    reason: str = ""
    name: str = ""

    @property
    def failed(self) -> bool:
        return self.outcome == "fail"

    def as_feature(self) -> float:
        """+1 pass, -1 fail, 0 abstain (the escalation model's encoding)."""
        return {"pass": 1.0, "fail": -1.0, "abstain": 0.0}[self.outcome]


@dataclass(frozen=True)
class Answer:
    """What a verifier sees: the prompt (last user message), the answer's text, the whole
    completion (``response``, OpenAI shape: tool calls live there), extra ``samples`` of the same
    stage (self-consistency) and the model."""

    prompt: str
    content: str
    response: Mapping[str, Any] = field(default_factory=dict)
    samples: Sequence[str] = ()
    model: str = ""


Verifier = Callable[[Answer], "Verdict | bool | None"]


def _from_core(v: Any, name: str) -> Verdict:
    return Verdict(_OUTCOMES[v.outcome], float(v.score), str(v.reason), name)


def _named(name: str, fn: Callable[[Answer], Verdict]) -> Verifier:
    fn.__name__ = name
    fn.__qualname__ = name
    return fn


def as_verdict(value: Verdict | bool | None, name: str) -> Verdict:
    """A verifier's return value as a :class:`Verdict` (bool -> pass/fail, None -> abstain)."""
    if isinstance(value, Verdict):
        return value if value.name else Verdict(value.outcome, value.score, value.reason, name)
    if value is None:
        return Verdict("abstain", 0.5, "", name)
    if isinstance(value, bool):
        return Verdict("pass", 1.0, "", name) if value else Verdict("fail", 0.0, "", name)
    raise InvalidArgumentError(f"verifier {name!r} returned {type(value).__name__}, "
                               "expected Verdict, bool or None")


# ---------------------------------------------------------------------------- built-ins


def json_valid() -> Verifier:
    """Pass if the answer contains JSON that parses (bare, fenced, or the outermost {...})."""
    return _named("json_valid", lambda a: _from_core(_core.check_json_reply(a.content), "json_valid"))


def json_schema(schema: Mapping[str, Any] | bool | str) -> Verifier:
    """Pass if the answer's JSON matches ``schema`` (see ``orroute._core.JsonSchema`` for the
    supported keywords; others, e.g. ``pattern``, are not enforced). Raises InvalidArgumentError
    for a schema that is not JSON."""
    text = schema if isinstance(schema, str) else json.dumps(schema)
    compiled = _core.JsonSchema(text)
    return _named("json_schema", lambda a: _from_core(compiled.check_reply(a.content), "json_schema"))


def tool_calls(tools: Sequence[Mapping[str, Any]]) -> Verifier:
    """Pass if every tool call of the answer names an offered tool and its arguments validate
    against that tool's ``parameters`` schema; abstain when the answer makes no tool call."""
    validator = _core.ToolCallValidator(json.dumps(list(tools)))

    def check(a: Answer) -> Verdict:
        calls = _message(a.response).get("tool_calls")
        if not calls:
            return Verdict("abstain", 0.5, "no tool calls", "tool_calls")
        return _from_core(validator.check(json.dumps(calls)), "tool_calls")

    return _named("tool_calls", check)


def arithmetic(*, require_final: bool = True) -> Verifier:
    """Re-evaluates every written calculation (``12 * 15 = 180``, ``<<9*2=18>>``) and checks that
    a final number is given (``#### 18``, "the answer is 18"); fail on any wrong calculation."""

    def check(a: Answer) -> Verdict:
        report = _core.check_calculations(a.content)
        return _from_core(_core.arithmetic_verdict(report, require_final), "arithmetic")

    return _named("arithmetic", check)


_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.DOTALL)


# Code Llama's instruct format wraps its answer in [PYTHON] ... [/PYTHON] instead of a fence
_TAGGED = re.compile(r"\[PYTHON\]\n?(.*?)\[/PYTHON\]", re.DOTALL | re.IGNORECASE)


def extract_code(content: str, language: str = "python") -> str | None:
    """The first fenced code block in ``language`` (or untagged), else for Python the first
    ``[PYTHON]...[/PYTHON]`` block; None if there is none."""
    for tag, body in _FENCE.findall(content):
        if tag.lower() in ("", language, "py" if language == "python" else language):
            return str(body)
    if language == "python" and (m := _TAGGED.search(content)):
        return m.group(1)
    return None


def code(tests: str | Callable[[Answer], str] = "", *, timeout: float = 5.0,
         memory_mb: int = 512, python: str | None = None,
         bind_names: bool = False) -> Verifier:
    """Runs the answer's first Python code block followed by ``tests`` (assert statements; a
    callable gets the Answer and returns them) in a fresh ``python -I`` subprocess in an empty
    temporary directory, with a wall-clock ``timeout``, a CPU limit, an address-space limit of
    ``memory_mb``, a 16 MB file-size limit, 64 open files, a 64 MB / 4096-entry work dir, no
    new processes or threads and no core dumps, confined by the sandbox layers the kernel allows
    (network, PID and IPC namespaces, a read-only mount namespace with a private /proc, Landlock,
    seccomp, uid 65534 or no capabilities as root; :func:`sandbox_report`); where nothing would
    confine the code's files (no uid change, Landlock or mount namespace) it fails. Pass when the
    program runs to its end and exits with status 0 (an answer that exits early, even with 0,
    fails: the tests after it did not run); fail on an error, a failed assert, a timeout or a missing code block. stdout is
    discarded; the reason is the last line of stderr (read from a file, at most its last 64 KB).
    ``bind_names``: when the task did not name the function, the one the tests call is bound to
    the answer's closest top-level function (:func:`bind_entry_point`)."""
    if timeout <= 0 or memory_mb <= 0:
        raise InvalidArgumentError("timeout and memory_mb must be positive")

    def check(a: Answer) -> Verdict:
        source = extract_code(a.content)
        if source is None:
            return Verdict("fail", 0.0, "no python code block", "code")
        suite = tests(a) if callable(tests) else tests
        if bind_names:
            suite = bind_entry_point(source, suite) + suite
        return run_python(source + "\n\n" + suite, timeout=timeout, memory_mb=memory_mb,
                          python=python)

    return _named("code", check)


def called_function(tests: str) -> str | None:
    """The first non-builtin function the tests call by name (``assert f(1) == 2`` -> ``f``)."""
    import ast
    import builtins

    try:
        tree = ast.parse(tests)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and not hasattr(builtins, node.func.id)):
            return node.func.id
    return None


def bind_entry_point(source: str, tests: str) -> str:
    """``"name = closest\\n"`` when ``tests`` call a function ``name`` that ``source`` does not
    define at top level: ``closest`` is its top-level function or class whose name is most like
    ``name`` (difflib ratio; later definitions win ties). ``""`` when nothing needs binding or
    either side does not parse (left to fail when run)."""
    import ast
    import difflib

    name = called_function(tests)
    if name is None:
        return ""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return ""
    defs = [n.name for n in tree.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    if not defs or name in defs:
        return ""
    best = max(reversed(defs), key=lambda d: difflib.SequenceMatcher(None, d.lower(),
                                                                    name.lower()).ratio())
    return f"{name} = {best}\n"


# The supervisor (_sandbox_child.py, run with ``python -I -c``: no preexec_fn in this threaded
# process) confines the code, runs it and reports on stdout which layers held and how it ended.
_SUPERVISOR: list[str] = []
_LOG = logging.getLogger("orroute.verify")
_WARNED: set[tuple[str, ...]] = set()

# Numeric libraries start worker threads at import unless told not to, and the child may not
# create threads (RLIMIT_NPROC 0): one thread each keeps `import numpy` working in the check.
_CHILD_ENV = {"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1", "NUMEXPR_NUM_THREADS": "1"}

# sandbox layers a caller may switch off (tests exercise the fallbacks with it)
# ("namespaces": net, PID, IPC; "mounts": the code's read-only mount namespace, tmpfs and /proc)
SANDBOX_LAYERS = frozenset({"namespaces", "mounts", "uid", "nproc", "landlock", "seccomp"})


def _supervisor_source() -> str:
    if not _SUPERVISOR:
        with open(os.path.join(os.path.dirname(__file__), "_sandbox_child.py"),
                  encoding="utf-8") as f:
            _SUPERVISOR.append(f.read())
    return _SUPERVISOR[0]


def run_python(source: str, *, timeout: float = 5.0, memory_mb: int = 512,
               python: str | None = None, disable: Collection[str] = ()) -> Verdict:
    """Runs ``source`` as described in :func:`code`; the verdict's reason holds the last line of
    stderr (clipped). ``disable`` switches sandbox layers off (:data:`SANDBOX_LAYERS`; for
    tests and diagnosis only: it weakens the sandbox)."""
    if not set(disable) <= SANDBOX_LAYERS:
        raise InvalidArgumentError(f"unknown sandbox layers {sorted(set(disable) - SANDBOX_LAYERS)}")
    ran_to_end = _ran_to_end_line()
    with tempfile.TemporaryDirectory(prefix="orroute-verify-") as tmp:
        path = os.path.join(tmp, "answer.py")
        with open(path, "w", encoding="utf-8", errors="replace") as f:
            f.write(source)
            f.write(f"\n\n__import__('os').write(2, {ran_to_end!r})\n")
        exe = python or sys.executable
        cpu = str(max(1, math.ceil(timeout)))
        # stderr goes to a file (capped by RLIMIT_FSIZE), never to a pipe we would have to buffer;
        # stdout carries only the supervisor's one-line report (the code's stdout is /dev/null)
        with open(os.path.join(tmp, "stderr"), "w+b") as err:
            proc = subprocess.Popen(
                [exe, "-I", "-c", _supervisor_source(), cpu, str(memory_mb << 20), repr(timeout),
                 exe, path, tmp, ",".join(sorted(disable))], cwd=tmp,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                start_new_session=True,  # own process group: the backstop kills all it spawned
                env=_CHILD_ENV | {"PATH": os.environ.get("PATH", "")})
            # the supervisor enforces `timeout`; the deadline is the backstop if it hangs
            out = _read_report(proc, timeout + 10)
            if out is None:
                _kill_group(proc)
                return Verdict("fail", 0.0, f"timed out after {timeout:g} s", "code")
            if len(out) > _REPORT_CAP:
                _kill_group(proc)
                return Verdict("fail", 0.0, "sandbox failed: report larger than "
                               f"{_REPORT_CAP} bytes", "code")
            try:  # its stdout closed: it is exiting (a held copy would have kept it open)
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                return Verdict("fail", 0.0, "sandbox failed: the supervisor did not exit", "code")
            _kill_leftovers(proc.pid)
            err.seek(max(0, os.fstat(err.fileno()).st_size - 65536))
            tail = err.read(65536)
    finished = ran_to_end in tail
    lines = [x for x in tail.decode("utf-8", "replace").strip().splitlines()
             if x != ran_to_end.decode().strip()]
    # fail closed: without the supervisor's word (one line, and a clean exit after it) nothing
    # passes; a second line or a killed supervisor means something else wrote to its stdout
    report = _parse_report(out) if proc.returncode == 0 and out.count(b"\n") == 1 else None
    if report is None:
        last = lines[-1][:120] if lines else f"exit status {proc.returncode}"
        return Verdict("fail", 0.0, f"sandbox failed: {last}", "code")
    _log_layers(report)
    if report["timed_out"]:
        return Verdict("fail", 0.0, f"timed out after {timeout:g} s", "code")
    if report.get("disk_full"):
        return Verdict("fail", 0.0, "wrote more than its work dir may hold (killed if it was still running)", "code")
    how, n = report["status"]
    if how == "exit" and n == 0 and not finished:
        return Verdict("fail", 0.0, "the code exited (status 0) before its end: the tests after "
                       "it did not all run", "code")
    if how == "exit" and n == 0:
        weaker = f"; sandbox without {','.join(report['missing'])}" if report["missing"] else ""
        return Verdict("pass", 1.0, ("code ran and the tests passed" + weaker)[:160], "code")
    if how == "signal":  # a limit hit: SIGXCPU (CPU time), SIGXFSZ (output size), SIGKILL
        import signal

        try:
            name = signal.Signals(n).name
        except ValueError:
            name = f"signal {n}"
        return Verdict("fail", 0.0, f"killed by {name}", "code")
    last = lines[-1][:160] if lines else f"exit status {n}"
    return Verdict("fail", 0.0, last, "code")


def _ran_to_end_line() -> bytes:
    """The stderr line the checked program writes as its last statement, fresh per run. Exit
    status 0 is a pass only with it: an answer that ends the process early (``sys.exit(0)``,
    ``os._exit(0)``, a ``__main__`` block's ``exit()``) would otherwise pass tests that never
    ran. (Code written to defeat the check can still forge it, as it can patch what the tests
    compare: it runs in their interpreter.)"""
    return f"orroute-verify: ran to the end {os.urandom(12).hex()}\n".encode()


# The supervisor's report is one short line; more than this is not its own and is not kept.
_REPORT_CAP = 64 << 10


def _read_report(proc: subprocess.Popen[bytes], timeout: float) -> bytes | None:
    """The supervisor's stdout up to EOF, stopping once it passes ``_REPORT_CAP`` bytes (the
    caller never buffers without bound); None when ``timeout`` passes first."""
    import selectors
    import time

    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    out = bytearray()
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while len(out) <= _REPORT_CAP:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            out += chunk
    proc.stdout.close()
    return bytes(out)


def _parse_report(out: bytes) -> dict[str, Any] | None:
    try:
        report = json.loads(out.decode("utf-8").strip().splitlines()[-1])
        how, n = report["status"]
        if how in ("exit", "signal") and isinstance(n, int) and isinstance(report["layers"], list):
            return dict(report)
    except (ValueError, IndexError, KeyError, TypeError):
        pass
    return None


def _log_layers(report: Mapping[str, Any]) -> None:
    missing = tuple(report.get("missing", ()))
    _LOG.debug("code check sandbox: %s", ",".join(report["layers"]))
    if missing and missing not in _WARNED:
        _WARNED.add(missing)
        _LOG.warning("code check sandbox runs without %s (in force: %s); see docs/routing.md",
                     ", ".join(missing), ", ".join(report["layers"]))


def sandbox_report(python: str | None = None,
                   disable: Collection[str] = ()) -> dict[str, list[str]]:
    """The layers the code sandbox has here (``{"layers": [...], "missing": [...]}``), from a
    run of an empty program; see docs/routing.md for what each one stops. With none of
    ``uid``, ``landlock`` and ``readonly`` among the layers, code checks fail instead of
    running (the code would run as this user, free to read and write its files)."""
    with tempfile.TemporaryDirectory(prefix="orroute-verify-") as tmp:
        path = os.path.join(tmp, "answer.py")
        open(path, "w").close()
        exe = python or sys.executable
        out = subprocess.run(
            [exe, "-I", "-c", _supervisor_source(), "5", str(256 << 20), "10", exe, path, tmp,
             ",".join(sorted(disable))],
            cwd=tmp, stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=False,
            env=_CHILD_ENV).stdout
    report = _parse_report(out)
    if report is None:
        return {"layers": [], "missing": ["supervisor"]}
    return {"layers": list(report["layers"]), "missing": list(report["missing"])}


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def _kill_leftovers(pgid: int) -> None:
    """Kills whatever the child left running in its process group (a forked process that
    outlived it). The group id stays reserved while members live, so this cannot hit others."""
    import signal

    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def answer_key(content: str) -> str:
    """The key samples are compared on: the final number (``"18"``) when there is one after an
    explicit marker, else the option letter / code hash / short text of
    ``orroute.routing.extract_answer``, else the last number; ``""`` for an empty answer."""
    from ._cascade import extract_answer

    final = _core.final_answer(content)
    if final.found and final.marked:
        return f"num:{final.text}"
    key = extract_answer(content)
    if key is not None and len(key) <= 40 and not final.found:
        return key
    if final.found:
        return f"num:{final.text}"
    return key or ""


def self_consistency(k: int = 3, *, min_share: float = 2 / 3,
                     key: Callable[[str], str] = answer_key) -> Verifier:
    """Pass if at least ``min_share`` of the stage's answer and its extra samples (the cascade
    draws ``k - 1`` more) agree on ``key``; fail otherwise; abstain without samples."""
    if k < 2 or not 0 < min_share <= 1:
        raise InvalidArgumentError("self_consistency needs k >= 2 and min_share in (0, 1]")

    def check(a: Answer) -> Verdict:
        if not a.samples:
            return Verdict("abstain", 0.5, "no extra samples", "self_consistency")
        keys = [key(a.content)] + [key(s) for s in a.samples]
        agr = _core.agreement(keys)
        reason = f"{agr.count} of {len(keys)} samples agree"
        ok = agr.share >= min_share - 1e-12 and key(a.content) == agr.key
        return Verdict("pass" if ok else "fail", float(agr.share), reason, "self_consistency")

    check.samples = k  # type: ignore[attr-defined]  # read by the cascade runner
    return _named("self_consistency", check)


# ---------------------------------------------------------------------------- registry

_REGISTRY: dict[str, Callable[..., Verifier]] = {
    "json_valid": json_valid,
    "json_schema": json_schema,
    "tool_calls": tool_calls,
    "arithmetic": arithmetic,
    "code": code,
    "self_consistency": self_consistency,
}


def register_verifier(name: str, fn: Callable[[Answer], Verdict | bool | None]) -> None:
    """Registers a user verifier under ``name`` (a callable taking an :class:`Answer` and
    returning a Verdict, a bool or None); ``get_verifier(name)`` then returns it."""
    if not name or not callable(fn):
        raise InvalidArgumentError("register_verifier needs a name and a callable")
    _REGISTRY[name] = lambda: _named(name, lambda a: as_verdict(fn(a), name))


def get_verifier(name: str, **options: Any) -> Verifier:
    """The verifier registered under ``name``, built with ``options`` (e.g.
    ``get_verifier("json_schema", schema={...})``). Raises InvalidArgumentError if unknown."""
    if name not in _REGISTRY:
        raise InvalidArgumentError(f"unknown verifier {name!r}; known: {sorted(_REGISTRY)}")
    return _REGISTRY[name](**options)


def verifier_names() -> list[str]:
    return sorted(_REGISTRY)


def run_verifiers(verifiers: Sequence[Verifier], answer: Answer) -> list[Verdict]:
    """Every verifier's verdict on ``answer``, in order. A verifier that raises gives a failed
    verdict naming the exception (a broken check never accepts an answer)."""
    out = []
    for v in verifiers:
        name = getattr(v, "__name__", type(v).__name__)
        try:
            value = v(answer)
        except Exception as e:  # noqa: BLE001  # a user plug-in failing must not end the cascade
            out.append(Verdict("fail", 0.0, f"verifier raised {type(e).__name__}", name))
            continue
        out.append(as_verdict(value, name))  # a wrong return type is a bug: it raises
    return out


def _message(response: Mapping[str, Any]) -> Mapping[str, Any]:
    try:
        msg = response["choices"][0]["message"]
        return msg if isinstance(msg, Mapping) else {}
    except (KeyError, IndexError, TypeError):
        return {}


# ---------------------------------------------------------------------------- learned score


class EscalationScorer:
    """P(the strong model does better than the cheap answer), from the cheap answer's signals.

    Features (``orroute._core.escalation_feature_names()`` then ``extra_names``): prompt
    statistics, the answer's own signals, the arithmetic re-check, then per prompt the caller's
    extras — verifier outcomes (+1/-1/0) and, e.g., ``LearnedRouter`` probabilities. An
    L2-regularised logistic regression fitted in C++.

    >>> s = EscalationScorer.fit(prompts, answers, strong_better)      # doctest: +SKIP
    >>> s.score("What is 2 + 2?", "2 + 2 = 5\\n#### 5")                  # doctest: +SKIP
    0.81
    """

    FORMAT = "orroute.escalation/1"

    def __init__(self, core: Any, extra_names: Sequence[str] = ()) -> None:
        self._core = core
        self.extra_names = list(extra_names)

    @staticmethod
    def features(prompt: str, answer: str, extra: Sequence[float] = ()) -> list[float]:
        return list(_core.escalation_features(prompt, answer, [float(e) for e in extra]))

    @classmethod
    def fit(cls, prompts: Sequence[str], answers: Sequence[str], labels: Sequence[float], *,
            extra: Sequence[Sequence[float]] | None = None, extra_names: Sequence[str] = (),
            l2: float = 1.0, weights: Sequence[float] | None = None) -> EscalationScorer:
        """Fits on one row per prompt: ``labels`` 1 where the strong model did better than the
        cheap ``answers`` (soft labels allowed)."""
        if not (len(prompts) == len(answers) == len(labels)):
            raise InvalidArgumentError("prompts, answers and labels differ in length")
        ex = extra if extra is not None else [()] * len(prompts)
        x = [cls.features(p, a, e) for p, a, e in zip(prompts, answers, ex, strict=True)]
        core = _core.EscalationModel.fit(x, [float(v) for v in labels],
                                         [float(w) for w in weights or []], l2)
        return cls(core, extra_names)

    def score(self, prompt: str, answer: str, extra: Sequence[float] = ()) -> float:
        return float(self._core.predict(self.features(prompt, answer, extra)))

    def score_many(self, prompts: Sequence[str], answers: Sequence[str],
                   extra: Sequence[Sequence[float]] | None = None) -> list[float]:
        ex = extra if extra is not None else [()] * len(prompts)
        return list(self._core.predict_many(
            [self.features(p, a, e) for p, a, e in zip(prompts, answers, ex, strict=True)]))

    def to_dict(self) -> dict[str, Any]:
        c = self._core
        return {"format": self.FORMAT, "features": list(_core.escalation_feature_names()),
                "extra_names": self.extra_names, "mean": list(c.mean), "scale": list(c.scale),
                "weights": list(c.weights), "intercept": c.intercept}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EscalationScorer:
        if d.get("format") != cls.FORMAT:
            raise InvalidArgumentError(f"not an {cls.FORMAT} document")
        if list(d["features"]) != list(_core.escalation_feature_names()):
            raise InvalidArgumentError("the scorer was fitted on other features; refit it")
        core = _core.EscalationModel(list(d["mean"]), list(d["scale"]), list(d["weights"]),
                                     float(d["intercept"]))
        return cls(core, d.get("extra_names", ()))


# ---------------------------------------------------------------------------- operating points


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold chosen for a cost share on a calibration set: escalate when the score is >=
    ``threshold``; ``share`` is the calibration cost share (of the reference model's cost) with
    its 90% bootstrap interval [``share_lo``, ``share_hi``]; ``met`` is False when a maximum
    share could not be met even without escalating."""

    threshold: float
    share: float
    share_lo: float
    share_hi: float
    escalated: float
    met: bool
    rows: int
    requested: float
    mode: str

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["threshold"] = _finite(self.threshold)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OperatingPoint:
        t = d["threshold"]
        return cls(**{**d, "threshold": float(t)})  # float("inf") reads the saved "inf"


def _finite(x: float) -> float | str:
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")


def choose_operating_point(score: Sequence[float], base: Sequence[float],
                           escalated: Sequence[float], reference: Sequence[float], *,
                           target_cost_share: float | None = None,
                           max_cost_share: float | None = None, bootstrap: int = 1000,
                           seed: int = 0) -> OperatingPoint:
    """Threshold on ``score`` for a cost share (exactly one of ``target_cost_share`` /
    ``max_cost_share``) from calibration rows: ``base`` cost when a prompt is not escalated,
    ``escalated`` cost when it is, ``reference`` cost (the strong model alone)."""
    if (target_cost_share is None) == (max_cost_share is None):
        raise InvalidArgumentError("give exactly one of target_cost_share and max_cost_share")
    share = target_cost_share if target_cost_share is not None else max_cost_share
    mode = _core.ShareMode.TARGET if target_cost_share is not None else _core.ShareMode.AT_MOST
    op = _core.choose_operating_point([float(s) for s in score], [float(c) for c in base],
                                      [float(c) for c in escalated], [float(c) for c in reference],
                                      float(share), mode, bootstrap, seed)  # type: ignore[arg-type]
    return OperatingPoint(op.threshold, op.share, op.share_lo, op.share_hi, op.escalated, op.met,
                          op.rows, float(share),  # type: ignore[arg-type]
                          "target" if target_cost_share is not None else "max")
