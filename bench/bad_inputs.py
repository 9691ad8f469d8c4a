"""Run `nait` on every bad input we tried and print a Markdown table of what each gets (docs/bad-inputs.md).

    python bench/bad_inputs.py > /tmp/table.md

No model is loaded: every case is refused (or accepted) before any slow work, which is part of what
the table shows. Paths are shown relative to a scratch folder.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nait_core.cli import main  # noqa: E402

POOL = "".join(json.dumps({"instruction": f"Q{i}", "output": f"A{i}"}) + "\n" for i in range(6))
GOOD = b'{"instruction": "c", "output": "d"}\n'
RANDOM = ["--method", "random", "--ratio", "1"]

FILES = {  # name: bytes (or a callable writing the file)
    "pool.jsonl": POOL.encode(),
    "target.jsonl": POOL.encode(),
    "crlf.jsonl": POOL.replace("\n", "\r\n").encode(),
    "bom.jsonl": b"\xef\xbb\xbf" + POOL.encode(),
    "bom.csv": b"\xef\xbb\xbfinstruction,output\nQ,A\n",
    "extra.csv": b"instruction,output\nQ,A\nQ,A,surplus\n",
    "extra-unknown.csv": b"question,answer\nQ,A,surplus\n",
    "short.csv": b"instruction,output\nQ\n",
    "repeated.csv": b"instruction,output,output\nQ,A,B\n",
    "five.json": b"5",
    "null.json": b"null",
    "string.json": b'"text"',
    "deep.jsonl": GOOD + b"[" * 100_000 + b"]" * 100_000 + b"\n",
    "deep.json": b"[" * 100_000 + b"]" * 100_000,
    "surrogate.jsonl": GOOD + b'{"instruction": "a\\ud800", "output": "b"}\n',
    "latin1.jsonl": GOOD + '{"instruction": "caf\xe9", "output": "b"}\n'.encode("latin-1"),
    "latin1.csv": "instruction,output\nQ,A\ncaf\xe9,b\n".encode("latin-1"),
    "latin1.json": '[\n{"instruction": "caf\xe9", "output": "b"}]'.encode("latin-1"),
    "huge-int.jsonl": GOOD + b'{"instruction": "a", "output": "b", "n": ' + b"9" * 5000 + b"}\n",
    "damaged.jsonl.gz": gzip.compress(POOL.encode())[:30],
    "damaged.parquet": b"PAR1 not really",
    "empty.jsonl": b"",
    "exists.jsonl": b"my precious work\n",
    "mine.jsonl": b"my other work\n",
    "afile": b"x",
    "pool.json.gz": gzip.compress(json.dumps([json.loads(line) for line in POOL.splitlines()]).encode()),
    "pool.csv.gz": gzip.compress(b"instruction,output\nQ,A\nR,B\n"),
}


def cases():
    """(label, argv): argv may name files of FILES, relative to the scratch folder."""

    def sel(candidates, *more):
        return ["select", "--candidates", candidates, *RANDOM, *more]

    return [
        ("`--out` = `--candidates`", sel("pool.jsonl", "--out", "pool.jsonl")),
        ("`--out` a symlink to `--candidates`", sel("pool.jsonl", "--out", "link.jsonl")),
        ("`--scores` = `--candidates`", sel("pool.jsonl", "--out", "o.jsonl", "--scores", "pool.jsonl")),
        (
            "`--out` = `--target`",
            [
                "select",
                "--candidates",
                "pool.jsonl",
                "--target",
                "target.jsonl",
                "--ratio",
                "0.1",
                "--out",
                "target.jsonl",
            ],
        ),
        ("`--out` = `--scores`", sel("pool.jsonl", "--out", "o.jsonl", "--scores", "o.jsonl")),
        ("`--out` exists", sel("pool.jsonl", "--out", "exists.jsonl")),
        ("`--out` exists, `--force`", sel("pool.jsonl", "--out", "exists.jsonl", "--force")),
        ("`--out` a folder", sel("pool.jsonl", "--out", "folder")),
        ("`--out` under a file", sel("pool.jsonl", "--out", "afile/o.jsonl")),
        (
            "`score --ratio 0`",
            [
                "score",
                "--candidates",
                "pool.jsonl",
                "--feature",
                "f.safetensors",
                "--scores",
                "s.jsonl",
                "--ratio",
                "0",
            ],
        ),
        (
            "`score --top 0`",
            ["score", "--candidates", "pool.jsonl", "--feature", "f.safetensors", "--scores", "s.jsonl", "--top", "0"],
        ),
        *[
            (
                f"`--target-size {n}`",
                [
                    "select",
                    "--candidates",
                    "pool.jsonl",
                    "--target",
                    "gsm8k",
                    "--target-size",
                    n,
                    "--ratio",
                    "0.1",
                    "--out",
                    "o.jsonl",
                ],
            )
            for n in ("1", "0", "-3")
        ],
        (
            "`--top 100000` (6 candidates)",
            [
                "select",
                "--candidates",
                "pool.jsonl",
                "--method",
                "random",
                "--top",
                "100000",
                "--out",
                "o.jsonl",
                "--force",
            ],
        ),
        ("`--max-length 0`", ["capture", "--data", "pool.jsonl", "--max-length", "0"]),
        ("`--worker 3/2`", ["capture", "--data", "pool.jsonl", "--worker", "3/2"]),
        ("`--reductions mean,median`", ["capture", "--data", "pool.jsonl", "--reductions", "mean,median"]),
        (
            "`--fire-threshold q2`",
            [
                "select",
                "--candidates",
                "pool.jsonl",
                "--target",
                "gsm8k",
                "--method",
                "jaccard",
                "--fire-threshold",
                "q2",
                "--ratio",
                "0.1",
                "--out",
                "o.jsonl",
            ],
        ),
        ("CRLF JSONL", sel("crlf.jsonl", "--out", "o.jsonl", "--force")),
        ("UTF-8 BOM JSONL", sel("bom.jsonl", "--out", "o.jsonl", "--force")),
        ("UTF-8 BOM CSV", sel("bom.csv", "--out", "o.jsonl", "--force")),
        ("Parquet NaN and inf", sel("nan.parquet", "--out", "o.jsonl", "--force")),
        ("CSV row with an extra field", sel("extra.csv", "--out", "o.jsonl", "--force")),
        ("CSV extra field, unrecognised columns", sel("extra-unknown.csv", "--out", "o.jsonl", "--force")),
        ("CSV row with a missing field", sel("short.csv", "--out", "o.jsonl", "--force")),
        ("CSV column named twice", sel("repeated.csv", "--out", "o.jsonl", "--force")),
        ("top-level JSON `5`", sel("five.json", "--out", "o.jsonl", "--force")),
        ("top-level JSON `null`", sel("null.json", "--out", "o.jsonl", "--force")),
        ('top-level JSON `"text"`', sel("string.json", "--out", "o.jsonl", "--force")),
        ("100,000 nested `[` (JSONL line 2)", sel("deep.jsonl", "--out", "o.jsonl", "--force")),
        ("… with `--skip-invalid`", sel("deep.jsonl", "--out", "o.jsonl", "--force", "--skip-invalid")),
        ("100,000 nested `[` (.json)", sel("deep.json", "--out", "o.jsonl", "--force")),
        ("a folder named `x.jsonl`", sel("x.jsonl", "--out", "o.jsonl", "--force")),
        ("lone surrogate `\\ud800`", sel("surrogate.jsonl", "--out", "o.jsonl", "--force")),
        ("… with `--skip-invalid`", sel("surrogate.jsonl", "--out", "o.jsonl", "--force", "--skip-invalid")),
        ("Latin-1 byte in JSONL", sel("latin1.jsonl", "--out", "o.jsonl", "--force")),
        ("… with `--skip-invalid`", sel("latin1.jsonl", "--out", "o.jsonl", "--force", "--skip-invalid")),
        ("Latin-1 byte in CSV", sel("latin1.csv", "--out", "o.jsonl", "--force")),
        ("Latin-1 byte in JSON", sel("latin1.json", "--out", "o.jsonl", "--force")),
        ("a 5,000-digit integer", sel("huge-int.jsonl", "--out", "o.jsonl", "--force")),
        ("truncated `.jsonl.gz`", sel("damaged.jsonl.gz", "--out", "o.jsonl", "--force")),
        ("not Parquet", sel("damaged.parquet", "--out", "o.jsonl", "--force")),
        ("empty file", sel("empty.jsonl", "--out", "o.jsonl", "--force")),
        ("missing file", sel("missing.jsonl", "--out", "o.jsonl", "--force")),
        # issue 21: outputs, degenerate options, tracebacks that became errors
        ("`--out /dev/null --force`", sel("pool.jsonl", "--out", "/dev/null", "--force")),
        ("`--out` a FIFO, `--force`", sel("pool.jsonl", "--out", "fifo", "--force")),
        ("`--out` a symlink to a file, `--force`", sel("pool.jsonl", "--out", "mylink.jsonl", "--force")),
        ("`--out /dev/stdout`", sel("pool.jsonl", "--out", "/dev/stdout", "--force")),
        ("`--out -` (stdout gets the JSONL)", sel("pool.jsonl", "--out", "-")),
        ("`--out -` `--scores -`", sel("pool.jsonl", "--out", "-", "--scores", "-")),
        ("`nait feature --out -`", ["feature", "--target", "pool.jsonl", "--out", "-"]),
        (
            "`--ratio nan`",
            ["select", "--candidates", "pool.jsonl", "--method", "random", "--ratio", "nan", "--out", "o.jsonl"],
        ),
        (
            "`--min-score nan`",
            ["select", "--candidates", "pool.jsonl", "--method", "random", "--min-score", "nan", "--out", "o.jsonl"],
        ),
        (
            "`--min-score inf` (nothing selected)",
            [
                "select",
                "--candidates",
                "pool.jsonl",
                "--method",
                "random",
                "--min-score",
                "inf",
                "--out",
                "o.jsonl",
                "--force",
            ],
        ),
        (
            "`--ratio 0.75` of 6 (4.5: half rounds up)",
            [
                "select",
                "--candidates",
                "pool.jsonl",
                "--method",
                "random",
                "--ratio",
                "0.75",
                "--out",
                "o.jsonl",
                "--force",
            ],
        ),
        (
            "`--fire-threshold nan`",
            [
                "select",
                "--candidates",
                "pool.jsonl",
                "--target",
                "target.jsonl",
                "--method",
                "jaccard",
                "--fire-threshold",
                "nan",
                "--ratio",
                "0.1",
                "--out",
                "o.jsonl",
            ],
        ),
        ("`--seed -1`", sel("pool.jsonl", "--out", "o.jsonl", "--force", "--seed", "-1")),
        *[
            (
                f"`--device {device}`{note}",
                [
                    "select",
                    "--candidates",
                    "pool.jsonl",
                    "--target",
                    "target.jsonl",
                    "--ratio",
                    "0.1",
                    "--out",
                    "o.jsonl",
                    "--device",
                    device,
                ],
            )
            for device, note in (("tpu9", ""), ("cuda", " (a machine without CUDA)"))
        ],
        (
            "overlap with `--reductions last,first`",
            [
                "select",
                "--candidates",
                "pool.jsonl",
                "--target",
                "target.jsonl",
                "--ratio",
                "0.1",
                "--out",
                "o.jsonl",
                "--reductions",
                "last,first",
            ],
        ),
        (
            "nait-pca with `--reductions mean`",
            [
                "select",
                "--candidates",
                "pool.jsonl",
                "--target",
                "target.jsonl",
                "--method",
                "nait-pca",
                "--ratio",
                "0.1",
                "--out",
                "o.jsonl",
                "--reductions",
                "mean",
            ],
        ),
        (
            "target = pool (overlap)",
            [
                "select",
                "--candidates",
                "pool.jsonl",
                "--target",
                "target.jsonl",
                "--ratio",
                "0.5",
                "--out",
                "o.jsonl",
                "--force",
            ],
        ),
        ("`.json.gz`", sel("pool.json.gz", "--out", "o.jsonl", "--force")),
        ("`.csv.gz`", sel("pool.csv.gz", "--out", "o.jsonl", "--force")),
        ("Parquet map column (`--out -`)", sel("map.parquet", "--out", "-")),
        ("Parquet map repeating a key", sel("dupmap.parquet", "--out", "o.jsonl", "--force")),
        (
            "`nait eval`, target = pool",
            [
                "eval",
                "--candidates",
                "pool.jsonl",
                "--target",
                "pool.jsonl",
                "--methods",
                "random",
                "--feature-size",
                "2",
                "--heldout-size",
                "3",
                "--out",
                "run",
            ],
        ),
        ("`nait eval --bins top,bottm`", ["eval", "--candidates", "pool.jsonl", "--bins", "top,bottm", "--out", "run"]),
    ]


def main_table() -> str:
    rows = ["| input | exit | what `nait` says (stderr) |", "|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        for name, data in FILES.items():
            Path(name).write_bytes(data)
        pq.write_table(
            pa.table(
                {"instruction": ["a", "b"], "output": ["x", "y"], "s": [float("nan"), 1.5], "t": [float("inf"), 2.0]}
            ),
            "nan.parquet",
        )
        maps = {"instruction": ["a", "b"], "output": ["x", "y"]}
        kind = pa.map_(pa.string(), pa.int64())
        pq.write_table(pa.table({**maps, "m": pa.array([[("k", 1)], []], type=kind)}), "map.parquet")
        pq.write_table(pa.table({**maps, "m": pa.array([[("k", 1), ("k", 2)], []], type=kind)}), "dupmap.parquet")
        Path("link.jsonl").symlink_to("pool.jsonl")
        Path("mylink.jsonl").symlink_to("mine.jsonl")
        os.mkfifo("fifo")
        Path("folder").mkdir()
        Path("x.jsonl").mkdir()
        for label, argv in cases():
            err, out = io.StringIO(), io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                try:
                    code = main(argv + ["--store-dir", "stores"] if argv[0] != "eval" else argv)
                except SystemExit as exit_:
                    code = exit_.code
            lines = [line.strip() for line in err.getvalue().splitlines() if line.strip()]
            if label.startswith(("`--out -`", "Parquet map")):  # what went to standard output, first
                lines = [f"(stdout) {line}" for line in out.getvalue().splitlines()[:2]] + lines
            text = "<br>".join(line.replace("|", "\\|") for line in lines[:4]) or "(nothing)"
            rows.append(f"| {label} | {code} | {text} |")
        assert not Path("stores").exists(), "a case did slow work (a store was created)"
        assert stat.S_ISCHR(os.lstat("/dev/null").st_mode) and stat.S_ISFIFO(os.lstat("fifo").st_mode)
        assert Path("mylink.jsonl").is_symlink() and Path("mine.jsonl").read_bytes() == FILES["mine.jsonl"]
    return "\n".join(rows)


def store_cases(root: Path):
    """(label, setup, argv) for stores a teammate (or an attacker) could have edited: each setup damages a
    fresh synthetic store (real files, no model) at `root / "s"`; a victim file outside it must survive."""
    from nait_testing.stores import synthetic_store

    def cache_entry(file):
        def setup(store):
            (store / "caches.json").write_text(
                json.dumps({"x": {"file": file, "sha256": "0", "size": 1, "inputs": {}}})
            )

        return setup

    def transplant(store):
        other = root / "other"
        synthetic_store(other, seed=1)  # the same model and shard size, other records
        shard = next(store.glob("shard-*"))
        shutil.rmtree(shard)
        shutil.copytree(other / shard.name, shard)

    def manifest(text):
        return lambda store: (store / "manifest.json").write_text(text)

    def edit_count(store):
        data = json.loads((store / "manifest.json").read_text())
        data["data"]["n_samples"] = 4
        (store / "manifest.json").write_text(json.dumps(data))

    victim = str(root / "victim.npy")
    return [
        ("`caches.json` entry an absolute path", cache_entry(victim), ["verify", "s"]),
        ("`caches.json` entry `../victim.npy`, `--repair`", cache_entry("../victim.npy"), ["verify", "s", "--repair"]),
        ("a shard copied in from another store", transplant, ["verify", "s"]),
        ("`manifest.json` is `[]`", manifest("[]"), ["verify", "s"]),
        ("`manifest.json` is `{}`", manifest("{}"), ["info", "--store-dir", "."]),
        ("`n_samples` edited (5 → 4)", edit_count, ["verify", "s"]),
    ]


def store_table() -> str:
    from nait_testing.stores import synthetic_store

    rows = ["| store | command | exit | what `nait` says |", "|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.chdir(root)
        for label, setup, argv in store_cases(root):
            for leftover in ("s", "other"):
                shutil.rmtree(root / leftover, ignore_errors=True)
            (root / "victim.npy").write_bytes(b"a teammate's file")
            synthetic_store(root / "s")
            setup(root / "s")
            err, out = io.StringIO(), io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                try:
                    code = main(argv)
                except SystemExit as exit_:
                    code = exit_.code
            lines = [line.strip() for line in (err.getvalue() + out.getvalue()).splitlines() if line.strip()]
            text = "<br>".join(line.replace("|", "\\|").replace(tmp, "<scratch>") for line in lines[:4]) or "(nothing)"
            rows.append(f"| {label} | `nait {' '.join(argv)}` | {code} | {text} |")
            assert (root / "victim.npy").read_bytes() == b"a teammate's file", (
                f"{label}: a file outside the store changed"
            )
    return "\n".join(rows)


if __name__ == "__main__":
    print(main_table())
    print("\n## Shared stores: what each edited store gets\n")
    print(store_table())
