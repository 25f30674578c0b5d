"""orroute.verify: built-in verifiers, user plug-ins, the escalation model, operating points."""

from __future__ import annotations

import json

import pytest

import orroute
from orroute import verify as v
from orroute.verify import Answer


def ans(content: str, prompt: str = "q", **kw) -> Answer:
    return Answer(prompt=prompt, content=content, **kw)


def test_json_verifiers() -> None:
    assert v.json_valid()(ans('Sure:\n```json\n{"a": 1}\n```')).outcome == "pass"
    bad = v.json_valid()(ans('{"a": 1'))
    assert bad.outcome == "fail" and "parse" in bad.reason and bad.name == "json_valid"
    schema = v.json_schema({"type": "object", "required": ["name"],
                            "properties": {"name": {"type": "string"}}})
    assert schema(ans('{"name": "x"}')).outcome == "pass"
    r = schema(ans('{"name": 3}'))
    assert r.outcome == "fail" and "$.name" in r.reason
    with pytest.raises(orroute.InvalidArgumentError):
        v.json_schema("{nope")


def _tool_response(args: str, name: str = "lookup") -> dict:
    return {"choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [
        {"id": "1", "type": "function", "function": {"name": name, "arguments": args}}]}}]}


def test_tool_call_arguments_are_validated_against_the_schema() -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}}}]
    check = v.tool_calls(tools)
    assert check(ans("", response=_tool_response('{"id": 3}'))).outcome == "pass"
    assert check(ans("", response=_tool_response('{"id": "3"}'))).outcome == "fail"
    assert check(ans("", response=_tool_response("{"))).outcome == "fail"
    assert check(ans("", response=_tool_response("{}", name="other"))).outcome == "fail"
    assert check(ans("plain text")).outcome == "abstain"


def test_arithmetic_verifier() -> None:
    check = v.arithmetic()
    assert check(ans("16 - 3 = 13\n13 * 2 = 26\n#### 26")).outcome == "pass"
    r = check(ans("16 - 3 = 12\n#### 12"))
    assert r.outcome == "fail" and "16 - 3 = 12" in r.reason
    assert check(ans("I am not sure.")).outcome == "fail"  # no final number
    assert v.arithmetic(require_final=False)(ans("I am not sure.")).outcome == "abstain"


@pytest.mark.parametrize(
    ("code", "outcome", "reason"),
    [
        ("def add(a, b):\n    return a + b", "pass", "passed"),
        ("def add(a, b):\n    return a - b", "fail", "AssertionError"),
        ("def add(a, b):\n    while True: pass", "fail", "timed out"),
        ("def add(a, b):\n    x = bytearray(4 << 30)\n    return a + b", "fail", "MemoryError"),
        ("def add(a, b)\n    return a + b", "fail", "SyntaxError"),
        # the 16 MB file-size limit ends it (Python ignores SIGXFSZ: the write fails, exit 1)
        ("import sys\nwhile True: sys.stderr.write('x' * 65536)", "fail", "xxx"),
    ],
    ids=["pass", "wrong", "timeout", "memory", "syntax", "floods-stderr"],
)
def test_code_verifier_runs_in_a_limited_subprocess(code: str, outcome: str, reason: str) -> None:
    check = v.code("assert add(2, 3) == 5", timeout=1.5, memory_mb=256)
    r = check(ans(f"Here:\n```python\n{code}\n```"))
    assert r.outcome == outcome
    assert reason in r.reason
    assert len(r.reason) <= 160
    assert check(ans("no code")).outcome == "fail"


def test_code_is_taken_from_a_fence_or_code_llamas_python_tags() -> None:
    assert v.extract_code("x\n```python\na = 1\n```\n[PYTHON]\nb = 2\n[/PYTHON]") == "a = 1\n"
    assert v.extract_code(" \n[PYTHON]\ndef f():\n    return 1\n[/PYTHON]\n[TESTS]\n...") == (
        "def f():\n    return 1\n")
    assert v.extract_code("[PYTHON] unterminated") is None
    assert v.extract_code("[PYTHON]\nx = 1\n[/PYTHON]", language="js") is None


def test_the_tests_function_is_bound_to_the_answers_when_names_differ() -> None:
    test = "assert remove_Occ('hello', 'l') == 'heo'"
    assert v.called_function(test) == "remove_Occ"
    assert v.called_function("assert len(x) == sorted(y)") is None  # builtins only
    assert v.called_function("assert (") is None
    answer = "def helper(s):\n    return s\n\ndef remove_occurrences(s, ch):\n    return s\n"
    assert v.bind_entry_point(answer, test) == "remove_Occ = remove_occurrences\n"
    assert v.bind_entry_point("def remove_Occ(s, c): pass", test) == ""
    assert v.bind_entry_point("def (:", test) == ""  # unparsable: left to fail when run
    assert v.bind_entry_point("x = 1", test) == ""
    good = "```python\ndef remove_occurrences(s, ch):\n    return s.replace(ch, '', 1)[::-1]" \
           ".replace(ch, '', 1)[::-1]\n```"
    assert v.code(test, timeout=10)(ans(good)).outcome == "fail"  # NameError without binding
    assert v.code(test, timeout=10, bind_names=True)(ans(good)).outcome == "pass"


