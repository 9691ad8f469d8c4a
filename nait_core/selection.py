"""Cut scores into a selection, merge several targets, compare methods (`cuts.py`, re-exported here), and
export: the selected records exactly as read, and their scores, written atomically and never over an input.
"""

from __future__ import annotations

import base64
import errno
import json
import math
import os
import shutil
import stat
import sys
from pathlib import Path

import numpy as np

from . import atomic
from .cuts import (  # noqa: F401 (re-exported: `from nait_core.selection import Cut, select` as always)
    MERGES,
    Cut,
    Selection,
    agreement,
    auroc,
    percentile,
    ranking,
    ratio_count,
    select,
    zscore,
)
from .data import MapPairs

STDOUT = "-"  # an output path meaning standard output (`--out -`), where the caller allows it


class OutputError(ValueError, OSError):
    """An output that cannot or must not be written; the message names the path and the fix. A ValueError
    (the CLI's `nait: error`) and an OSError (what a caller of `export` catches for a failed write)."""


def _same_file(a: Path, b: Path) -> bool:
    """The same file: through symlinks and hard links when both exist, by resolved path otherwise."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _check_writable(option: str, path: Path) -> None:
    """`path` can be created: its first existing ancestor is a folder we may write in."""
    ancestor = path.parent
    while not ancestor.exists() and not ancestor.is_symlink() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError(f"{option} {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {path}: no permission to write in {ancestor}")


def _not_a_plain_file(option: str, path: Path) -> str | None:
    """Why `path` may never be written (it is a symlink, or exists and is no regular file), or None."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # nothing there (a missing parent is checked later)
        return None
    if stat.S_ISLNK(mode):
        return (
            f"{option} {path} is a symbolic link (to {os.readlink(path)}): an output never replaces a link nor "
            "writes through one; give the real path" + (" or '-' for standard output" if option == "--out" else "")
        )
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        kinds = {stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device", stat.S_ISFIFO: "a FIFO"}
        what = next((name for test, name in kinds.items() if test(mode)), "a socket or other special file")
        return f"{option} {path} is {what}, not a regular file: nait writes only regular files; choose another path"
    return None


def check_output_paths(
    outputs: dict, inputs: dict, force: bool = False, folders: dict | None = None, stdout: bool = False
) -> None:
    """Refuse, before any slow work, outputs that would destroy something or fail at the end.

    `outputs` and `folders` map an option to a file (or folder) path or None; `inputs` maps an option
    to its values (a file path, or a built-in name that is no file). An output may be no input and no
    other output, is not a folder (nor, for `folders`, a file), never a symlink or a special file (a
    device, FIFO or socket: `force` replaces regular files only), and its parent can be created; an
    existing output file is replaced only with `force`. With `stdout`, '-' is standard output (one at most)."""
    given = [(option, Path(path), False) for option, path in outputs.items() if path is not None]
    given += [(option, Path(path), True) for option, path in (folders or {}).items() if path is not None]
    piped = [option for option, path, folder in given if stdout and not folder and str(path) == STDOUT]
    if len(piped) > 1:
        raise OutputError(f"{' and '.join(piped)} are both '-' (standard output); give one of them a file path")
    given = [(option, path, folder) for option, path, folder in given if option not in piped]
    for n, (option, path, folder) in enumerate(given):
        for in_option, values in inputs.items():
            for value in values:
                if Path(value).exists() and _same_file(path, Path(value)):
                    raise OutputError(
                        f"{option} {path} is the input {in_option} {value}: "
                        "an output never replaces an input; choose another path"
                    )
        for other_option, other, _ in given[:n]:
            if _same_file(path, other):
                raise OutputError(f"{option} and {other_option} are the same file {path}; give each its own path")
        if not folder and (why := _not_a_plain_file(option, path)):
            raise OutputError(why)
        if folder:
            if path.exists() and not path.is_dir():
                raise OutputError(f"{option} {path} is a file; give a folder")
        elif path.is_dir():
            raise OutputError(f"{option} {path} is a folder; give a file path")
        elif path.exists() and not force:
            raise OutputError(f"{option} {path} already exists; pass --force to replace it")
        _check_writable(option, path)


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove the temporary files a killed writer of `path` left beside it (`atomic.leftovers_of`: its pid
    is no running process on this host) and return them. Only regular files go, never a link's target."""
    removed = []
    for leftover in atomic.leftovers_of(path):
        try:
            if stat.S_ISREG(os.lstat(leftover).st_mode):
                leftover.unlink()
                removed.append(leftover)
        except OSError:
            pass
    return removed


def output_error(path: Path, error: OSError) -> OutputError:
    """A failed write of `path` in the words the CLI and the app say it (a full disk named as such)."""
    full = error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
    why = "no space left on device" if full else (error.strerror or str(error)).lower()
    fix = "free some space or write elsewhere" if full else "choose another path"
    return OutputError(f"{path}: {why}; nothing was written and earlier outputs are kept as they were: {fix}")


def _replace_all(temps: dict[Path, Path]) -> None:
    """Rename each written temporary onto its output: all of them, or (restoring what was replaced) none."""
    done: list[tuple[Path, Path | None]] = []  # (output, a copy of the file it replaced, or None)
    path, last = None, list(temps)[-1] if temps else None
    try:
        for path, tmp in temps.items():
            if why := _not_a_plain_file("output", path):  # became a link or a device since the check
                raise OutputError(why)
            old = None
            if path != last and path.exists():  # kept until the outputs after it are in place too
                old = path.with_name(f".{path.name}.tmp{atomic.unique_suffix()}.old")
                try:
                    os.link(path, old)
                except OSError:  # a file system without hard links: a copy (a failed one is removed)
                    try:
                        shutil.copy2(path, old)
                    except BaseException:
                        old.unlink(missing_ok=True)
                        raise
            done.append((path, old))
            os.replace(tmp, path)
    except BaseException as error:
        for put, old in reversed(done):
            if old is not None:
                os.replace(old, put)
            elif not temps[put].exists():  # the new file was renamed into place: remove it
                put.unlink(missing_ok=True)
        if isinstance(error, OSError) and not isinstance(error, OutputError):
            raise output_error(path, error) from None
        raise
    finally:
        for _, old in done:
            if old is not None:
                old.unlink(missing_ok=True)


def _write_stdout(lines: list[str]) -> None:
    try:
        sys.stdout.writelines(line + "\n" for line in lines)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader left (`| head`): say so, and let Python's exit flush go nowhere
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise OutputError(
            "standard output was closed before the whole selection was written (broken pipe); "
            "no other output was written"
        ) from None


def write_outputs(outputs: list[tuple[Path | str, list[str]]], stdout: bool = False) -> None:
    """Write each (path, lines) output, a line per item, so that every new file lands or none does: all
    are written to temporaries first (a full disk stops there, old outputs untouched), then renamed
    together. With `stdout`, the path '-' is standard output (written once the files are, before the
    renames). Temporaries a killed run left beside an output are removed first. An OSError is an
    OutputError naming the output."""
    temps: dict[Path, Path] = {}
    try:
        for path, lines in outputs:
            if stdout and str(path) == STDOUT:
                continue
            path = Path(path)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                remove_stale_temps(path)
                temps[path] = atomic._create_temp(path, "")
                # newline="": a kept "\r" stays one "\r"
                with open(temps[path], "w", encoding="utf-8", newline="") as f:
                    for line in lines:
                        f.write(line + "\n")
            except OSError as error:
                raise output_error(path, error) from None
        for path, lines in outputs:
            if stdout and str(path) == STDOUT:
                _write_stdout(lines)
        _replace_all(temps)
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)


