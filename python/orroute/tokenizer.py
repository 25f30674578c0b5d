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

import functools
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from . import _core

if TYPE_CHECKING:  # typing_extensions is not a run-time dependency (Self is typing's from 3.11)
    from typing_extensions import Self

__all__ = ["Encoding", "TokenCount", "count_tokens", "encoding_for_model", "get_encoding"]

_Special = Literal["all"] | Collection[str]
_ENCODINGS: dict[str, Encoding] = {}  # shared with tiktoken_compat.registry.ENCODINGS


def _utf8_safe(text: str) -> str:
    # As tiktoken: lone surrogates cannot be UTF-8 encoded; they become U+FFFD.
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _retry_text(text: object, err: TypeError) -> str:
    """For a binding's TypeError: ``text`` with its lone surrogates replaced when they were the
    cause (tiktoken's behaviour); otherwise ``err`` again (not a str)."""
    if not isinstance(text, str) or _encodable(text):
        raise err
    return _utf8_safe(text)


def _special_set(value: _Special) -> list[str] | None:
    """tiktoken's allowed_special / disallowed_special for the core: None is "all"."""
    if isinstance(value, str) and value == "all":
        return None
    # In tiktoken's order: it iterates a frozenset of the value, and the error for a disallowed
    # "" names the first string that matches where "" does (a regex alternation's order).
    return list(value if isinstance(value, frozenset) else frozenset(value))


