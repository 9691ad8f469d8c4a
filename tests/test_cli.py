"""The `nait` command line end to end on the bundled model and packaged data."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from nait_core.cli import main
from nait_core.datasets import load_builtin
from nait_core.selection import auroc
from nait_testing.demo import DEMO_SIZE, TARGET_SIZE  # the app tests' demo

pytestmark = pytest.mark.unit


@pytest.fixture
def small_demo(monkeypatch):
    monkeypatch.setenv("NAIT_DEMO_SIZE", DEMO_SIZE)
    return load_builtin("demo")


def read_scores(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_planted_gsm8k_problems_rank_first(small_demo, demo, tmp_path, capsys):
    """Sanity check with real data: the demo's GSM8K problems rank above its code and MMLU records
    when the target is other (held-out) GSM8K problems."""
    planted = np.array([r.source == "gsm8k" for r in small_demo.records])
    figures = {}
    for name, options in (
        ("overlap", []),
        ("jaccard", ["--method", "jaccard"]),
        ("nait-pca", ["--method", "nait-pca"]),
        ("nait-pca z", ["--method", "nait-pca", "--layer-norm", "z"]),
    ):
        scores = tmp_path / f"{name}.jsonl"
        assert (
            main(
                [
                    "select",
                    "--candidates",
                    "demo",
                    "--target",
                    "gsm8k",
                    "--target-size",
                    TARGET_SIZE,
                    *options,
                    "--ratio",
                    "0.1",
                    "--out",
                    str(tmp_path / f"{name}-out.jsonl"),
                    "--scores",
                    str(scores),
                    "--store-dir",
                    str(demo),
                ]
            )
            == 0
        )
        figures[name] = auroc(np.array([r["score"] for r in read_scores(scores)]), planted)
    print(f"AUROC of planted GSM8K ({planted.sum()} of {len(planted)}): {figures}")
    assert figures["overlap"] > 0.95
    assert figures["jaccard"] > 0.9
    # The published rule ranks poorly here (docs/methods.md: 0.66 at 16 target samples on the whole demo);
    # z-scoring each layer's projection recovers most of the separation (0.95 there).
    assert figures["nait-pca z"] > 0.85 and figures["nait-pca z"] > figures["nait-pca"] + 0.1


@pytest.mark.slow
def test_feature_then_score_equals_select(small_demo, demo, tmp_path, capsys):
    common = ["--target-size", TARGET_SIZE, "--store-dir", str(demo)]
    assert (
        main(
            [
                "select",
                "--candidates",
                "demo",
                "--target",
                "gsm8k",
                "--ratio",
                "0.2",
                "--out",
                str(tmp_path / "a.jsonl"),
                "--scores",
                str(tmp_path / "a-scores.jsonl"),
                *common,
            ]
        )
        == 0
    )
    feature = tmp_path / "gsm8k.safetensors"
    assert main(["feature", "--target", "gsm8k", "--out", str(feature), *common]) == 0
    assert (
        main(
            [
                "score",
                "--candidates",
                "demo",
                "--feature",
                str(feature),
                "--ratio",
                "0.2",
                "--scores",
                str(tmp_path / "b-scores.jsonl"),
                "--out",
                str(tmp_path / "b.jsonl"),
                *common,
            ]
        )
        == 0
    )
    a, b = read_scores(tmp_path / "a-scores.jsonl"), read_scores(tmp_path / "b-scores.jsonl")
    assert [r["score"] for r in a] == [r["score"] for r in b]
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    capsys.readouterr()
    assert main(["info", "--store-dir", str(demo), "--features", str(tmp_path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert [(f["path"], f["target"], f["samples"]) for f in info["features"] if f["path"] == str(feature)] == [
        (str(feature), f"gsm8k-n{TARGET_SIZE}-s0", int(TARGET_SIZE))
    ]
    assert any(s["samples"] == int(DEMO_SIZE) and s["complete"] for s in info["stores"])


def test_bad_input_exits_with_file_line_and_field(tmp_path, capsys):
    pool = tmp_path / "pool.jsonl"
    pool.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c", "input": 3, "output": "d"}\n')
    assert (
        main(
            [
                "select",
                "--candidates",
                str(pool),
                "--target",
                "gsm8k",
                "--ratio",
                "0.1",
                "--out",
                str(tmp_path / "o.jsonl"),
            ]
        )
        == 2
    )
    assert f"{pool}:2: field 'input': expected text, got int" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.model
def test_skip_invalid_reports_and_keeps_the_rest(tmp_path, store_root, capsys):
    pool, target = tmp_path / "pool.jsonl", tmp_path / "target.jsonl"
    pool.write_text(
        '{"instruction": "Say hi.", "output": "Hi."}\n{"instruction": "oops"}\n'
        '{"instruction": "Add 1 and 1.", "output": "2"}\n'
    )
    target.write_text(
        '{"instruction": "Add 2 and 2.", "output": "4"}\n{"instruction": "Add 3 and 5.", "output": "8"}\n'
    )
    assert (
        main(
            [
                "select",
                "--candidates",
                str(pool),
                "--target",
                str(target),
                "--top",
                "1",
                "--skip-invalid",
                "--out",
                str(tmp_path / "o.jsonl"),
                "--scores",
                str(tmp_path / "s.jsonl"),
                "--store-dir",
                str(store_root),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "1 invalid records skipped" in err and f"{pool}:2: field 'output': missing" in err
    assert len(read_scores(tmp_path / "s.jsonl")) == 2


def test_module_and_console_script_run():
    console_script = os.path.join(os.path.dirname(sys.executable), "nait")
    for command in ([sys.executable, "-m", "nait_core", "select", "--help"], [console_script, "select", "--help"]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert "--candidates" in result.stdout and "--target" in result.stdout


def test_baseline_methods_need_no_target(tmp_path):
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps({"instruction": f"Q{i}", "output": "word " * (i + 1)}) + "\n" for i in range(6)))
    scores = tmp_path / "s.jsonl"
    assert (
        main(
            [
                "select",
                "--candidates",
                str(pool),
                "--method",
                "random",
                "--seed",
                "3",
                "--top",
                "2",
                "--out",
                str(tmp_path / "r.jsonl"),
                "--scores",
                str(scores),
            ]
        )
        == 0
    )
    first = scores.read_text()
    assert (
        main(
            [
                "select",
                "--candidates",
                str(pool),
                "--method",
                "random",
                "--seed",
                "3",
                "--top",
                "2",
                "--out",
                str(tmp_path / "r.jsonl"),
                "--scores",
                str(scores),
                "--force",
            ]
        )
        == 0
    )
    assert scores.read_text() == first  # seeded: reproducible
    assert (
        main(
            [
                "select",
                "--candidates",
                str(pool),
                "--method",
                "overlap",
                "--top",
                "2",
                "--out",
                str(tmp_path / "o.jsonl"),
            ]
        )
        == 2
    )  # a neuron method needs a target