def _jsonable(value, field: str, notes: list[str]):
    """`value` as JSON can hold it; every change is noted (JSON has no NaN, bytes or dates)."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        notes.append(f"field '{field}': {value} exported as null (JSON has no NaN or Infinity)")
        return None
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                notes.append(f"field '{field}': key {key!r} exported as text")
            out[str(key)] = _jsonable(item, f"{field}.{key}" if field else str(key), notes)
        return out
    if isinstance(value, MapPairs):
        notes.append(f"field '{field}': a map with a repeated key exported as a list of [key, value] pairs")
    if isinstance(value, (list, tuple)):
        return [_jsonable(item, f"{field}[{i}]", notes) for i, item in enumerate(value)]
    if isinstance(value, bytes):
        notes.append(f"field '{field}': binary value exported as base64 text")
        return base64.b64encode(value).decode("ascii")
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)  # dates, times, decimals
    notes.append(f"field '{field}': {type(value).__name__} exported as text {text!r}")
    return text


def record_export(record) -> tuple[str, list[str]]:
    """(line, notes): the record's original JSONL line, byte for byte (a CRLF line keeps its "\r");
    else its fields as one JSON line, with a note for each value JSON cannot hold as read."""
    if record.raw_line is not None:
        return record.raw_line, []
    notes: list[str] = []
    line = json.dumps(_jsonable(record.raw, "", notes), ensure_ascii=False, allow_nan=False)
    return line, [f"{record.where}: {note}" for note in notes]


def equal_scores(selection: Selection) -> dict[str, float]:
    """Targets whose scores are all the same over two or more scored records (to 9 significant digits),
    with that score: such scores cannot rank the records, and any cut keeps them in input order."""
    equal = {}
    for name, score in selection.per_target.items():
        finite = np.asarray(score, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        if len(finite) >= 2 and np.ptp(finite) <= 1e-9 * np.abs(finite).max():
            equal[name] = float(finite[0])
    return equal


def equal_scores_message(equal: dict[str, float]) -> str:
    """Why scores that are all equal select nothing meaningful, and the usual causes."""
    which = ", ".join(f"'{name}' ({value:g})" for name, value in equal.items())
    return (
        f"every candidate has the same score for target {which}: the scores cannot rank the records, so the "
        "selection is simply the first records in input order. Usual causes: the target is the pool itself "
        "(overlap centres on the pool mean, leaving nothing to compare), or every record looks the same to the "
        "model (a maximum length of 1 token keeps one token of each)"
    )


def empty_reason(selection: Selection, cut: Cut | None = None, merge: str | None = None) -> str | None:
    """Why nothing was selected (None when something was)."""
    if selection.selected.any():
        return None
    if len(selection.selected) == 0:
        return "there are no candidates"
    if selection.unscored == len(selection.selected):
        return "no record has a score"
    if cut is not None and cut.min_score is not None:
        mean_z = merge == "mean-z" and len(selection.per_target) > 1  # the cut is on the mean z-score
        scores = [selection.score] if mean_z else list(selection.per_target.values())
        best = max((float(np.nanmax(s)) for s in scores if np.isfinite(s).any()), default=math.nan)
        what = "mean z-score" if mean_z else "score"
        return f"no record scores at least {cut.min_score:g} (the best {what} is {best:g})"
    if merge == "intersection":
        return "no record is in every target's selection (merge intersection): use union or mean-z, or a larger cut"
    return "the cut keeps no record"


def export_warnings(
    selection: Selection, notes: list[str], shown: int = 20, cut: Cut | None = None, merge: str | None = None
) -> list[tuple[str, list[str]]]:
    """What a user must be told after an export, as (headline, detail lines): scores that cannot rank
    (all equal), an empty selection and why, records never selected for lack of a score, and values JSON
    could not hold (the first `shown`, then a count). The CLI and the app say it in these words; `cut` and
    `merge`, where known, make the empty selection's reason exact."""
    warnings = []
    if equal := equal_scores(selection):
        warnings.append((equal_scores_message(equal), []))
    if reason := empty_reason(selection, cut, merge):
        warnings.append((f"nothing was selected: {reason}; the export holds no record", []))
    if selection.unscored:
        warnings.append(
            (
                f"{selection.unscored:,} records have no score (NaN, e.g. a response truncated away) "
                "and were not selected",
                [],
            )
        )
    if notes:
        warnings.append(notes_warning(notes, shown))
    return warnings


