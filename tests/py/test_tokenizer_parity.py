"""Token-for-token parity with tiktoken (the oracle), built offline from the vocabularies bundled in
the package, on a generated corpus: scripts, code, whitespace runs, digits, emoji/ZWJ, combining
marks, every code point, random strings and bytes, long pieces and special-token text."""

from __future__ import annotations

import hashlib
import random
import shutil
import sys
import unicodedata
from pathlib import Path

import pytest

import orroute

tiktoken = pytest.importorskip("tiktoken")

ENCODINGS = ["cl100k_base", "o200k_base"]
URLS = {
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
}
DATA = Path(orroute.__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def oracles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """tiktoken encodings from the bundled files, placed where tiktoken's cache looks for them."""
    import os

    from tiktoken import registry

    cache = tmp_path_factory.mktemp("tiktoken-cache")
    for name, url in URLS.items():
        shutil.copy(DATA / f"{name}.tiktoken", cache / hashlib.sha1(url.encode()).hexdigest())
    old = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    try:
        registry.ENCODINGS.pop("cl100k_base", None)
        registry.ENCODINGS.pop("o200k_base", None)
        return {name: tiktoken.get_encoding(name) for name in ENCODINGS}
    finally:
        if old is None:
            del os.environ["TIKTOKEN_CACHE_DIR"]
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = old


SCRIPTS = [
    "The quick brown fox jumps over the lazy dog. It's 5 o'clock; we'll see, they're sure I'd go.",
    "DON'T SHOUT! I'LL SEE. WE'VE GOT IT, THEY'RE HERE, I'M OK, HE'D GO. ſ'ſ x'ſ Iſ'S",
    "Größenwahn über Äpfel, Öl und Straße. Ça va? Élève naïf, cœur, déjà vu.",
    "Съешь же ещё этих мягких французских булок, да выпей чаю. ПРИВЕТ Мир",
    "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. ΑΒΓΔ αβγδ ΐΰ",
    "إن الأمم المتحدة تعمل على تعزيز السلام ٠١٢٣٤٥٦٧٨٩ والأمن الدوليين",
    "עברית היא שפה שמית, וְהַשִּׁירָה שלה עתיקה",
    "हिन्दी भाषा विश्व की प्रमुख भाषाओं में से एक है। ०१२३",
    "বাংলা ভাষা ও সাহিত্য",
    "தமிழ் மொழி",
    "ภาษาไทยเป็นภาษาที่มีวรรณยุกต์",
    "ქართული ენა",
    "Հայերեն",
    "中文字符测试，包括标点符号。汉字！「引号」",
    "日本語のテキスト、カタカナとひらがな。ｶﾀｶﾅ",
    "한국어 텍스트입니다. 안녕하세요!",
    "Tiếng Việt có dấu: Nguyễn Trãi, Hồ Chí Minh",
    "Türkçe: İstanbul, ıI iİ ǅemal ǈ ǋ ᾈ",
    "አማርኛ ቋንቋ",
    "ᠮᠣᠩᠭᠣᠯ",
    "ᚠᚢᚦᚨᚱᚲ",
    "𐌰𐌱𐌲 𝔄𝔅ℭ 𝟘𝟙𝟚",
    "CamelCaseWordsAndHTTPServerURLs getHTTPResponseCode XMLHttpRequest iPhone eBay McDonald's",
]
CODE = [
    'def f(x: int) -> int:\n    """Doc."""\n    return x ** 2  # square\n\n\nclass A:\n\tpass\n',
    (
        "#include <vector>\nint main() {\n  std::vector<int> v{1, 2, 3};\n  for (auto& x : v) x *= 2;\r\n"
        "  return v[0] == 2 ? 0 : 1;\n}\n"
    ),
    '{"key": [1, 2.5e-3, null, true], "nested": {"a": "b\\n"}, "url": "https://x.org/a/b?c=d&e=f"}',
    "<html><body><p class='x'>Hi &amp; bye</p></body></html>\n<!-- comment -->",
    "SELECT a.id, COUNT(*) FROM t AS a WHERE a.x >= 10 GROUP BY 1 ORDER BY 2 DESC;",
    "path/to/file.txt ../../up //double /// triple \\\\server\\share C:\\Windows",
    'fn main() { let s: &str = "héllo"; println!("{s:?}"); } // \'a lifetime \'static',
]
EMOJI = [
    "👨‍👩‍👧‍👦 family, 👩🏽‍💻 coder, 🏳️‍🌈 flag, 🇫🇷🇯🇵 flags, ❤️‍🔥, 1️⃣ #️⃣, 🧑🏿‍🦰",
    "😀😃😄😁😆😅🤣😂🙂🙃😉😊😇 🥰😍🤩😘😗☺😚😙",
]
PIECES = [
    "a",
    "A",
    "é",
    "ß",
    "1",
    "٣",
    "²",
    "Ⅻ",
    " ",
    "  ",
    "\t",
    "\n",
    "\r",
    "\r\n",
    "\u00a0",
    "\u3000",
    "\u2028",
    "\x0b",
    "\x0c",
    "\x85",
    "\x1c",
    "'",
    "'s",
    "'S",
    "'ſ",
    "'ll",
    "'LL",
    "'Re",
    "'ve",
    "'d",
    "'m",
    "'t",
    "'x",
    "!",
    "?!",
    "...",
    "/",
    "//",
    "-",
    "_",
    "@",
    "#",
    "$",
    "€",
    "\u0301",
    "\u0308",
    "\u20dd",
    "ǅ",
    "ʰ",
    "々",
    "中",
    "ｱ",
    "Ω",
    "ω",
    "😀",
    "\u200d",
    "\ufe0f",
    "\ufeff",
    "🏽",
    "<|",
    "|>",
    "<|endoftext|>",
    "x",
    "Hello",
    "hello",
    "HELLO",
    "hELLO",
    "123",
    "12345",
    "\U0001d7d8",
    "\U000e0041",
    "\uffff",
    "\U0010ffff",
    "\ue000",
    "\ufffd",
]


def _random_strings(rng: random.Random, n: int, max_len: int) -> list[str]:
    return ["".join(rng.choice(PIECES) for _ in range(rng.randrange(max_len))) for _ in range(n)]


def _whitespace_runs(rng: random.Random, n: int) -> list[str]:
    ws = [" ", "\t", "\n", "\r", "\r\n", "\u00a0", "\u3000", "\x0b", "\u2029"]
    words = ["a", "Word", "1", "!", "é", "中", "\u0301", "'s", ""]
    return [
        "".join(
            rng.choice(ws) * rng.randrange(1, 5) + rng.choice(words)
            for _ in range(rng.randrange(1, 12))
        )
        for _ in range(n)
    ]


def _digits(rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        d = "".join(rng.choice("0123456789") for _ in range(rng.randrange(1, 40)))
        out.append(
            rng.choice(["", " ", "$", "-", "x", "٣", "Ⅻ"])
            + d
            + rng.choice(["", ".5", ",000", "%", "th", "²"])
        )
    return out


def _combining(rng: random.Random, n: int) -> list[str]:
    marks = ["\u0300", "\u0301", "\u0327", "\u0903", "\u20dd", "\u0e31", "\u064b", "\u302a"]
    bases = ["a", "A", " ", "1", "!", "\n", "中", "ß", "'", ""]
    return [
        "".join(
            rng.choice(bases) + "".join(rng.choice(marks) for _ in range(rng.randrange(4)))
            for _ in range(rng.randrange(1, 10))
        )
        for _ in range(n)
    ]


def _every_code_point() -> list[str]:
    cps = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
    runs = ["".join(map(chr, cps[i : i + 48])) for i in range(0, len(cps), 48)]
    # Each assigned code point in the contexts the patterns distinguish (after a space, between
    # letters, next to digits, before a contraction, at the end of text).
    assigned = [chr(cp) for cp in cps if unicodedata.category(chr(cp)) not in ("Cn", "Co")]
    ctx = [
        "".join(f" {c}a{c}A{c}1 {c}'s{c}\n{c}" for c in assigned[i : i + 16])
        for i in range(0, len(assigned), 16)
    ]
    return runs + ctx


def _random_bytes(rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        raw = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
        out.append(raw.decode("utf-8", "replace"))
        out.append(raw.decode("latin-1"))
    return out


def _long_pieces(rng: random.Random) -> list[str]:
    import base64

    blob = base64.b64encode(bytes(rng.randrange(256) for _ in range(6000))).decode()
    return [
        "a" * 3000,
        "ab" * 1500,
        "A" * 2000 + "b" * 100,
        "7" * 3000,
        " " * 3000 + "x",
        "\n" * 500,
        "!" * 3000,
        blob,
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEF") for _ in range(4000)),
        "中" * 1000,
        "😀" * 500,
        "ſ" * 1000,
    ]


def corpus() -> list[str]:
    rng = random.Random(20240501)
    out = SCRIPTS + CODE + EMOJI + [" ".join(SCRIPTS), "\n\n".join(CODE)]
    out += _random_strings(rng, 4000, 60)
    out += _whitespace_runs(rng, 1500)
    out += _digits(rng, 800)
    out += _combining(rng, 800)
    out += _random_bytes(rng, 500)
    out += _long_pieces(rng)
    out += [
        "",
        " ",
        "\n",
        "a",
        "'s",
        "x'S",
        " 'll",
        "\t\n ",
        "   \n\n  ",
        "  x",
        "x  ",
        "\r\n\r\n ",
    ]
    return out


CORPUS = corpus()
CODE_POINTS = _every_code_point()


def _first_mismatch(ours: list[list[int]], theirs: list[list[int]], texts: list[str]) -> str | None:
    bad = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    if not bad:
        return None
    i = bad[0]
    return (
        f"{len(bad)} mismatches; first: {texts[i]!r}: ours {ours[i][:20]} tiktoken {theirs[i][:20]}"
    )


@pytest.mark.parametrize("name", ENCODINGS)
def test_corpus_matches_tiktoken(name: str, oracles: dict) -> None:
    enc, ref = orroute.get_encoding(name), oracles[name]
    ours = [enc.encode_ordinary(t) for t in CORPUS]
    theirs = ref.encode_ordinary_batch(CORPUS, num_threads=2)
    assert _first_mismatch(ours, theirs, CORPUS) is None
    assert enc.count_batch(CORPUS, disallowed_special=()) == [len(t) for t in theirs]
    assert enc.encode_batch(CORPUS, num_threads=2, disallowed_special=()) == theirs


@pytest.mark.parametrize("name", ENCODINGS)
def test_every_code_point_matches_tiktoken(name: str, oracles: dict) -> None:
    enc, ref = orroute.get_encoding(name), oracles[name]
    ours = enc.encode_ordinary_batch(CODE_POINTS)
    theirs = ref.encode_ordinary_batch(CODE_POINTS, num_threads=2)
    assert _first_mismatch(ours, theirs, CODE_POINTS) is None


@pytest.mark.parametrize("name", ENCODINGS)
def test_special_token_text_matches_tiktoken(name: str, oracles: dict) -> None:
    enc, ref = orroute.get_encoding(name), oracles[name]
    rng = random.Random(7)
    specials = sorted(ref.special_tokens_set)
    parts = specials + [
        "<|",
        "|>",
        "<|endoftext",
        "endoftext|>",
        " ",
        "\n",
        "hello",
        "'s",
        "1234",
        "中",
    ]
    texts = ["".join(rng.choice(parts) for _ in range(rng.randrange(1, 12))) for _ in range(500)]
    for t in texts:
        assert enc.encode(t, allowed_special="all") == ref.encode(t, allowed_special="all"), t
        assert enc.encode_ordinary(t) == ref.encode_ordinary(t), t
        assert enc.encode(t, disallowed_special=()) == ref.encode(t, disallowed_special=()), t
        some = set(specials[:1])
        assert enc.encode(t, allowed_special=some, disallowed_special=()) == ref.encode(
            t, allowed_special=some, disallowed_special=()
        ), t
        assert enc.count(t, allowed_special="all") == len(ref.encode(t, allowed_special="all"))
    assert enc.special_tokens_set == ref.special_tokens_set
    assert (enc.n_vocab, enc.eot_token, enc.max_token_value) == (
        ref.n_vocab,
        ref.eot_token,
        ref.max_token_value,
    )


@pytest.mark.parametrize("name", ENCODINGS)
def test_decode_matches_tiktoken(name: str, oracles: dict) -> None:
    enc, ref = orroute.get_encoding(name), oracles[name]
    rng = random.Random(3)
    for _ in range(300):
        tokens = [rng.randrange(ref.max_token_value) for _ in range(rng.randrange(20))]
        tokens = [t for t in tokens if t < len(ref._mergeable_ranks)]
        assert enc.decode_bytes(tokens) == ref.decode_bytes(tokens)
        assert enc.decode(tokens) == ref.decode(tokens)
    assert enc.decode([enc.eot_token]) == "<|endoftext|>"


@pytest.mark.parametrize("name", ENCODINGS)
def test_lone_surrogates_are_replaced_like_tiktoken(name: str, oracles: dict) -> None:
    enc, ref = orroute.get_encoding(name), oracles[name]
    text = "a\ud800b \udfff"
    assert enc.encode(text) == ref.encode(text)
    assert enc.count(text) == len(ref.encode(text))


def test_oracle_is_built_from_bundled_files() -> None:
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in DATA.glob("*.tiktoken")}
    assert digests == {
        "cl100k_base.tiktoken": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        "o200k_base.tiktoken": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    }, sys.version
