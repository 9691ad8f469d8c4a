"""Inputs from the Hugging Face `datasets` world, read as rows like the lines of a file (data.py then
detects each row's format and checks it exactly as for JSONL):

- `hf:ID[:CONFIG[:SPLIT]]`: a hub data set, `load_dataset(ID, CONFIG, split=SPLIT)`; the split defaults
  to `train`, the config to the data set's default (`hf:openai/gsm8k:main:test`, `hf:tatsu-lab/alpaca`,
  `hf:tatsu-lab/alpaca::train`). With HF_DATASETS_OFFLINE=1 it resolves through the local cache only.
- a folder written by `Dataset.save_to_disk` (for a `DatasetDict`, the folder of one split: `pool/train`);
- a `.arrow` file (the Arrow IPC stream `datasets` writes, or an Arrow IPC file), read with pyarrow.

A row's place is `<source>:row N` (N counts from 0, as for Parquet). Such records have no input line, so
an export writes each selected row as one JSON object: its fields as read, less the columns that are null
in that row (Arrow gives every row every column; a JSON line would not have them).
`datasets` is imported only when a hub id or a save_to_disk folder is read.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import DataError

HUB_PREFIX = "hf:"
# A hub id: `name` or `owner/name`, each part starting with a letter or digit (so no `/`, `.`, `~` first).
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?", re.ASCII)


def is_hub(spec) -> bool:
    return str(spec).startswith(HUB_PREFIX)


def is_source(spec) -> bool:
    """Whether this module reads `spec` (a hub id, a folder or an .arrow file), not data.py's file readers."""
    path = Path(spec)
    return is_hub(spec) or path.is_dir() or path.suffix.lower() == ".arrow"


def parse_hub(spec: str) -> tuple[str, str | None, str]:
    """`hf:ID[:CONFIG[:SPLIT]]` -> (ID, CONFIG or None, SPLIT, default train)."""
    parts = str(spec)[len(HUB_PREFIX) :].split(":")
    if not parts[0] or len(parts) > 3:
        raise DataError(
            str(spec), None, "write a hub data set as hf:ID[:CONFIG[:SPLIT]], e.g. hf:openai/gsm8k:main:test"
        )
    repo, config, split = (parts + [None, None])[:3]
    # datasets.load_dataset reads a local folder or file of that name instead of the hub (a .txt line by
    # line): hf: takes hub ids only, never a path.
    if not HUB_ID.fullmatch(repo) or ".." in repo or Path(repo).exists():
        raise DataError(
            str(spec),
            None,
            f"{repo!r} is not a hub id: hf: takes hub ids only (hf:OWNER/NAME[:CONFIG[:SPLIT]]); "
            "give a local file or save_to_disk folder as a plain path, without hf:",
        )
    return repo, config or None, split or "train"


def _datasets(spec):
    try:
        import datasets
    except ImportError:
        raise DataError(
            str(spec),
            None,
            "reading Hugging Face data sets needs the datasets package: pip install 'nait-studio[datasets]'",
        ) from None
    return datasets


def _hub_rows(spec: str):
    repo, config, split = parse_hub(spec)
    datasets = _datasets(spec)
    try:
        data = datasets.load_dataset(repo, config, split=split)
    except Exception as error:  # datasets raises many types (hub, offline, config, split); all mean "cannot load"
        offline = (
            " (offline: HF_DATASETS_OFFLINE is set, so only the local cache is used)"
            if datasets.config.HF_DATASETS_OFFLINE
            else ""
        )
        raise DataError(
            spec,
            None,
            f"cannot load hub data set {repo!r}, config {config or 'default'}, split {split}"
            f"{offline}: {type(error).__name__}: {error}",
        ) from None
    return data


def _folder_rows(path: Path):
    if (path / "dataset_dict.json").is_file():
        splits = sorted(p.name for p in path.iterdir() if (p / "state.json").is_file())
        raise DataError(
            str(path),
            None,
            f"holds several splits ({', '.join(splits)}): give one split's folder, "
            f"e.g. {path / (splits[0] if splits else 'train')}",
        )
    if not (path / "state.json").is_file():
        raise DataError(
            str(path),
            None,
            "is a folder but not one written by save_to_disk (no state.json); "
            "give a file (.json, .jsonl, .parquet, .csv, .arrow) or such a folder",
        )
    try:
        return _datasets(path).load_from_disk(str(path))
    except DataError:
        raise
    except Exception as error:
        raise DataError(
            str(path), None, f"cannot read this save_to_disk folder: {type(error).__name__}: {error}"
        ) from None


def _arrow_table(path: Path):
    import pyarrow as pa

    if not path.is_file():
        raise DataError(str(path), None, "file not found")
    errors = []
    for open_reader in (pa.ipc.open_stream, pa.ipc.open_file):  # datasets writes streams; others write files
        try:
            with pa.memory_map(str(path)) as source:
                return open_reader(source).read_all()
        except (pa.ArrowInvalid, OSError) as error:
            errors.append(str(error))
    raise DataError(str(path), None, f"not an Arrow IPC stream or file ({errors[-1]})")


def iter_rows(spec):
    """Yield (where, row, None) for every row of `spec`, in order: the shape of data.py's readers."""
    if is_hub(spec):
        label, rows = str(spec), _hub_rows(str(spec))
    elif Path(spec).is_dir():
        label, rows = str(spec), _folder_rows(Path(spec))
    else:
        label = str(spec)
        table = _arrow_table(Path(spec))
        rows = (row for batch in table.to_batches() for row in batch.to_pylist())
    for number, row in enumerate(rows):
        # Arrow gives every row every column: a column this row lacks reads as None. Leave it out, as it would
        # be absent from the row's JSON line, so format detection sees the row's own fields.
        if isinstance(row, dict):
            row = {key: value for key, value in row.items() if value is not None}
        yield f"{label}:row {number}", row, None


def source_name(spec) -> str:
    """A short name for grouping and store folders: the hub id's last part (with config and split), or the
    folder's / file's name."""
    if is_hub(spec):
        repo, config, split = parse_hub(str(spec))
        return ":".join(p for p in (repo.rsplit("/", 1)[-1], config, split) if p)
    path = Path(spec)
    if path.is_dir() and (path.parent / "dataset_dict.json").is_file():  # one split of a DatasetDict
        return f"{path.parent.name}-{path.name}"
    return path.stem
