"""Tokenizer public API: tiktoken-shaped encodings, round trips (Hypothesis), special-token rules,
batch calls, model mapping and count_tokens (text and chat messages)."""

from __future__ import annotations

import gc
import itertools
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orroute

# A child Python imports the orroute these tests import (the installed one in CI, where the source
# tree has no built extension), whatever an earlier test put on sys.path.
CHILD_PATH = os.pathsep.join([str(Path(orroute.__file__).resolve().parents[1]), *sys.path])

ENCODINGS = ["cl100k_base", "o200k_base"]


@pytest.fixture(params=ENCODINGS)
def enc(request: pytest.FixtureRequest) -> orroute.Encoding:
    return orroute.get_encoding(request.param)


@settings(max_examples=300, deadline=None)
@given(text=st.text())
@pytest.mark.parametrize("name", ENCODINGS)
def test_decode_inverts_encode(name: str, text: str) -> None:
    enc = orroute.get_encoding(name)
    tokens = enc.encode_ordinary(text)
    safe = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    assert enc.decode(tokens) == safe
    assert enc.decode_bytes(tokens) == safe.encode()
    assert enc.count(text, disallowed_special=()) == len(tokens)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200))
@pytest.mark.parametrize("name", ENCODINGS)
def test_bytes_round_trip_through_latin1_and_replacement(name: str, data: bytes) -> None:
    enc = orroute.get_encoding(name)
    text = data.decode("utf-8", "replace")
    assert enc.decode_bytes(enc.encode_ordinary(text)) == text.encode()
    assert enc.decode(enc.encode_ordinary(data.decode("latin-1"))) == data.decode("latin-1")


@settings(max_examples=100, deadline=None)
@given(
    parts=st.lists(
        st.sampled_from(["<|endoftext|>", "<|endofprompt|>", "a", " b", "\n", "<|", "é"])
    )
)
def test_specials_round_trip_when_allowed(parts: list[str]) -> None:
    enc = orroute.get_encoding("o200k_base")
    text = "".join(parts)
    tokens = enc.encode(text, allowed_special="all")
    assert enc.decode(tokens) == text
    assert tokens.count(enc.eot_token) == text.count("<|endoftext|>")


def test_encoding_properties(enc: orroute.Encoding) -> None:
    assert enc.name in ENCODINGS
    assert "<|endoftext|>" in enc.special_tokens_set
    assert enc.decode([enc.eot_token]) == "<|endoftext|>"
    assert enc.n_vocab == {"cl100k_base": 100277, "o200k_base": 200019}[enc.name]
    assert orroute.get_encoding(enc.name) is enc


def test_disallowed_special_raises_value_error_naming_it(enc: orroute.Encoding) -> None:
    with pytest.raises(ValueError, match="<\\|endoftext\\|>"):
        enc.encode("x <|endoftext|>")
    with pytest.raises(orroute.InvalidArgumentError):
        enc.count("<|endoftext|>")
    assert enc.encode("x <|endoftext|>", disallowed_special=()) == enc.encode_ordinary(
        "x <|endoftext|>"
    )
    assert enc.encode("<|endoftext|>", allowed_special={"<|endoftext|>"}) == [enc.eot_token]


def test_unknown_names_and_tokens_raise_key_error() -> None:
    with pytest.raises(KeyError):
        orroute.get_encoding("p50k_base")
    with pytest.raises(KeyError):
        orroute.get_encoding("cl100k_base").decode([100261])


