"""TF Serving's REST JSON ↔ NumPy tensors, with validation that names what is wrong.

Row format (``instances``): a list with one item per example; with several named inputs each
item is an object ``{input_name: value}``. Columnar format (``inputs``): one value, or an object
``{input_name: tensor}``. Binary values are ``{"b64": "..."}``. The response mirrors the request:
``predictions`` (rows) or ``outputs`` (columns), without names when there is a single output.

One deliberate difference from TF Serving: float inputs holding NaN or ±Infinity are refused with
400 (TF Serving accepts them, as its JSON allows the tokens); for this course's models such a
value is always a client bug, and a model fed NaN returns NaN silently.
"""

from __future__ import annotations

import base64
import binascii
import json

import numpy as np

from helpers.serving.errors import InvalidArgument
from helpers.serving.models import Signature, TensorSpec


def parse_json(body: bytes) -> dict:
    """Parse a request body; anything but a JSON object is a 400 with the parser's message."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidArgument(f"JSON Parse error: {error}") from None
    if not isinstance(document, dict):
        raise InvalidArgument("JSON Value must be an object with 'instances' or 'inputs'")
    return document


def _decode_b64(value):
    if isinstance(value, dict):
        if set(value) != {"b64"} or not isinstance(value["b64"], str):
            raise InvalidArgument('Binary values must be written {"b64": "<base64 string>"}')
        try:
            return base64.b64decode(value["b64"], validate=True)
        except binascii.Error as error:
            raise InvalidArgument(f"Invalid base64 value: {error}") from None
    if isinstance(value, list):
        return [_decode_b64(item) for item in value]
    return value


def _shape_text(shape) -> str:
    return "[" + ", ".join("-1" if d is None else str(d) for d in shape) + "]"


def validate_tensor(array: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Check one input tensor against its signature spec; the one validation path of REST and gRPC.

    Refuses (``InvalidArgument``, messages naming the input) an empty batch, a shape that does
    not match (``None`` in ``spec.shape`` matches any size), a dtype other than the signature's
    (REST converts first, see :func:`to_tensor`; gRPC sends typed TensorProtos) and float
    values that are NaN or infinite. Returns ``array`` unchanged.
    """
    if spec.shape and array.ndim >= 1 and array.shape[0] == 0:
        raise InvalidArgument(f"Input '{spec.name}' is empty: send at least one example")
    if spec.shape and (array.ndim != len(spec.shape) or any(
            want is not None and want != got for want, got in zip(spec.shape, array.shape))):
        raise InvalidArgument(f"Input '{spec.name}' has shape {list(array.shape)}; the signature "
                              f"expects {_shape_text(spec.shape)} (-1: any size)")
    text_wanted, text_given = spec.dtype.kind in "SUO", array.dtype.kind in "SUO"
    if text_wanted != text_given or (not text_wanted and array.dtype != spec.dtype):
        raise InvalidArgument(f"Input '{spec.name}' has dtype {array.dtype.name}; the signature "
                              f"expects {spec.dtype.name}")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise InvalidArgument(f"Input '{spec.name}' contains NaN or Infinity")
    return array


def to_tensor(value, spec: TensorSpec) -> np.ndarray:
    """Convert one JSON value to ``spec``'s dtype, then check it with :func:`validate_tensor`."""
    if spec.dtype.kind in "SUO":
        array = np.asarray(_decode_b64(value), dtype=object)
    else:
        try:
            array = np.asarray(value, dtype=spec.dtype)
        except (ValueError, TypeError) as error:
            raise InvalidArgument(f"Input '{spec.name}': cannot convert to {spec.dtype.name} "
                                  f"(ragged lists or wrong type?): {error}") from None
    return validate_tensor(array, spec)


def request_inputs(document: dict, signature: Signature) -> tuple[dict[str, np.ndarray], str]:
    """The signature's input tensors from a predict request, and its format (row/columnar)."""
    has_rows, has_columns = "instances" in document, "inputs" in document
    if has_rows and has_columns:
        raise InvalidArgument("Request must have either 'instances' or 'inputs', not both")
    if not (has_rows or has_columns):
        raise InvalidArgument("Missing 'instances' or 'inputs' key in the request")
    names = list(signature.inputs)
    if has_rows:
        rows = document["instances"]
        if not isinstance(rows, list):
            raise InvalidArgument("'instances' must be a list, one item per example")
        if all(isinstance(row, dict) and "b64" not in row for row in rows):
            missing = [n for n in names if any(n not in row for row in rows)]
            extra = sorted({k for row in rows for k in row} - set(names))
            if missing or extra:
                raise InvalidArgument(f"Each instance needs exactly the inputs {names}; "
                                      f"missing {missing}, unknown {extra}")
            columns = {n: [row[n] for row in rows] for n in names}
        elif len(names) == 1:
            columns = {names[0]: rows}
        else:
            raise InvalidArgument(f"This signature has {len(names)} inputs {names}: each instance "
                                  f"must be an object naming them")
        return {n: to_tensor(columns[n], signature.inputs[n]) for n in names}, "row"
    value = document["inputs"]
    if isinstance(value, dict) and "b64" not in value:
        missing, extra = [n for n in names if n not in value], sorted(set(value) - set(names))
        if missing or extra:
            raise InvalidArgument(f"'inputs' needs exactly the inputs {names}; missing {missing}, "
                                  f"unknown {extra}")
        return {n: to_tensor(value[n], signature.inputs[n]) for n in names}, "columnar"
    if len(names) != 1:
        raise InvalidArgument(f"This signature has {len(names)} inputs {names}: 'inputs' must be "
                              f"an object naming them")
    return {names[0]: to_tensor(value, signature.inputs[names[0]])}, "columnar"


def _jsonable(array: np.ndarray, name: str):
    if array.dtype.kind in "SO":
        encode = (lambda b: {"b64": base64.b64encode(b).decode()}) if name.endswith("_bytes") else (
            lambda b: b.decode(errors="replace") if isinstance(b, bytes) else b)
        return np.vectorize(encode, otypes=[object])(array).tolist() if array.size else []
    return array.tolist()


def response_body(outputs: dict[str, np.ndarray], request_format: str) -> dict:
    """``{"predictions": ...}`` (row requests) or ``{"outputs": ...}`` (columnar requests)."""
    if request_format == "row":
        if len(outputs) == 1:
            (name, array), = outputs.items()
            return {"predictions": _jsonable(array, name)}
        rows = len(next(iter(outputs.values())))
        columns = {name: _jsonable(array, name) for name, array in outputs.items()}
        return {"predictions": [{name: columns[name][i] for name in columns} for i in range(rows)]}
    if len(outputs) == 1:
        (name, array), = outputs.items()
        return {"outputs": _jsonable(array, name)}
    return {"outputs": {name: _jsonable(array, name) for name, array in outputs.items()}}
