"""Issue 21, the CLI's part: degenerate inputs named (NaN options, scores all equal, empty selections),
tracebacks turned into `nait: error` before any slow work, and the --ratio rounding rule. Each test
failed on the code before the fix."""

import json

import numpy as np
import pytest

from nait_core.cli import main
from nait_core.selection import Cut, equal_scores, export_warnings, ratio_count, select
from nait_core.sketch import Sketch, SketchError

pytestmark = pytest.mark.unit


def pool_file(path, n=6):
    path.write_bytes("".join(json.dumps({"instruction": f"Q{i}", "output": f"A{i}"}) + "\n" for i in range(n)).encode())
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


TARGET = ["--target", "target.jsonl"]
SELECT = ["select", "--out", "o.jsonl"]


@pytest.mark.parametrize(
    "argv, message",
    [
        ([*SELECT, "--method", "random", "--ratio", "nan"], "--ratio must be a number, not nan"),
        ([*SELECT, "--method", "random", "--min-score", "nan"], "--min-score must be a number, not nan"),
        ([*SELECT, *TARGET, "--method", "jaccard", "--fire-threshold", "nan", "--ratio", "0.1"], "--fire-threshold"),
        ([*SELECT, *TARGET, "--method", "jaccard", "--fire-threshold", "inf", "--ratio", "0.1"], "finite number"),
        ([*SELECT, "--method", "random", "--ratio", "1", "--seed", "-1"], "--seed must be at least 0, not -1"),
        ([*SELECT, *TARGET, "--ratio", "0.1", "--sketch", "8", "--sketch-seed", "-2"], "--sketch-seed must be"),
        ([*SELECT, *TARGET, "--ratio", "0.1", "--device", "tpu9"], "--device 'tpu9' is not a device name"),
        (
            [*SELECT, *TARGET, "--ratio", "0.1", "--reductions", "last,first"],
            "--method overlap reads the pool's 'mean' summary, which --reductions last,first does not store",
        ),
        (
            [*SELECT, *TARGET, "--method", "nait-pca", "--ratio", "0.1", "--reductions", "mean"],
            "add last-first (or last and first) to --reductions",
        ),
        (
            [*SELECT, *TARGET, "--method", "nait-pca", "--reduction", "mean", "--ratio", "0.1", "--reductions", "last"],
            "'mean' summary",
        ),
        (
            [
                "score",
                "--feature",
                "f.safetensors",
                "--scores",
                "s.jsonl",
                "--method",
                "jaccard",
                "--reductions",
                "last",
            ],
            "--method jaccard reads the pool's 'mean' summary",
        ),
        (["explain", "neuron", "L1.N2", "--reductions", "last"], "nait explain neuron reads the pool's 'mean' summary"),
        (
            [*SELECT, *TARGET, "--method", "overlap-max", "--ratio", "0.1", "--reductions", "last"],
            "--method overlap-max reads the pool's 'mean' summary, which --reductions last does not store",
        ),
    ],
)
def test_bad_options_are_named_before_any_slow_work(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pool_file(tmp_path / "pool.jsonl"), pool_file(tmp_path / "target.jsonl", 3)
    code, err = run(capsys, *argv, "--candidates", "pool.jsonl", "--store-dir", tmp_path / "stores")
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "stores").exists() and not (tmp_path / "o.jsonl").exists()


def test_device_cuda_without_cuda_is_an_error(tmp_path, capsys, monkeypatch):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.chdir(tmp_path)
    pool_file(tmp_path / "pool.jsonl"), pool_file(tmp_path / "target.jsonl", 3)
    code, err = run(
        capsys, *SELECT, *TARGET, "--candidates", "pool.jsonl", "--ratio", "0.1", "--device", "cuda", "--store-dir", "s"
    )
    assert code == 2 and "--device cuda: CUDA is not available on this machine" in err
    assert not (tmp_path / "s").exists()


def test_an_empty_selection_says_nothing_was_selected_and_why(tmp_path, capsys):
    pool, out = pool_file(tmp_path / "pool.jsonl"), tmp_path / "o.jsonl"
    code, err = run(capsys, "select", "--candidates", pool, "--method", "random", "--min-score", "inf", "--out", out)
    assert code == 0
    assert "nait: warning: nothing was selected: no record scores at least inf (the best score is 0." in err
    assert "selected 0 of 6 records" in err and out.read_text() == ""  # the empty file it says it wrote