def test_batch_matches_single_calls(enc: orroute.Encoding) -> None:
    texts = [f"document {i}: " + "word " * i for i in range(40)] + ["", "é\u0301 中"]
    assert enc.encode_batch(texts, num_threads=3) == [enc.encode(t) for t in texts]
    assert enc.encode_ordinary_batch(texts) == [enc.encode_ordinary(t) for t in texts]
    assert enc.count_batch(texts, num_threads=2) == [len(enc.encode(t)) for t in texts]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_child_forked_during_batches_on_another_thread_can_batch() -> None:
    # The batch helpers are the parent's threads: the child has none of them, and the fork may
    # come while one is being started or holds a lock. The child must get a working pool (an
    # alarm ends it if it hangs) and exact results.
    enc = orroute.get_encoding("o200k_base")
    texts = [f"doc {i}: " + "wörd 東京 " * (i % 60) for i in range(600)]
    want = [enc.encode(t) for t in texts]
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            assert enc.encode_batch(texts, num_threads=2) == want

    busy = threading.Thread(target=churn)
    busy.start()
    try:
        for _ in range(8):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child reports through its exit status
                signal.alarm(30)
                ok = enc.encode_batch(texts, num_threads=2) == want
                ok = ok and enc.count_batch(texts, num_threads=2) == [len(t) for t in want]
                os._exit(0 if ok else 1)
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0
    finally:
        stop.set()
        busy.join()


DAEMONS_AT_EXIT = """
import threading, time, orroute
enc = orroute.get_encoding("o200k_base")
texts = ["word " * 2000] * 100
calls = [
    lambda: enc.encode_batch(texts, num_threads=2),
    lambda: enc.count_batch(texts, num_threads=2),
    lambda: enc.encode_batch_flat(texts, num_threads=2),
    lambda: enc.encode(texts[0] * 4),  # over 16 KB: the GIL is released
    lambda: orroute.count_tokens(texts[0] * 4, model="openai/gpt-4o"),
]
def loop(call):
    while True:
        call()
for call in calls:
    threading.Thread(target=loop, args=(call,), daemon=True).start()
time.sleep(0.5)
"""


def _exits_cleanly(script: str, timeout: float) -> None:
    """Runs `script` in a child Python importing this orroute; it must exit 0 within `timeout` s."""
    run = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=dict(os.environ, PYTHONPATH=CHILD_PATH),
    )
    assert run.returncode == 0, run.stderr[-2000:]


def test_daemon_threads_inside_calls_do_not_abort_the_exit() -> None:
    # At exit Python 3.11 ends a daemon thread that takes the GIL back with pthread_exit; the
    # binding must re-take it outside any noexcept frame, or the process aborts (status 134).
    for _ in range(3):
        _exits_cleanly(DAEMONS_AT_EXIT, timeout=120)


LONG_BATCH_AT_EXIT = """
import threading, time, orroute
enc = orroute.get_encoding("o200k_base")
texts = ["word " * 13_000] * 300_000  # 20 GB of text: minutes of counting on two threads
threading.Thread(target=enc.count_batch, args=(texts,), kwargs={"num_threads": 2},
                 daemon=True).start()
time.sleep(1)
"""


def test_a_batch_in_a_daemon_thread_does_not_hold_up_the_exit() -> None:
    # The exit joins the batch helpers; a helper leaves a batch after the 64 KB unit it is in
    # rather than working through the rest of it (before: the exit waited for the whole batch).
    _exits_cleanly(LONG_BATCH_AT_EXIT, timeout=40)


def test_flat_batch_matches_single_calls(enc: orroute.Encoding) -> None:
    # Long texts among short and empty ones: the core splits the work into 64 KB runs of texts.
    texts = [f"doc {i}: " + "wörd " * (i % 50) for i in range(300)] + ["", "x" * 200_000, "\ud800"]
    want = [enc.encode(t) for t in texts]
    for threads in (1, 2, 0):
        tokens, offsets = enc.encode_batch_flat(texts, num_threads=threads)
        assert (tokens.format, offsets.format, tokens.readonly) == ("I", "Q", True)
        assert offsets.tolist()[0] == 0 and len(offsets) == len(texts) + 1
        flat, bounds = tokens.tolist(), offsets.tolist()
        assert [flat[a:b] for a, b in itertools.pairwise(bounds)] == want
    tokens, offsets = enc.encode_batch_flat([])
    assert (tokens.tolist(), offsets.tolist()) == ([], [0])
    with pytest.raises(ValueError, match="disallowed special token"):
        enc.encode_batch_flat(["a", "<|endoftext|>"])
    tokens, _ = enc.encode_batch_flat(["<|endoftext|>"], allowed_special="all")
    assert tokens.tolist() == [enc.eot_token]


