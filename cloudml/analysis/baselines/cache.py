"""A JSON file of baseline results keyed by (data file, its mtime and size, split, keys, version).

A damaged cache is only a cache: it is recomputed, never an error.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Optional

from cloudml.atomic import write_json

FEATURE_VERSION = 3  # bump when the features or the fit change: cached results then recompute


def cache_key(data_path: Path, split_hash: str, keys: dict) -> str:
    """One string for the inputs a baseline result depends on; OSError if the file is gone."""
    st = Path(data_path).stat()
    parts = [str(Path(data_path).resolve()), st.st_mtime_ns, st.st_size, split_hash, sorted(keys.items()), FEATURE_VERSION]
    return hashlib.sha1(json.dumps(parts, default=str).encode()).hexdigest()


def _read(cache_file: Optional[Path]) -> dict:
    if cache_file is None or not cache_file.is_file():
        return {}
    try:
        cache = json.loads(cache_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return cache if isinstance(cache, dict) else {}


def cached(cache_file: Optional[Path], key: str, compute: Callable[[], dict]) -> dict:
    """``compute()``, or its stored result under ``key``; a result marked unavailable is not stored."""
    cache = _read(cache_file)
    if key in cache:
        return cache[key]
    result = compute()
    if cache_file is not None and result.get("available"):
        write_json(cache_file, {**cache, key: result})
    return result