def notes_warning(notes: list[str], shown: int = 20) -> tuple[str, list[str]]:
    """(headline, detail lines) for exported values JSON could not hold: the first `shown`, then a count."""
    more = [f"… and {len(notes) - shown} more"] if len(notes) > shown else []
    return f"{len(notes)} exported values changed because JSON cannot hold them:", notes[:shown] + more


def selected_lines(records, selection: Selection) -> tuple[list[str], list[str]]:
    """(lines, notes): the selected records as exported, in input order, and a note for each value
    JSON could not hold as read (the user must be told: the file differs there from the input)."""
    lines, notes = [], []
    for i in selection.indices:
        line, record_notes = record_export(records[i])
        lines.append(line)
        notes += record_notes
    return lines, notes


def _clean(value: float):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def score_lines(selection: Selection) -> list[str]:
    """One JSON line per candidate, in input order: index, score, rank, selected, and each target's score."""
    names = list(selection.per_target)
    return [
        json.dumps(
            {
                "index": i,
                "score": _clean(float(selection.score[i])),
                "rank": int(selection.rank[i]),
                "selected": bool(selection.selected[i]),
                "targets": {name: _clean(float(selection.per_target[name][i])) for name in names},
            }
        )
        for i in range(len(selection.score))
    ]


def export(
    records, selection: Selection, out: Path | None = None, scores: Path | None = None, stdout: bool = False
) -> list[str]:
    """Write the selected records (JSONL, input order) and/or the scores file, both or neither
    (`write_outputs`; with `stdout`, '-' is standard output). Returns a note per exported value that
    JSON could not hold as read (e.g. a Parquet NaN -> null)."""
    notes: list[str] = []
    outputs = []
    if out is not None:
        lines, notes = selected_lines(records, selection)
        outputs.append((out, lines))
    if scores is not None:
        outputs.append((scores, score_lines(selection)))
    write_outputs(outputs, stdout)
    return notes