def test_token_lists_share_one_int_per_id_and_count_references(enc: orroute.Encoding) -> None:
    # Lists hold the process-wide int of each id (the binding's shared table): the values are
    # right, the lists are independent, and every list adds and releases exactly its references.
    text = "shared ints: hello hello world 12345 \u00e9t\u00e9"
    first = enc.encode(text)
    assert first == enc.encode_batch([text])[0] == list(enc.encode_to_numpy(text).tolist())
    again = enc.encode_ordinary(text)
    assert all(a is b for a, b in zip(first, again))
    again[0] = -1  # a list is the caller's own
    assert enc.encode(text)[0] == first[0] != -1
    hello = enc.encode("hello")[0]  # an int the table holds
    before = sys.getrefcount(hello)
    lists = [enc.encode("hello hello") for _ in range(50)]
    assert lists[0][0] is hello
    per_list = sum(1 for t in lists[0] if t is hello)
    assert sys.getrefcount(hello) == before + 50 * per_list
    del lists
    assert sys.getrefcount(hello) == before


def test_every_token_id_comes_back_as_a_plain_int_of_its_value(enc: orroute.Encoding) -> None:
    # Each id's shared int (the binding's table) is made on the id's first use and handed out
    # after that: every id of the vocabulary, the small ones CPython caches too, has its value,
    # hashes, prints and computes as an int, and is the same object the next time, after a
    # collection.
    ranks = enc._mergeable_ranks
    first: dict[int, int] = {}
    for token, rank in ranks.items():
        (item,) = enc._encode_single_piece(token)
        assert type(item) is int and item == rank and hash(item) == hash(rank)
        first[rank] = item
    gc.collect()
    for token, rank in ranks.items():
        (item,) = enc._encode_single_piece(token)
        assert item is first[rank]
    for rank in (0, 1, 255, 256, 257, 1 << 15, len(ranks) - 1):
        item = first[rank]
        assert (item + 1, item * 3, item // 2, -item, str(item), bool(item)) == (
            rank + 1,
            rank * 3,
            rank // 2,
            -rank,
            str(rank),
            bool(rank),
        )


