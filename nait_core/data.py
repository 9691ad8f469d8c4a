"""Read instruction records from JSON, JSONL, Parquet or CSV, keep each one exactly as read, and
turn it into a conversation (a list of {"role", "content"} turns ending with the response).

Formats: `alpaca` (instruction/input/output), `sharegpt` (conversations with from/value),
`messages` (messages with role/content), `text` (one plain text field, `text_field`).
Every error names the file, the line (or row) and the field.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import DataError  # noqa: F401 (re-exported: `from nait_core.data import DataError`)
from .rows import MapPairs, file_kind, file_rows  # noqa: F401 (MapPairs re-exported)
from .sources import is_hub, is_source

FORMATS = ("alpaca", "sharegpt", "messages", "text")
_SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "system": "system",
}


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


def _field_name(path: str, key) -> str:
    return f"{path}.{key}" if path else str(key)


def check_text(row, where: str, csv_bytes: bool = False) -> None:
    """Every key and string of `row` must be valid Unicode: a lone surrogate (a JSON "\\ud800" escape,
    or an undecodable CSV byte kept by surrogateescape) cannot be encoded, hashed or exported."""
    stack = [("", row)]
    while stack:  # iterative: records may nest deeper than Python's recursion limit allows
        path, value = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as error:
                char = value[error.start]
                problem = (
                    f"not valid UTF-8 (byte 0x{ord(char) - 0xDC00:02x})"
                    if csv_bytes
                    else f"contains a lone surrogate \\u{ord(char):04x} (not valid Unicode)"
                )
                raise DataError(where, path or None, problem) from None
        elif isinstance(value, dict):
            for key, item in value.items():
                name = _field_name(path, key)
                if isinstance(key, str):
                    stack.append((name, key))
                stack.append((name, item))
        elif isinstance(value, (list, tuple)):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))


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
    path = Path(path)
    if not path.exists() and not is_hub(path):
        raise DataError(str(path), None, "file not found")
    if path.is_dir() and not is_source(path):
        raise DataError(str(path), None, "is a folder, not a file")
    if not is_hub(path) and not os.access(path, os.R_OK):
        raise DataError(str(path), None, "no permission to read the file")
    csv_bytes = file_kind(path) == ".csv"
    records, skipped = [], []
    for where, row, raw_line in file_rows(path):
        try:
            if isinstance(row, DataError):
                raise row
            if not isinstance(row, dict):
                raise DataError(where, None, f"expected a JSON object, got {type(row).__name__}")
            check_text(row, where, csv_bytes)
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
        first = f"; the first: {skipped[0]}" if skipped else ""
        raise DataError(str(path), None, f"no valid records ({len(skipped)} skipped{first})")
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


def sample_rows(n: int, size: int, seed: int = 0) -> np.ndarray:
    """A seeded random sample of `size` of `n` rows, sorted (input order); every row when `size` >= `n`.
    The one seeded row sampler: `--target-size`, the app's and map's samples, a compact pool's exact sample
    and the rows fire thresholds are estimated on."""
    if size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
