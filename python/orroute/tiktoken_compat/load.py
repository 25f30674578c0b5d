"""``tiktoken.load``: reading ``.tiktoken`` vocabulary files (parsed by orroute's core)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from .. import _core

__all__ = ["load_tiktoken_bpe", "read_file", "read_file_cached"]


def read_file(blobpath: str) -> bytes:
    """Bytes of a local path or ``file://`` URL; an ``http(s)`` URL is fetched with urllib."""
    if blobpath.startswith(("http://", "https://")):
        import urllib.request

        with urllib.request.urlopen(blobpath, timeout=60) as response:
            return bytes(response.read())
    blobpath = blobpath.removeprefix("file://")
    return Path(blobpath).read_bytes()


def _check_hash(data: bytes, expected_hash: str) -> bool:
    return hashlib.sha256(data).hexdigest() == expected_hash


def read_file_cached(blobpath: str, expected_hash: str | None = None) -> bytes:
    """``read_file`` through tiktoken's cache (``TIKTOKEN_CACHE_DIR``, else ``DATA_GYM_CACHE_DIR``,
    else ``<tmp>/data-gym-cache``; files named by the SHA-1 of the path), checking
    ``expected_hash`` (SHA-256) as tiktoken does."""
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        cache_dir = os.environ["TIKTOKEN_CACHE_DIR"]
    elif "DATA_GYM_CACHE_DIR" in os.environ:
        cache_dir = os.environ["DATA_GYM_CACHE_DIR"]
    else:
        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    cache_path = os.path.join(cache_dir, hashlib.sha1(blobpath.encode()).hexdigest())
    if cache_dir and os.path.exists(cache_path):
        data = Path(cache_path).read_bytes()
        if expected_hash is None or _check_hash(data, expected_hash):
            return data
    data = read_file(blobpath)
    if expected_hash and not _check_hash(data, expected_hash):
        raise ValueError(
            f"Hash mismatch for data downloaded from {blobpath} (expected {expected_hash}). "
            "This may indicate a corrupted download. Please try again."
        )
    if cache_dir:
        try:
            os.makedirs(cache_dir, exist_ok=True)
            tmp = f"{cache_path}.{os.getpid()}.tmp"
            Path(tmp).write_bytes(data)
            os.rename(tmp, cache_path)
        except OSError:
            pass
    return data


def load_tiktoken_bpe(tiktoken_bpe_file: str, expected_hash: str | None = None) -> dict[bytes, int]:
    """Mergeable ranks (token bytes -> rank) of a ``.tiktoken`` file (``base64 rank`` per line).

    Raises ``orroute.ParseError`` (a ``ValueError``) naming the line for a malformed file.
    """
    data = read_file_cached(tiktoken_bpe_file, expected_hash)
    return _core.parse_tiktoken_ranks(data, tiktoken_bpe_file)