class Encoding:
    """A BPE encoding with tiktoken's whole interface (``tiktoken.Encoding``), plus ``count``.

    ``Encoding(name, pat_str=..., mergeable_ranks=..., special_tokens=...)`` builds one from
    tiktoken's parameters (e.g. ranks read from a ``.tiktoken`` file with
    ``orroute.tiktoken_compat.load.load_tiktoken_bpe``); ``pat_str`` must be the split pattern of
    cl100k_base, o200k_base or r50k_base (also gpt2/p50k). ``get_encoding`` gives the bundled ones.
    Instances are immutable; every method is thread-safe.

    >>> enc = get_encoding("cl100k_base")
    >>> enc.decode_with_offsets(enc.encode("hello world"))
    ('hello world', [0, 5])
    """

    name: str

    def __init__(
        self,
        name: str,
        *,
        pat_str: str,
        mergeable_ranks: dict[bytes, int],
        special_tokens: dict[str, int],
        explicit_n_vocab: int | None = None,
    ) -> None:
        max_token_value = max(
            max(mergeable_ranks.values()), max(special_tokens.values(), default=0)
        )
        if explicit_n_vocab:  # tiktoken's checks, with its AssertionError
            assert len(mergeable_ranks) + len(special_tokens) == explicit_n_vocab
            assert max_token_value == explicit_n_vocab - 1
        core = _core.Encoding(name, pat_str, list(mergeable_ranks.items()), dict(special_tokens))
        self._init(core, pat_str)
        self._mergeable_ranks = mergeable_ranks

    @classmethod
    def _from_core(cls, core: _core.Encoding) -> Encoding:
        self = cls.__new__(cls)
        self._init(core, core.pat_str)
        return self

    def _init(self, core: _core.Encoding, pat_str: str) -> None:
        self._core = core
        # The per-message calls as plain CPython functions (pybind11's dispatch cost more than
        # counting a short text; see bind_tokenizer.cpp).
        (
            self._count_ordinary,
            self._count_default,
            self._encode_ordinary,
            self._encode_default,
        ) = _core.fast_calls(core)
        self.name = core.name
        self._pat_str = pat_str
        self._special_tokens: dict[str, int] = dict(core.special_tokens)
        self._special_token_values = set(self._special_tokens.values())

    def __repr__(self) -> str:
        return f"<Encoding {self.name!r}>"

    @functools.cached_property
    def _mergeable_ranks(self) -> dict[bytes, int]:
        """tiktoken's ``mergeable_ranks`` (token bytes -> rank), built on first use."""
        token_bytes = self._core.token_bytes
        return {token_bytes(rank): rank for rank in range(self._core.n_ranks)}

    @functools.cached_property
    def special_tokens_set(self) -> set[str]:
        """Texts of the special tokens."""
        return set(self._special_tokens)

    @property
    def n_vocab(self) -> int:
        """Number of token ids, special tokens included (max token id + 1)."""
        return self._core.n_vocab

    @property
    def max_token_value(self) -> int:
        return self._core.n_vocab - 1

    @property
    def eot_token(self) -> int:
        """Id of ``<|endoftext|>`` (``KeyError`` if the encoding has none, as tiktoken)."""
        eot = self._core.eot_token
        if eot is None:
            raise KeyError("<|endoftext|>")
        return eot

    def is_special_token(self, token: int) -> bool:
        assert isinstance(token, int)
        return token in self._special_token_values

    # ---- encoding ---------------------------------------------------------------------------

    def encode_ordinary(self, text: str) -> list[int]:
        """Tokens of ``text``, special-token text encoded as ordinary text.

        >>> get_encoding("cl100k_base").encode_ordinary("hello world")
        [15339, 1917]
        """
        try:
            return self._encode_ordinary(text)
        except TypeError as err:
            return self._encode_ordinary(_retry_text(text, err))

    def encode(
        self,
        text: str,
        *,
        allowed_special: _Special = frozenset(),
        disallowed_special: _Special = "all",
    ) -> list[int]:
        """Tokens of ``text``, with tiktoken's special-token rules.

        Special-token text in ``allowed_special`` (a set, or ``"all"``) becomes the special
        token; text of a string in ``disallowed_special`` (default ``"all"``: every special token
        not allowed) raises ``InvalidArgumentError`` (a ``ValueError``) with tiktoken's message;
        pass ``disallowed_special=()`` to encode it as ordinary text.

        >>> get_encoding("cl100k_base").encode("<|endoftext|>", allowed_special="all")
        [100257]
        """
        if not allowed_special:
            if not disallowed_special:  # no special handling at all
                return self.encode_ordinary(text)
            if disallowed_special == "all":  # tiktoken's defaults: no set to convert
                try:
                    return self._encode_default(text)
                except TypeError as err:
                    return self._encode_default(_retry_text(text, err))
        allowed, disallowed = _special_set(allowed_special), _special_set(disallowed_special)
        try:
            return self._core.encode(text, allowed, disallowed)
        except TypeError as err:
            return self._core.encode(_retry_text(text, err), allowed, disallowed)

    def encode_to_numpy(
        self,
        text: str,
        *,
        allowed_special: _Special = frozenset(),
        disallowed_special: _Special = "all",
    ) -> Any:
        """``encode`` as a ``numpy.ndarray`` of ``uint32`` that shares the core's buffer (needs
        numpy)."""
        import numpy as np

        allowed, disallowed = _special_set(allowed_special), _special_set(disallowed_special)
        if not _encodable(text):
            text = _utf8_safe(text)
        buffer: Any = self._core.encode_to_buffer(text, allowed, disallowed)  # buffer protocol
        return np.frombuffer(buffer, np.uint32)

    def encode_with_unstable(
        self,
        text: str,
        *,
        allowed_special: _Special = frozenset(),
        disallowed_special: _Special = "all",
    ) -> tuple[list[int], list[list[int]]]:
        """tiktoken's ``encode_with_unstable``: the tokens that more text cannot change, and the
        token sequences that may continue them (sorted here; tiktoken's order is arbitrary).
        tiktoken documents this API as unstable.
        """
        allowed, disallowed = _special_set(allowed_special), _special_set(disallowed_special)
        if not _encodable(text):
            text = _utf8_safe(text)
        return self._core.encode_with_unstable(text, allowed, disallowed)

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
        if not allowed_special and not disallowed_special:  # no special handling at all
            try:
                return self._count_ordinary(text)
            except TypeError as err:
                return self._count_ordinary(_retry_text(text, err))
        if not allowed_special and disallowed_special == "all":  # tiktoken's defaults
            try:
                return self._count_default(text)
            except TypeError as err:
                return self._count_default(_retry_text(text, err))
        allowed, disallowed = _special_set(allowed_special), _special_set(disallowed_special)
        try:
            return self._core.count(text, allowed, disallowed)
        except TypeError as err:
            return self._core.count(_retry_text(text, err), allowed, disallowed)

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
        allowed, disallowed = _special_set(allowed_special), _special_set(disallowed_special)
        texts = list(text)
        try:
            return self._core.encode_batch(texts, allowed, disallowed, num_threads)
        except TypeError:
            return self._core.encode_batch(_sanitized(texts), allowed, disallowed, num_threads)

    def encode_batch_flat(
        self,
        text: Sequence[str],
        *,
        num_threads: int = 0,
        allowed_special: _Special = frozenset(),
        disallowed_special: _Special = "all",
    ) -> tuple[memoryview, memoryview]:
        """``encode_batch`` into one flat buffer, without a Python int per token: returns
        ``(tokens, offsets)``, read-only memoryviews of ``uint32`` tokens and of
        ``len(text) + 1`` ``uint64`` offsets; text ``i``'s tokens are
        ``tokens[offsets[i]:offsets[i + 1]]``. ``numpy.frombuffer(tokens, numpy.uint32)`` wraps
        them without a copy; ``tokens.tolist()`` gives a list.

        >>> tokens, offsets = get_encoding("cl100k_base").encode_batch_flat(["hello world", "hi"])
        >>> tokens.tolist(), offsets.tolist()
        ([15339, 1917, 6151], [0, 2, 3])
        """
        allowed, disallowed = _special_set(allowed_special), _special_set(disallowed_special)
        texts = list(text)
        try:
            flat = self._core.encode_batch_flat(texts, allowed, disallowed, num_threads)
        except TypeError:
            flat = self._core.encode_batch_flat(_sanitized(texts), allowed, disallowed, num_threads)
        tokens: Any = flat[0]  # buffer protocol (the stubs cannot say so before 3.12)
        offsets: Any = flat[1]
        return memoryview(tokens), memoryview(offsets)

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
        allowed, disallowed = _special_set(allowed_special), _special_set(disallowed_special)
        texts = list(text)
        try:
            return self._core.count_batch(texts, allowed, disallowed, num_threads)
        except TypeError:
            return self._core.count_batch(_sanitized(texts), allowed, disallowed, num_threads)

    def encode_bytes(self, data: bytes) -> list[int]:
        """Tokens of arbitrary bytes, as tiktoken's ``_encode_bytes``: the valid UTF-8 prefix is
        encoded as text and the rest merged with its last piece, so ``decode_bytes`` round-trips.

        >>> get_encoding("cl100k_base").encode_bytes(b" \xec\x8b\xa4\xed")
        [62085]
        """
        return self._core.encode_bytes(bytes(data))

    _encode_bytes = encode_bytes

    def encode_single_token(self, text_or_bytes: str | bytes) -> int:
        """Id of the token (ordinary or special) whose text or bytes these are; ``KeyError`` if
        there is none.

        >>> get_encoding("cl100k_base").encode_single_token("hello")
        15339
        """
        data = text_or_bytes.encode("utf-8") if isinstance(text_or_bytes, str) else text_or_bytes
        token = self._core.encode_single_token(bytes(data))
        if token is None:
            raise KeyError(data)
        return token

    def _encode_single_piece(self, text_or_bytes: str | bytes) -> list[int]:
        """BPE of the bytes as one piece, without the pre-tokenizer's split."""
        data = text_or_bytes.encode("utf-8") if isinstance(text_or_bytes, str) else text_or_bytes
        return self._core.encode_single_piece(bytes(data))

    def _encode_only_native_bpe(self, text: str) -> list[int]:
        """Splits with the ``regex`` package and ``pat_str`` instead of the core's scanner (a
        cross-check, as in tiktoken; needs ``regex``)."""
        import regex  # type: ignore[import-untyped,unused-ignore]

        out: list[int] = []
        for piece in regex.findall(regex.compile(self._pat_str), text):
            out.extend(self._core.encode_single_piece(piece.encode("utf-8")))
        return out

    # ---- decoding ---------------------------------------------------------------------------

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
        """Bytes of one token (special tokens included); ``KeyError`` if unknown."""
        return self._core.token_bytes(token)

    def decode_tokens_bytes(self, tokens: Sequence[int]) -> list[bytes]:
        """Bytes of each token."""
        token_bytes = self._core.token_bytes
        return [token_bytes(t) for t in tokens]

    def decode_with_offsets(self, tokens: Sequence[int]) -> tuple[str, list[int]]:
        """Text of ``tokens`` and, per token, the index of the first character holding its bytes.

        Raises ``UnicodeDecodeError`` if the bytes are not valid UTF-8, as tiktoken does.
        """
        data, offsets = self._core.decode_with_offsets(tokens)
        return data.decode("utf-8", errors="strict"), offsets

    def decode_batch(
        self, batch: Sequence[Sequence[int]], *, errors: str = "replace", num_threads: int = 8
    ) -> list[str]:
        """``[self.decode(tokens, errors) for tokens in batch]`` (one core call; ``num_threads`` is
        accepted for tiktoken compatibility)."""
        return [b.decode("utf-8", errors=errors) for b in self._core.decode_bytes_batch(batch)]

    def decode_bytes_batch(
        self, batch: Sequence[Sequence[int]], *, num_threads: int = 8
    ) -> list[bytes]:
        """``[self.decode_bytes(tokens) for tokens in batch]`` in one core call."""
        return self._core.decode_bytes_batch(batch)

    def token_byte_values(self) -> list[bytes]:
        """Bytes of every ordinary token, sorted (as tiktoken)."""
        return self._core.token_byte_values()

    # ---- pickling (as tiktoken: registered encodings by name) -------------------------------

    def __getstate__(self) -> object:
        if _ENCODINGS.get(self.name) is self:
            return self.name
        return {
            "name": self.name,
            "pat_str": self._pat_str,
            "mergeable_ranks": self._mergeable_ranks,
            "special_tokens": self._special_tokens,
        }

    def __setstate__(self, value: object) -> None:
        if isinstance(value, str):
            self.__dict__ = get_encoding(value).__dict__
            return
        assert isinstance(value, dict)
        self.__init__(**value)  # type: ignore[misc]


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
    """The named encoding (``"cl100k_base"``, ``"o200k_base"`` or ``"o200k_harmony"``), loaded
    lazily and cached.

    Raises ``NotFoundInCatalogError`` (a ``KeyError``) for another name.

    >>> get_encoding("cl100k_base").n_vocab
    100277
    """
    enc = _ENCODINGS.get(name)
    if enc is None:
        enc = _ENCODINGS.setdefault(name, Encoding._from_core(_core.get_encoding(name)))
    return enc