def test_texts_either_side_of_the_gil_release_size_agree(enc: orroute.Encoding) -> None:
    # Texts under 16 KB are encoded with the GIL held, longer ones without: same results.
    unit = "hello wörld 123 <|endoftext|>\n"
    for n in (100, 16 * 1024 - 1, 16 * 1024, 40_000):
        text = (unit * (n // len(unit) + 1))[:n]
        tokens = enc.encode(text, disallowed_special=())
        assert (
            tokens
            == enc.encode_ordinary(text)
            == enc.encode_batch([text], disallowed_special=())[0]
        )
        assert enc.decode(tokens) == text
        assert enc.count(text, disallowed_special=()) == len(tokens)
        assert enc.encode(text, allowed_special="all").count(enc.eot_token) == text.count(
            "<|endoftext|>"
        )
        with pytest.raises(ValueError, match="disallowed special token"):
            enc.encode(text)
        with pytest.raises(ValueError, match="disallowed special token"):
            enc.count(text)


def test_special_token_ids_beyond_the_shared_table_are_plain_ints() -> None:
    from orroute.tiktoken_compat import Encoding

    base = orroute.get_encoding("cl100k_base")
    big = (1 << 21) + 7  # above the binding's table of shared ints
    enc = Encoding(
        "big_special",
        pat_str=base._pat_str,
        mergeable_ranks=base._mergeable_ranks,
        special_tokens={"<|big|>": big},
    )
    assert enc.encode("a<|big|>", allowed_special="all")[-1] == big
    assert enc.encode("a<|big|>", allowed_special="all") == enc.encode(
        "a<|big|>", allowed_special="all"
    )
    # Big ids among many ordinary tokens: the list builder reads ahead of the item it stores
    # (its prefetches), so big ids must be met there too, at every distance from either end.
    words = " ".join(f"w{i}" for i in range(40))
    for at in range(0, len(words) + 1, 7):
        text = words[:at] + "<|big|><|big|>" + words[at:]
        tokens = enc.encode(text, allowed_special="all")
        assert tokens == [*base.encode(words[:at]), big, big, *base.encode(words[at:])]


def test_single_token_bytes(enc: orroute.Encoding) -> None:
    tokens = enc.encode("hello world")
    assert b"".join(enc.decode_tokens_bytes(tokens)) == b"hello world"
    assert enc.decode_single_token_bytes(tokens[0]) == b"hello"


@pytest.mark.parametrize(
    ("model", "name"),
    [
        ("gpt-4o", "o200k_base"),
        ("openai/gpt-4.1-mini", "o200k_base"),
        ("o3", "o200k_base"),
        ("openai/gpt-5", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
    ],
    ids=lambda v: v,
)
def test_encoding_for_openai_models(model: str, name: str) -> None:
    assert orroute.encoding_for_model(model).name == name
    assert orroute.encoding_for_model(model, strict=True).name == name


def test_encoding_for_other_models_is_the_estimate_base_unless_strict() -> None:
    assert orroute.encoding_for_model("anthropic/claude-3.5-sonnet").name in ENCODINGS
    with pytest.raises(KeyError):
        orroute.encoding_for_model("anthropic/claude-3.5-sonnet", strict=True)


def test_count_tokens_text_is_exact_for_openai_and_estimated_otherwise() -> None:
    n = orroute.count_tokens("hello world", model="openai/gpt-4o")
    assert n == 2 and isinstance(n, int) and n.exact and n.encoding == "o200k_base"
    text = "The quick brown fox jumps over the lazy dog. " * 20
    est = orroute.count_tokens(text, model="anthropic/claude-sonnet-4")
    assert not est.exact and est.family == "Claude"
    assert est > orroute.count_tokens(text, model="gpt-4")
    assert orroute.count_tokens(text, model="Gemini").family == "Gemini"


def test_count_tokens_messages_follow_openai_overheads() -> None:
    enc = orroute.get_encoding("o200k_base")
    msgs = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "name": "ann", "content": "Sum 2 and 3."},
    ]
    expected = sum(3 + enc.count(m["role"]) + enc.count(m["content"]) for m in msgs)
    expected += enc.count("ann") + 1 + 3
    assert orroute.count_tokens(msgs, model="gpt-4o") == expected


def test_count_tokens_tool_calls_images_and_tools_add_tokens() -> None:
    base = [{"role": "user", "content": "What is the weather?"}]
    plain = orroute.count_tokens(base, model="gpt-4o")
    call = base + [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        }
    ]
    assert orroute.count_tokens(call, model="gpt-4o") > plain + 3
    image = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is the weather?"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
            ],
        }
    ]
    assert orroute.count_tokens(image, model="gpt-4o") == plain + 85
    tools = [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "Get weather.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "city": {"type": "string", "description": "City name"},
                        "unit": {"type": "string", "enum": ["c", "f"], "description": "Unit"},
                    },
                },
            },
        }
    ]
    assert orroute.count_tokens(base, model="gpt-4o", tools=tools) > plain + 12


def test_batch_replaces_lone_surrogates_and_rejects_non_text() -> None:
    enc = orroute.get_encoding("cl100k_base")
    assert enc.encode_batch(["a\ud800", "b"]) == [enc.encode("a\ufffd"), enc.encode("b")]
    assert enc.count_batch(["a\ud800"]) == [len(enc.encode("a\ufffd"))]
    with pytest.raises(TypeError):
        enc.encode_batch([None])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        enc.encode(None)  # type: ignore[arg-type]
