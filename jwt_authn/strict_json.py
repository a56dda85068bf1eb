"""Strict JSON for untrusted documents: token segments, JWKS and discovery documents.

Python's ``json`` accepts NaN/Infinity and silently keeps the last of duplicate keys; attackers
use both (RFC 7515 §5.2 and RFC 7519 §4 ask to reject duplicate members). Deep nesting ends in
a RecursionError from the parser, which is caught; callers cap the input size.

Usage:
    header = loads_object(raw_bytes, what="header")
"""

from __future__ import annotations

import json
import math
from typing import Any, NoReturn

__all__ = ["StrictJSONError", "loads_object"]


class StrictJSONError(ValueError):
    """The document is not one strict JSON object."""


def _reject_constant(name: str) -> NoReturn:
    raise StrictJSONError(f"non-standard JSON constant {name}")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):  # fewer keys than pairs: some member came twice
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise StrictJSONError(f"duplicate member {key[:40]!r}")
            seen.add(key)
    return result


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise StrictJSONError("number out of range")
    return value


def _parse_int(text: str) -> int:
    # Python refuses ints over 4300 digits by itself; 64 digits is far beyond any real claim.
    if len(text.lstrip("-")) > 64:
        raise StrictJSONError("number too long")
    return int(text)


# Built once: json.loads with hooks would build a decoder on every call.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_without_duplicates,
    parse_constant=_reject_constant,
    parse_float=_parse_float,
    parse_int=_parse_int,
)


def loads_object(data: bytes | str, *, what: str) -> dict[str, Any]:
    """Parse ``data`` as exactly one JSON object, strictly, or raise ``StrictJSONError``."""
    if isinstance(data, bytes):
        # RFC 8259 §8.1: UTF-8 without a byte-order mark. json.loads would also guess UTF-16/32.
        if data.startswith(b"\xef\xbb\xbf"):
            raise StrictJSONError(f"{what} starts with a byte-order mark")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise StrictJSONError(f"{what} is not UTF-8") from None
    try:
        value = _DECODER.decode(data)
    except StrictJSONError as err:
        raise StrictJSONError(f"{what}: {err}") from None
    except (ValueError, RecursionError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise StrictJSONError(f"{what} is not valid JSON ({type(err).__name__})") from None
    if not isinstance(value, dict):
        raise StrictJSONError(f"{what} is not a JSON object")
    return value
