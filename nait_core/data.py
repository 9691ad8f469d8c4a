"""Read instruction records from JSON, JSONL, Parquet or CSV, keep each one exactly as read, and
turn it into a conversation (a list of {"role", "content"} turns ending with the response).

Formats: `alpaca` (instruction/input/output), `sharegpt` (conversations with from/value),
`messages` (messages with role/content), `text` (one plain text field, `text_field`).
Every error names the file, the line (or row) and the field.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

FORMATS = ("alpaca", "sharegpt", "messages", "text")
_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "chatgpt": "assistant", "bing": "assistant", "bard": "assistant", "system": "system"}


class DataError(ValueError):
    """Bad input. `where` is `file:line` (or `file:row N`), `field` the offending field."""

    def __init__(self, where: str, field_name: str | None, problem: str):
        self.where, self.field, self.problem = where, field_name, problem
        at = f"{where}: field '{field_name}'" if field_name else where
        super().__init__(f"{at}: {problem}")


@dataclass
class Record:
    """One input record: the original as read, where it came from, and its conversation."""

    raw: dict  # exactly as read: same keys, same values
    where: str  # "file:line" for error messages and exports
    source: str  # a tag for grouping (the built-in set name, or the file name)
    conversation: list[dict]  # [{"role", "content"}, ...]; the last turn is the response
    raw_line: str | None = None  # the exact input line, for JSONL inputs (exported verbatim)

    @property
    def prompt(self) -> list[dict]:
        return self.conversation[:-1]

    @property
    def response(self) -> str:
        return self.conversation[-1]["content"]

    def preview(self, width: int = 200) -> str:
        text = " ".join(turn["content"] for turn in self.prompt) or self.response
        return text if len(text) <= width else text[: width - 1] + "…"


@dataclass
class Dataset:
    """Records of one input, plus a report of what was skipped."""

    name: str
    records: list[Record]
    skipped: list[str] = field(default_factory=list)  # "file:line: why" for each skipped record

    def __len__(self) -> int:
        return len(self.records)

    def subset(self, indices, name: str | None = None) -> "Dataset":
        return Dataset(name or self.name, [self.records[i] for i in indices], self.skipped)


# ---------------------------------------------------------------- reading files

def _iter_rows(path: Path):
    """Yield (where, row dict or parse error, raw line) in file order."""
    from .sources import is_source, iter_rows  # hf: hub ids, save_to_disk folders, .arrow files

    if is_source(path):
        yield from iter_rows(path)
        return
    suffixes = path.suffixes
    if suffixes[-1:] == [".gz"]:
        suffixes = suffixes[:-1]
    kind = suffixes[-1].lower() if suffixes else ""
    if kind == ".jsonl":
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                text = line.rstrip("\n").rstrip("\r")
                if not text.strip():
                    continue
                try:
                    row = json.loads(text)
                except json.JSONDecodeError as error:
                    yield f"{path}:{number}", DataError(f"{path}:{number}", None, f"not valid JSON ({error.msg})"), text
                    continue
                yield f"{path}:{number}", row, text
    elif kind == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{error.lineno}", None, f"not valid JSON ({error.msg})") from error
        if isinstance(data, dict):  # {"data": [...]} or a single record
            lists = [v for v in data.values() if isinstance(v, list)]
            data = lists[0] if len(lists) == 1 and "conversations" not in data and "messages" not in data else [data]
        for number, row in enumerate(data):
            yield f"{path}:item {number}", row, None
    elif kind == ".parquet":
        import pyarrow.parquet as pq

        for number, row in enumerate(pq.read_table(path).to_pylist()):
            yield f"{path}:row {number}", row, None
    elif kind == ".csv":
        import csv

        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            for row in reader:
                yield f"{path}:{reader.line_num}", row, None
    else:
        raise DataError(str(path), None, "unknown file type; use .json, .jsonl, .parquet, .csv, .arrow, "
                                         "a save_to_disk folder or hf:<hub id>")


def detect_format(row: dict, text_field: str | None = None) -> str:
    if text_field:
        return "text"
    if "conversations" in row:
        return "sharegpt"
    if "messages" in row:
        return "messages"
    if "instruction" in row:
        return "alpaca"
    if "text" in row:
        return "text"
    raise ValueError(
        f"cannot tell the record format from its keys {sorted(row)}; "
        f"use --format {'|'.join(FORMATS)} (and --text-field for plain text)"
    )


def _text(row: dict, key: str, where: str, required: bool = True, allow_empty: bool = False) -> str:
    if key not in row or row[key] is None:
        if required:
            raise DataError(where, key, "missing")
        return ""
    value = row[key]
    if isinstance(value, float) and math.isnan(value):
        raise DataError(where, key, "missing (NaN)")
    if not isinstance(value, str):
        raise DataError(where, key, f"expected text, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise DataError(where, key, "empty text")
    return value


def _turns(row: dict, key: str, role_key: str, text_key: str, roles: dict | None, where: str) -> list[dict]:
    turns = row.get(key)
    if not isinstance(turns, list) or not turns:
        raise DataError(where, key, "missing or not a non-empty list of turns")
    out = []
    for i, turn in enumerate(turns):
        name = f"{key}[{i}]"
        if not isinstance(turn, dict):
            raise DataError(where, name, "not an object")
        role = turn.get(role_key)
        role = roles.get(str(role).lower()) if roles else role
        if role not in {"system", "user", "assistant"}:
            raise DataError(where, f"{name}.{role_key}", f"unknown role {turn.get(role_key)!r}")
        out.append({"role": role, "content": _text(turn, text_key, where)})
    if out[-1]["role"] != "assistant":
        raise DataError(where, f"{key}[{len(turns) - 1}].{role_key}", "the last turn must be the assistant's response")
    return out


def to_conversation(row: dict, fmt: str, where: str, text_field: str | None = None) -> list[dict]:
    """The record as chat turns; the last turn is the response whose neurons and loss we study."""
    if not isinstance(row, dict):
        raise DataError(where, None, f"expected a JSON object, got {type(row).__name__}")
    if fmt == "alpaca":
        instruction = _text(row, "instruction", where)
        extra = _text(row, "input", where, required=False, allow_empty=True)
        prompt = f"{instruction}\n\n{extra}" if extra.strip() else instruction
        return [{"role": "user", "content": prompt}, {"role": "assistant", "content": _text(row, "output", where)}]
    if fmt == "sharegpt":
        return _turns(row, "conversations", "from", "value", _SHAREGPT_ROLES, where)
    if fmt == "messages":
        return _turns(row, "messages", "role", "content", None, where)
    if fmt == "text":
        # Plain text has no prompt: the whole text is the "response" span.
        return [{"role": "assistant", "content": _text(row, text_field or "text", where)}]
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


def read_records(
    path: str | Path,
    fmt: str | None = None,
    text_field: str | None = None,
    skip_invalid: bool = False,
    source: str | None = None,
) -> Dataset:
    """Read every record of `path`. Bad records raise DataError unless `skip_invalid`, in which case
    they are listed in `Dataset.skipped` (never dropped silently)."""
    from .sources import is_hub

    path = Path(path)
    if not path.exists() and not is_hub(path):
        raise DataError(str(path), None, "file not found")
    records, skipped = [], []
    for where, row, raw_line in _iter_rows(path):
        try:
            if isinstance(row, DataError):
                raise row
            if not isinstance(row, dict):
                raise DataError(where, None, f"expected a JSON object, got {type(row).__name__}")
            try:
                row_fmt = fmt or detect_format(row, text_field)
            except ValueError as error:
                raise DataError(where, None, str(error)) from error
            conversation = to_conversation(row, row_fmt, where, text_field)
        except DataError as error:
            if not skip_invalid:
                raise
            skipped.append(str(error))
            continue
        records.append(Record(row, where, source or path.stem, conversation, raw_line))
    if not records:
        raise DataError(str(path), None, f"no valid records ({len(skipped)} skipped)")
    return Dataset(source or path.stem, records, skipped)


# ---------------------------------------------------------------- rendering

PLAIN_TEMPLATE = {"system": "### System:\n{}\n\n", "user": "### Instruction:\n{}\n\n", "assistant": "### Response:\n{}"}


def render(conversation: list[dict], tokenizer) -> tuple[str, int]:
    """Render with the model's chat template (a plain Alpaca-style template if it has none).

    Returns (text, response_start): the response is text[response_start:].
    """
    prompt, response = conversation[:-1], conversation[-1]
    if getattr(tokenizer, "chat_template", None) and prompt:
        prompt_text = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
        full_text = tokenizer.apply_chat_template(conversation, tokenize=False)
        if full_text.startswith(prompt_text):
            return full_text, len(prompt_text)
        return prompt_text + response["content"], len(prompt_text)  # templates that rewrite history
    if not prompt:
        return response["content"], 0
    prompt_text = "".join(PLAIN_TEMPLATE[t["role"]].format(t["content"]) for t in prompt)
    prompt_text += PLAIN_TEMPLATE["assistant"].format("")
    return prompt_text + response["content"], len(prompt_text)


def content_hash(texts) -> str:
    h = hashlib.sha256()
    for text in texts:
        h.update(hashlib.sha256(text.encode()).digest())
    return h.hexdigest()