def test_an_empty_intersection_is_explained():
    # each target's top record differs: nothing is in both
    selection = select({"a": np.array([1.0, 0.0, 0.0]), "b": np.array([0.0, 1.0, 0.0])}, Cut(top=1), "intersection")
    headlines = [headline for headline, _ in export_warnings(selection, [], merge="intersection")]
    assert any("nothing was selected: no record is in every target's selection" in h for h in headlines), headlines


def test_scores_all_equal_are_named_for_the_app_and_the_cli():
    flat = select({"gsm8k": np.zeros(5), "code": np.arange(5.0)}, Cut(top=2))
    assert equal_scores(flat) == {"gsm8k": 0.0}
    (headline, _), *_ = export_warnings(flat, [])
    assert "same score for target 'gsm8k' (0)" in headline and "cannot rank the records" in headline
    assert "input order" in headline
    assert equal_scores(select({"t": np.array([1.0, np.nan, 1.0 + 1e-6])}, Cut(top=1))) == {}
    assert equal_scores(select({"t": np.array([3.0])}, Cut(top=1))) == {}  # one record: nothing to rank


@pytest.mark.parametrize("ratio, n, kept", [(0.5, 5, 3), (0.1, 30, 3), (0.25, 10, 3), (0.5, 4, 2), (0.01, 5, 1)])
def test_ratio_keeps_the_nearest_count_a_half_rounded_up(ratio, n, kept):
    assert ratio_count(ratio, n) == kept
    assert Cut(ratio=ratio).mask(np.arange(float(n))).sum() == kept


def test_ratio_half_of_five_keeps_three_on_the_cli(tmp_path, capsys):
    pool, out = pool_file(tmp_path / "pool.jsonl", 5), tmp_path / "o.jsonl"
    code, err = run(capsys, "select", "--candidates", pool, "--method", "random", "--ratio", "0.5", "--out", out)
    assert code == 0 and "selected 3 of 5" in err and len(out.read_text().splitlines()) == 3


def test_a_sketch_wider_than_a_layer_is_refused():
    with pytest.raises(SketchError, match="--sketch 64 is wider than this model's 48 neurons per layer"):
        Sketch(64).check_width(48)
    Sketch(48).check_width(48)


# ---------------------------------------------------------------- with the bundled model


@pytest.mark.model
@pytest.mark.parametrize("cause", ["target is the pool", "--max-length 1"])
def test_scores_all_equal_are_refused_unless_allowed(cause, tmp_path, capsys):
    pool = pool_file(tmp_path / "pool.jsonl", 4)
    target = pool if cause == "target is the pool" else pool_file(tmp_path / "target.jsonl", 2)
    out = tmp_path / "o.jsonl"
    argv = ["select", "--candidates", pool, "--target", target, "--top", "2", "--out", out]
    argv += ["--store-dir", tmp_path / "stores", "--device", "cpu"]
    argv += ["--max-length", "1"] if cause == "--max-length 1" else []
    code, err = run(capsys, *argv)
    if cause == "target is the pool":  # seen in the records: said before any capture
        assert code == 2 and "holds the same records as the pool" in err, err
        assert not (tmp_path / "stores").exists()
    else:  # seen in the scores
        assert code == 2 and "every candidate has the same score for target" in err, err
        assert "cannot rank the records" in err
    assert "--allow-equal-scores" in err and not out.exists()
    code, err = run(capsys, *argv, "--allow-equal-scores")
    assert code == 0 and "nait: warning: every candidate has the same score" in err and "input order" in err
    assert out.read_bytes() == b"".join(pool.read_bytes().splitlines(keepends=True)[:2])


@pytest.mark.model
def test_sketch_wider_than_the_models_layers_is_refused_before_capture(tmp_path, capsys):
    pool = pool_file(tmp_path / "pool.jsonl", 4)
    code, err = run(capsys, "capture", "--data", pool, "--sketch", "100000", "--store-dir", tmp_path / "stores")
    assert code == 2 and "--sketch 100000 is wider than this model's 1,536 neurons per layer" in err, err
    assert not (tmp_path / "stores").exists()