def test_code_verifier_output_floods_are_not_buffered() -> None:
    # 64 MB on stdout: discarded by the parent (never piped), so a right answer still passes
    flood = "import sys\nfor _ in range(64): sys.stdout.write('x' * (1 << 20))\n"
    r = v.code("assert add(2, 3) == 5", timeout=10)(
        ans(f"```python\n{flood}def add(a, b):\n    return a + b\n```"))
    assert r.outcome == "pass", r.reason


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped by init counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("children", [1, 20])
def test_code_verifier_leaves_no_forked_process_behind(children: int) -> None:
    # The answer forks sleepers that would outlive it, reports their pids and exits. Unprivileged,
    # RLIMIT_NPROC refuses the fork; as root (which ignores it) the group is killed afterwards.
    code = ("import os, sys, time\npids = []\n"
            f"for _ in range({children}):\n"
            "    pid = os.fork()\n"
            "    if pid == 0:\n        time.sleep(60)\n        os._exit(0)\n"
            "    pids.append(pid)\n"
            "sys.exit('children ' + ' '.join(map(str, pids)))\n")
    r = v.code("", timeout=10)(ans(f"```python\n{code}```"))
    assert r.outcome == "fail"
    if r.reason.startswith("children "):
        pids = [int(x) for x in r.reason.split()[1:]]
        assert len(pids) == children
        import time

        deadline = time.monotonic() + 5
        while any(map(_alive, pids)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(map(_alive, pids))
    else:
        assert "BlockingIOError" in r.reason or "Resource temporarily unavailable" in r.reason


def test_self_consistency_needs_agreeing_samples() -> None:
    check = v.self_consistency(3)
    assert check.samples == 3
    assert check(ans("#### 18", samples=["so 18.\n#### 18", "#### 17"])).outcome == "pass"
    r = check(ans("#### 18", samples=["#### 17", "#### 16"]))
    assert r.outcome == "fail" and r.score == pytest.approx(1 / 3)
    assert check(ans("#### 18")).outcome == "abstain"
    assert v.answer_key("The answer is $1,200.") == "num:1200"
    assert v.answer_key("B) because") == "B"


def test_user_verifier_in_one_line_and_failures_fail_closed() -> None:
    v.register_verifier("polite", lambda a: "please" in a.content.lower())
    assert "polite" in v.verifier_names()
    check = v.get_verifier("polite")
    assert check(ans("Please wait")).outcome == "pass"
    assert check(ans("wait")).outcome == "fail"

    def broken(a: Answer) -> bool:
        raise RuntimeError("bug")

    verdicts = v.run_verifiers([broken, v.json_valid()], ans("{}"))
    assert [x.outcome for x in verdicts] == ["fail", "pass"]
    assert "RuntimeError" in verdicts[0].reason
    with pytest.raises(orroute.InvalidArgumentError):
        v.get_verifier("nope")


def test_escalation_scorer_learns_from_verifier_outcomes_and_round_trips() -> None:
    prompts, answers, labels, extra = [], [], [], []
    for i in range(120):
        wrong = i % 3 == 0
        answers.append(f"{i} + 1 = {i + (2 if wrong else 1)}\n#### {i + 1}")
        prompts.append(f"What is {i} + 1?")
        labels.append(1.0 if wrong else 0.0)
        extra.append([v.arithmetic()(ans(answers[-1])).as_feature()])
    s = v.EscalationScorer.fit(prompts, answers, labels, extra=extra, extra_names=["arith"])
    bad = s.score("What is 5 + 1?", "5 + 1 = 7\n#### 6", [-1.0])
    good = s.score("What is 5 + 1?", "5 + 1 = 6\n#### 6", [1.0])
    assert bad > 0.8
    assert good < 0.2
    again = v.EscalationScorer.from_dict(json.loads(json.dumps(s.to_dict())))
    assert again.score("What is 5 + 1?", "5 + 1 = 7", [-1.0]) == s.score(
        "What is 5 + 1?", "5 + 1 = 7", [-1.0])
    with pytest.raises(orroute.InvalidArgumentError):
        v.EscalationScorer.fit(["a"], ["b", "c"], [1.0])


def test_operating_point_for_a_cost_share() -> None:
    n = 200
    score = [i / n for i in range(n)]
    op = v.choose_operating_point(score, [1.0] * n, [11.0] * n, [10.0] * n, target_cost_share=0.5)
    assert op.share == pytest.approx(0.5)
    assert op.share_lo < 0.5 < op.share_hi and op.met
    capped = v.choose_operating_point(score, [1.0] * n, [11.0] * n, [10.0] * n,
                                      max_cost_share=0.05)
    assert not capped.met and capped.share == pytest.approx(0.1)
    with pytest.raises(orroute.InvalidArgumentError):
        v.choose_operating_point(score, [1.0] * n, [11.0] * n, [10.0] * n)
