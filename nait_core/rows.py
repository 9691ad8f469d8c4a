"""Reading a file's rows exactly as written: JSON, JSONL (optionally .gz), Parquet, CSV, and Hugging Face
sources (`sources.py`). Yields each row with where it is (`file:line`, `file:row N`) for `data.read_records`,
which turns rows into records; every error names the file and the line.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from pathlib import Path

from .errors import DataError
from .sources import is_source, iter_rows

_BOM = b"\xef\xbb\xbf"  # UTF-8 byte order mark (Excel, Windows tools): a file marker, not part of a record


def file_kind(path: Path) -> str:
    suffixes = path.suffixes
    if suffixes[-1:] == [".gz"]:
        suffixes = suffixes[:-1]
    return suffixes[-1].lower() if suffixes else ""


def _read_bytes(path: Path) -> bytes:
    """A whole file's bytes, decompressed when it ends in .gz (a damaged .gz is a DataError)."""
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        return gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(str(path), None, f"cannot read the file ({error})") from None


class MapPairs(list):
    """A Parquet map that is no JSON object (a key repeats): kept as its [key, value] pairs, and the
    export says so."""


def _map_pairs(value):
    """Parquet rows as `to_pylist` gives them when a map repeats a key: each map (a list of key-value
    tuples, the only tuples pyarrow makes) becomes MapPairs."""
    if isinstance(value, dict):
        return {k: _map_pairs(v) for k, v in value.items()}
    if isinstance(value, list):
        if value and all(isinstance(item, tuple) for item in value):
            return MapPairs([[k, _map_pairs(v)] for k, v in value])
        return [_map_pairs(item) for item in value]
    return value


def _parquet_rows(path: Path) -> list[dict]:
    """A Parquet file's rows; map values as dicts (JSON objects), or MapPairs where a key repeats."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises its own types (ArrowInvalid, …) for a damaged file
        raise DataError(str(path), None, f"not a readable Parquet file ({type(error).__name__}: {error})") from None
    columns = {}
    for name, column in zip(table.column_names, table.columns):
        try:
            columns[name] = column.to_pylist(maps_as_pydicts="strict")
        except KeyError:  # a map repeats a key in some row: those rows keep their pairs
            columns[name] = [_map_value(value) for value in column]
    return [dict(zip(columns, values)) for values in zip(*columns.values())] if columns else []


def _map_value(scalar):
    try:
        return scalar.as_py(maps_as_pydicts="strict")
    except KeyError:
        return _map_pairs(scalar.as_py())


def _decode(data: bytes, where: str, whole_file: bool = False) -> str:
    """Strict UTF-8; a bad byte is a DataError naming where it is (its line, for a whole file)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        at = f"{where}:{line}" if whole_file else where
        raise DataError(at, None, f"not valid UTF-8 (byte 0x{data[error.start]:02x} at column {column})") from None


def _loads(text: str, where: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        return DataError(where, None, f"not valid JSON ({error.msg})")
    except RecursionError:  # Python's JSON parser recurses once per level
        return DataError(where, None, "not readable JSON: nested too deeply")
    except ValueError as error:  # e.g. an integer with more digits than Python converts
        return DataError(where, None, f"not readable JSON ({error})")


def _jsonl_lines(path: Path):
    """(line number, exact line bytes without its newline) in file order; a CR before it is kept."""
    opener = gzip.open if path.suffix == ".gz" else open
    number = 0
    try:
        with opener(path, "rb") as f:
            for number, line in enumerate(f, start=1):
                if number == 1 and line.startswith(_BOM):
                    line = line[len(_BOM) :]
                yield number, line[:-1] if line.endswith(b"\n") else line
    except (OSError, EOFError, zlib.error) as error:  # a damaged .gz
        raise DataError(f"{path}:{number + 1}", None, f"cannot read the file ({error})") from None


def file_rows(path: Path):
    """Yield (where, row dict or DataError, raw line) in file order. Errors of one record are
    yielded (skippable); errors that spoil the whole file are raised."""
    if is_source(path):  # hf: hub ids, save_to_disk folders, .arrow files
        yield from iter_rows(path)
        return
    kind = file_kind(path)
    if kind == ".jsonl":
        for number, data in _jsonl_lines(path):
            where = f"{path}:{number}"
            try:
                text = _decode(data, where)
            except DataError as error:
                yield where, error, None
                continue
            if not text.strip():
                continue
            row = _loads(text, where)
            yield where, row, None if isinstance(row, DataError) else text
    elif kind == ".json":
        data = _read_bytes(path)
        text = _decode(data[len(_BOM) :] if data.startswith(_BOM) else data, str(path), whole_file=True)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{error.lineno}", None, f"not valid JSON ({error.msg})") from None
        except RecursionError:
            raise DataError(str(path), None, "not readable JSON: nested too deeply") from None
        except ValueError as error:
            raise DataError(str(path), None, f"not readable JSON ({error})") from None
        if isinstance(data, dict):  # {"data": [...]} or a single record
            lists = [v for v in data.values() if isinstance(v, list)]
            record_like = any(k in data for k in ("conversations", "messages", "instruction", "text"))
            data = lists[0] if len(lists) == 1 and not record_like else [data]
        if not isinstance(data, list):
            raise DataError(
                str(path),
                None,
                "expected a JSON array of records (or one record object), "
                f"got {'null' if data is None else type(data).__name__}",
            )
        for number, row in enumerate(data):
            yield f"{path}:item {number}", row, None
    elif kind == ".parquet":
        for number, row in enumerate(_parquet_rows(path)):
            yield f"{path}:row {number}", row, None
    elif kind == ".csv":
        import csv

        data = _read_bytes(path)
        # surrogateescape: a bad byte stays in its field and is reported there (skippable), not for the file
        text = (data[len(_BOM) :] if data.startswith(_BOM) else data).decode("utf-8", "surrogateescape")
        csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))  # long code answers exceed the 128 kB default
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            header = next(reader, None)
            if header is None:
                return
            repeated = sorted({name for name in header if header.count(name) > 1})
            if repeated:
                raise DataError(f"{path}:1", repeated[0], "column appears more than once in the header")
            for values in reader:
                where = f"{path}:{reader.line_num}"
                if not values:
                    continue
                if len(values) != len(header):
                    column = min(len(values), len(header)) + 1
                    yield (
                        where,
                        DataError(
                            where, f"column {column}", f"row has {len(values)} fields, the header has {len(header)}"
                        ),
                        None,
                    )
                    continue
                yield where, dict(zip(header, values)), None
        except csv.Error as error:
            raise DataError(f"{path}:{reader.line_num}", None, f"not valid CSV ({error})") from None
    else:
        raise DataError(
            str(path),
            None,
            "unknown file type; use .json, .jsonl, .parquet, .csv, .arrow, a save_to_disk folder or hf:<hub id>",
        )
