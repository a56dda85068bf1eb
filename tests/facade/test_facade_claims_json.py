"""The claims of a SecureRoute reply as JSON: protobuf's MessageToDict is the oracle."""

from __future__ import annotations

import json
import math
from typing import Any

from google.protobuf import json_format, struct_pb2

from http_facade.routes import _json_object


def test_every_json_type_comes_out_as_message_to_dict_gives_it(
    claims_of_every_json_type: dict[str, Any],
) -> None:
    struct = struct_pb2.Struct()
    struct.update(claims_of_every_json_type)
    converted = _json_object(struct)
    assert converted == json_format.MessageToDict(struct)
    assert converted["admin"] is True and converted["deleted"] is False  # bools stay bools
    assert json.loads(json.dumps(converted)) == converted


def test_a_value_with_no_kind_is_null_and_a_non_finite_number_is_null_not_an_error() -> None:
    struct = struct_pb2.Struct()
    struct.fields["unset"].CopyFrom(struct_pb2.Value())
    struct.fields["huge"].number_value = math.inf
    struct.fields["nan"].number_value = math.nan
    assert _json_object(struct) == {"unset": None, "huge": None, "nan": None}
    json.dumps(_json_object(struct), allow_nan=False)  # valid JSON: no Infinity, no NaN


def test_whole_numbers_come_back_as_integers_and_fractions_stay_fractions() -> None:
    struct = struct_pb2.Struct()
    struct.update({"exp": 1796218210, "ratio": 0.25, "big": 2.0**60, "negative": -3})
    converted = _json_object(struct)
    # Not 1796218210.0: Struct held it as a double. Past 2**53 a double is no exact integer.
    assert {name: json.dumps(value) for name, value in converted.items()} == {
        "exp": "1796218210",
        "negative": "-3",
        "ratio": "0.25",
        "big": "1.152921504606847e+18",
    }