def encoding_for_model(model: str, *, strict: bool = False) -> Encoding:
    """The encoding of ``model`` (an OpenAI or OpenRouter id, or a tokenizer family name).

    OpenAI models get their exact encoding (gpt-4o, gpt-4.1, gpt-5, o-series, gpt-oss ->
    o200k_base; gpt-4, gpt-3.5 -> cl100k_base). OpenAI models whose encoding orroute does not ship
    (the gpt2, r50k and p50k families: davinci, text-davinci-003, code-cushman, ...) raise
    ``NotFoundInCatalogError`` (a ``KeyError``) saying so. Other models get the closest encoding
    used for estimates, unless ``strict`` is true, in which case they raise as tiktoken would.

    >>> encoding_for_model("openai/gpt-4o-mini").name
    'o200k_base'
    """
    return get_encoding(_core.encoding_for_model(model, strict))


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
        self = int.__new__(cls, tokens)
        self.exact = exact
        self.encoding = encoding
        self.family = family
        return self

    def __repr__(self) -> str:
        kind = "exact" if self.exact else "estimated"
        return (
            f"TokenCount({int(self)}, {kind}, encoding={self.encoding!r}, family={self.family!r})"
        )


def _token_count(counted: tuple[int, bool, str, str]) -> TokenCount:
    """The core's (tokens, exact, encoding, family) as a TokenCount, made without calling its
    keyword-only ``__new__`` (that call was half of ``count_tokens`` on a short text)."""
    tokens, exact, encoding, family = counted
    n = int.__new__(TokenCount, tokens)
    attributes = n.__dict__
    attributes["exact"] = exact
    attributes["encoding"] = encoding
    attributes["family"] = family
    return n


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
        try:
            r = _core.count_text_tokens(model, text_or_messages)
        except TypeError as err:
            r = _core.count_text_tokens(model, _retry_text(text_or_messages, err))
    else:
        r = _core.count_chat_tokens_json(
            model, _message_json(text_or_messages), json.dumps(list(tools)) if tools else ""
        )
    return _token_count(r)
