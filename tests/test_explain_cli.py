"""`nait explain neuron` and `nait explain shared` on the small demo (the app tests' captures, reused)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from nait_core.cli import main
from nait_core.store import list_stores
from nait_testing.demo import DEMO_SIZE, TARGET_SIZE, TARGETS

pytestmark = pytest.mark.slow
COMMON = ["--candidates", "demo", "--target-size", TARGET_SIZE]


def test_explain_neuron_text_and_json(demo, capsys):
    argv = [
        "explain",
        "neuron",
        "L12.N345",
        *COMMON,
        "--target",
        "gsm8k",
        "--store-dir",
        str(demo),
        "--top",
        "2",
        "--live",
        "1",
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert text.startswith("neuron L12.N345 (layer 12, index 345)") and "promotes:" in text and "fires on:" in text
    assert main(argv + ["--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["neuron"] == "L12.N345" and len(card["promotes"]) == 10 and len(card["suppresses"]) == 10
    assert set(card["density"]) == {"pool", f"target gsm8k-n{TARGET_SIZE}-s0"}
    # Density is the share of records above the threshold (0): recompute it from the store.
    pool = next(s for s in list_stores(demo) if s["data"].startswith("demo") and s["samples"] == int(DEMO_SIZE))
    from nait_core.store import Store

    values = Store.open(pool["path"]).neuron_values("mean", 12, 345)
    assert card["density"]["pool"] == pytest.approx(float((values > 0).mean()))
    top = [r for r in card["top_records"] if r["group"] == "pool"]
    assert [r["row"] for r in top] == list(np.argsort(-values, kind="stable")[:2])
    assert top[0]["firing_tokens"] and not top[1]["firing_tokens"]  # --live 1: one live pass per group


def test_explain_shared_text_and_json(demo, capsys):
    argv = [
        "explain",
        "shared",
        *COMMON,
        *[a for t in TARGETS for a in ("--target", t)],
        "--store-dir",
        str(demo),
        "--rows",
        "4",
        "--neurons",
        "20",
    ]
    assert main(argv + ["--json"]) == 0
    view = json.loads(capsys.readouterr().out)
    assert view["targets"] == [f"{t}-n{TARGET_SIZE}-s0" for t in TARGETS]
    assert len(view["layers"]) == 30 and len(view["candidates"]) == 4 and 0 < len(view["neurons"]) <= 20
    first = view["neurons"][0]
    assert first["joint z"] == pytest.approx(min(first[f"z: {t}"] for t in view["targets"]))
    assert main(argv) == 0
    assert re.search(r"\b(1 neuron marks|\d+ neurons mark) out every target", capsys.readouterr().out)


def test_explain_errors_are_messages(demo, capsys):
    assert main(["explain", "shared", *COMMON, "--target", "gsm8k", "--store-dir", str(demo)]) == 2
    assert "two --target sets or more" in capsys.readouterr().err
    assert main(["explain", "neuron", "L99.N1", *COMMON, "--store-dir", str(demo)]) == 2
    assert "outside 30 layers" in capsys.readouterr().err
    assert main(["explain", "neuron", "neuron-7", "--store-dir", str(demo)]) == 2
    assert "not a neuron id" in capsys.readouterr().err


@pytest.mark.parametrize("threshold", ["q0.9", "q0.99"])
def test_documented_jaccard_quantiles_work_for_every_builtin_target(demo, tmp_path, threshold):
    """`--fire-threshold q0.9` (the README's example) and q0.99 used to stop with 'no neuron fires for most
    samples of target mmlu'; the target's firing set now falls back instead, so every target ranks."""
    out, scores = tmp_path / "out.jsonl", tmp_path / "scores.jsonl"
    assert (
        main(
            [
                "select",
                *COMMON,
                *[a for t in TARGETS for a in ("--target", t)],
                "--store-dir",
                str(demo),
                "--method",
                "jaccard",
                "--fire-threshold",
                threshold,
                "--ratio",
                "0.1",
                "--out",
                str(out),
                "--scores",
                str(scores),
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in scores.read_text().splitlines()]
    for name in [f"{t}-n{TARGET_SIZE}-s0" for t in TARGETS]:
        assert max(r["targets"][name] for r in rows) > 0, name  # not every record 0
