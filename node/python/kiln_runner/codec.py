"""Block outputs as JSON, the form in which they cross between Python and TypeScript blocks.
A pandas DataFrame travels as its records with a type tag (TYPE_KEY) and becomes a DataFrame
again in a downstream Python block; a Series likewise. Other values must be JSON-like."""

import base64
import datetime
import decimal
import json
import math

TYPE_KEY = "$type"
DATAFRAME = "pandas.DataFrame"
SERIES = "pandas.Series"


def _pandas():
    try:
        import pandas

        return pandas
    except ImportError:
        return None


def encode(value, where="output"):
    """A JSON-ready copy of value; a TypeError names what cannot be carried and where."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): encode(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value) if value.is_finite() else None
    pd = _pandas()
    if pd is not None:
        if isinstance(value, pd.DataFrame):
            return _encode_frame(pd, value)
        if isinstance(value, pd.Series):
            return {
                TYPE_KEY: SERIES,
                "name": None if value.name is None else str(value.name),
                "dtype": str(value.dtype),
                "values": json.loads(value.to_json(orient="values", date_format="iso")),
            }
        if value is pd.NaT:
            return None
        if isinstance(value, pd.Timestamp):
            return value.isoformat()
    # numpy scalars and arrays, without importing numpy when the block did not
    item = getattr(value, "item", None)
    tolist = getattr(value, "tolist", None)
    if type(value).__module__ == "numpy":
        if callable(tolist) and getattr(value, "ndim", 0) > 0:
            return encode(tolist(), where)
        if callable(item):
            return encode(item(), where)
    if isinstance(value, (bytes, bytearray)):
        return {TYPE_KEY: "bytes", "base64": base64.b64encode(bytes(value)).decode("ascii")}
    raise TypeError(
        f"{where}: a {type(value).__module__}.{type(value).__name__} cannot be carried between blocks "
        "(outputs are JSON: dict, list, str, number, bool, None, datetime, or a pandas DataFrame/Series)"
    )


def _encode_frame(pd, frame):
    columns = [str(c) for c in frame.columns]
    if len(set(columns)) != len(columns):
        raise TypeError("output: a DataFrame with duplicate column names cannot be carried between blocks")
    frame = frame.copy()
    frame.columns = columns
    records = json.loads(frame.to_json(orient="records", date_format="iso", date_unit="ms")) if len(frame) else []
    return {
        TYPE_KEY: DATAFRAME,
        "columns": columns,
        "dtypes": {c: str(t) for c, t in frame.dtypes.items()},
        "records": records,
    }


def decode(value):
    """The Python value of a JSON input: tagged DataFrames (where pandas is installed) become DataFrames."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    tag = value.get(TYPE_KEY)
    if tag == DATAFRAME and isinstance(value.get("records"), list):
        pd = _pandas()
        if pd is not None:
            return _decode_frame(pd, value)
        return value
    if tag == SERIES and isinstance(value.get("values"), list):
        pd = _pandas()
        if pd is not None:
            series = pd.Series(value["values"], name=value.get("name"))
            return _restore_dtype(pd, series, value.get("dtype"))
        return value
    if tag == "bytes" and isinstance(value.get("base64"), str):
        return base64.b64decode(value["base64"])
    return {k: decode(v) for k, v in value.items()}


def _decode_frame(pd, value):
    columns = value.get("columns") or None
    frame = pd.DataFrame.from_records(value["records"], columns=columns)
    for column, dtype in (value.get("dtypes") or {}).items():
        if column in frame.columns:
            frame[column] = _restore_dtype(pd, frame[column], dtype)
    return frame


def _restore_dtype(pd, series, dtype):
    if not isinstance(dtype, str) or str(series.dtype) == dtype:
        return series
    try:
        if dtype.startswith("datetime64"):
            utc = "UTC" in dtype or "+" in dtype
            converted = pd.to_datetime(series, utc=utc)
            return converted if utc or "[" not in dtype else converted.astype(dtype)
        return series.astype(dtype)
    except (TypeError, ValueError):
        # e.g. an int column with nulls: keep what JSON gave
        return series


def dumps(value):
    return json.dumps(encode(value), allow_nan=False)
