"""Exact tiktoken-compatible tokenizer (cl100k_base, o200k_base) and model-aware token counting.

Drop-in for tiktoken::

    >>> import orroute
    >>> enc = orroute.get_encoding("o200k_base")
    >>> enc.decode(enc.encode("hello world"))
    'hello world'

The work happens in the C++ core (hand-written pre-tokenizer, BPE, batch threads with the GIL
released); this module resolves tiktoken's keyword conventions and presents the results.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from . import _core

if TYPE_CHECKING:  # typing_extensions is not a run-time dependency (Self is typing's from 3.11)
    from typing_extensions import Self

__all__ = ["Encoding", "TokenCount", "count_tokens", "encoding_for_model", "get_encoding"]

_Special = Literal["all"] | Collection[str]
_ENCODINGS: dict[str, Encoding] = {}


def _utf8_safe(text: str) -> str:
    # As tiktoken: lone surrogates cannot be UTF-8 encoded; they become U+FFFD.
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


class Encoding:
    """A BPE encoding with tiktoken's interface (``tiktoken.Encoding``), plus ``count``.

    Instances are shared and immutable; every method is thread-safe.
    """

    def __init__(self, core: _core.Encoding) -> None:
        self._core = core
        self.name: str = core.name
        self._special_tokens: dict[str, int] = dict(core.special_tokens)
        self.special_tokens_set: frozenset[str] = frozenset(self._special_tokens)

    def __repr__(self) -> str:
        return f"<Encoding {self.name!r}>"

    @property
    def n_vocab(self) -> int:
        """Number of token ids, special tokens included (max token id + 1)."""
        return self._core.n_vocab

    @property
    def max_token_value(self) -> int:
        return self._core.n_vocab - 1

    @property
    def eot_token(self) -> int:
        """Id of ``<|endoftext|>``."""
        return self._core.eot_token

    def _policy(
        self, allowed_special: _Special, disallowed_special: _Special
    ) -> tuple[list[str], list[str]]:
        allowed = self.special_tokens_set if allowed_special == "all" else allowed_special
        if disallowed_special == "all":
            disallowed: Collection[str] = self.special_tokens_set - set(allowed)
        else:
            disallowed = disallowed_special
        return list(allowed), list(disallowed)

    def encode_ordinary(self, text: str) -> list[int]:
        """Tokens of ``text``, special-token text encoded as ordinary text.

        >>> get_encoding("cl100k_base").encode_ordinary("hello world")
        [15339, 1917]
        """
        try:
            return self._core.encode_ordinary(text)
        except TypeError:
            if not isinstance(text, str) or _encodable(text):
                raise
            return self._core.encode_ordinary(_utf8_safe(text))

    def encode(
        self,
        text: str,
        *,
        allowed_special: _Special = frozenset(),
        disallowed_special: _Special = "all",
    ) -> list[int]:
        """Tokens of ``text``, with tiktoken's special-token rules.

        Special-token text in ``allowed_special`` becomes the special token; text of a token in
        ``disallowed_special`` (default: every special token not allowed) raises
        ``InvalidArgumentError`` (a ``ValueError``) naming it; pass ``disallowed_special=()`` to
        encode it as ordinary text.

        >>> get_encoding("cl100k_base").encode("<|endoftext|>", allowed_special="all")
        [100257]
        """
        allowed, disallowed = self._policy(allowed_special, disallowed_special)
        try:
            return self._core.encode(text, allowed, disallowed)
        except TypeError:
            if not isinstance(text, str) or _encodable(text):
                raise
            return self._core.encode(_utf8_safe(text), allowed, disallowed)

    def count(
        self,
        text: str,
        *,
        allowed_special: _Special = frozenset(),
        disallowed_special: _Special = "all",
    ) -> int:
        """``len(self.encode(text, ...))`` without building the token list.

        >>> get_encoding("o200k_base").count("hello world")
        2
        """
        allowed, disallowed = self._policy(allowed_special, disallowed_special)
        try:
            return self._core.count(text, allowed, disallowed)
        except TypeError:
            if not isinstance(text, str) or _encodable(text):
                raise
            return self._core.count(_utf8_safe(text), allowed, disallowed)

    def encode_batch(
        self,
        text: Sequence[str],
        *,
        num_threads: int = 0,
        allowed_special: _Special = frozenset(),
        disallowed_special: _Special = "all",
    ) -> list[list[int]]:
        """``[self.encode(t, ...) for t in text]`` on ``num_threads`` threads (0 = all cores),
        with the GIL released."""
        allowed, disallowed = self._policy(allowed_special, disallowed_special)
        texts = list(text)
        try:
            return self._core.encode_batch(texts, allowed, disallowed, num_threads)
        except TypeError:
            return self._core.encode_batch(_sanitized(texts), allowed, disallowed, num_threads)

    def encode_ordinary_batch(
        self, text: Sequence[str], *, num_threads: int = 0
    ) -> list[list[int]]:
        """``[self.encode_ordinary(t) for t in text]`` on several threads."""
        return self.encode_batch(text, num_threads=num_threads, disallowed_special=())

    def count_batch(
        self,
        text: Sequence[str],
        *,
        num_threads: int = 0,
        allowed_special: _Special = frozenset(),
        disallowed_special: _Special = "all",
    ) -> list[int]:
        """``[self.count(t, ...) for t in text]`` on several threads, GIL released."""
        allowed, disallowed = self._policy(allowed_special, disallowed_special)
        texts = list(text)
        try:
            return self._core.count_batch(texts, allowed, disallowed, num_threads)
        except TypeError:
            return self._core.count_batch(_sanitized(texts), allowed, disallowed, num_threads)

    def decode_bytes(self, tokens: Sequence[int]) -> bytes:
        """Concatenated bytes of ``tokens``; an unknown id raises ``NotFoundInCatalogError``
        (a ``KeyError``)."""
        return self._core.decode_bytes(tokens)

    def decode(self, tokens: Sequence[int], errors: str = "replace") -> str:
        """Text of ``tokens``; invalid UTF-8 is replaced (or handled per ``errors``).

        >>> enc = get_encoding("o200k_base")
        >>> enc.decode(enc.encode("héllo"))
        'héllo'
        """
        return self._core.decode_bytes(tokens).decode("utf-8", errors=errors)

    def decode_single_token_bytes(self, token: int) -> bytes:
        """Bytes of one token."""
        return self._core.token_bytes(token)

    def decode_tokens_bytes(self, tokens: Sequence[int]) -> list[bytes]:
        """Bytes of each token."""
        return [self._core.token_bytes(t) for t in tokens]


def _sanitized(texts: list[str]) -> list[str]:
    """Retries a batch whose conversion failed: lone surrogates replaced; non-str still fails."""
    return [t if not isinstance(t, str) or _encodable(t) else _utf8_safe(t) for t in texts]


def _encodable(text: str) -> bool:
    # Only strings with lone surrogates fail; ASCII and most text are decided without encoding.
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def get_encoding(name: str) -> Encoding:
    """The named encoding (``"cl100k_base"`` or ``"o200k_base"``), loaded lazily and cached.

    Raises ``NotFoundInCatalogError`` (a ``KeyError``) for another name.

    >>> get_encoding("cl100k_base").n_vocab
    100277
    """
    enc = _ENCODINGS.get(name)
    if enc is None:
        enc = _ENCODINGS.setdefault(name, Encoding(_core.get_encoding(name)))
    return enc


def encoding_for_model(model: str, *, strict: bool = False) -> Encoding:
    """The encoding of ``model`` (an OpenAI or OpenRouter id, or a tokenizer family name).

    OpenAI models get their exact encoding (gpt-4o, gpt-4.1, gpt-5, o-series -> o200k_base;
    gpt-4, gpt-3.5 -> cl100k_base). Other models get the closest encoding used for estimates,
    unless ``strict`` is true, in which case they raise ``NotFoundInCatalogError`` as tiktoken would.

    >>> encoding_for_model("openai/gpt-4o-mini").name
    'o200k_base'
    """
    info = _core.tokenizer_for_model(model)
    if strict and not info.exact:
        from ._exceptions import NotFoundInCatalogError

        raise NotFoundInCatalogError(f"no exact tokenizer known for model {model!r}")
    return get_encoding(info.encoding)


class TokenCount(int):
    """A token count (an ``int``) that says whether it is exact.

    Attributes:
        exact: True when counted with the model's own encoding; False for an estimate (another
            family's tokenizer approximated by the closest encoding times a family factor).
        encoding: The encoding used.
        family: The tokenizer family ("GPT", "Claude", "Gemini", ...).
    """

    exact: bool
    encoding: str
    family: str

    def __new__(cls, tokens: int, *, exact: bool, encoding: str, family: str) -> Self:
        self = super().__new__(cls, tokens)
        self.exact = exact
        self.encoding = encoding
        self.family = family
        return self

    def __repr__(self) -> str:
        kind = "exact" if self.exact else "estimated"
        return (
            f"TokenCount({int(self)}, {kind}, encoding={self.encoding!r}, family={self.family!r})"
        )


def _message_json(messages: Iterable[Any]) -> str:
    out = []
    for m in messages:
        if not isinstance(m, Mapping):  # pydantic / openai objects
            dump = getattr(m, "model_dump", None)
            m = dump(exclude_none=True) if dump else dict(m)
        out.append(m)
    return json.dumps(out, default=str)


def count_tokens(
    text_or_messages: str | Iterable[Mapping[str, Any]],
    *,
    model: str = "gpt-4o",
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> TokenCount:
    """Prompt tokens of a text or of chat messages (OpenAI's shape) for ``model``.

    For messages this counts as OpenAI bills a chat request (per-message and per-name overhead,
    reply priming, tool definitions, tool calls, image parts approximated); see docs/tokenizer.md.
    The result is an ``int`` carrying ``.exact`` (False for non-OpenAI models, whose counts are
    estimates).

    >>> n = count_tokens("hello world", model="openai/gpt-4o")
    >>> (int(n), n.exact)
    (2, True)
    """
    if isinstance(text_or_messages, str):
        text = text_or_messages if _encodable(text_or_messages) else _utf8_safe(text_or_messages)
        r = _core.count_text_tokens(model, text)
    else:
        r = _core.count_chat_tokens_json(
            model, _message_json(text_or_messages), json.dumps(list(tools)) if tools else ""
        )
    return TokenCount(r.tokens, exact=r.exact, encoding=r.encoding, family=r.family)
