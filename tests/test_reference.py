"""`nait select` against each method recomputed with plain NumPy from raw per-token activations."""

import json

import numpy as np
import pytest
import torch

from nait_core.cli import main
from nait_core.data import read_records
from nait_core.datasets import load_builtin
from nait_core.tokens import tokenize

pytestmark = pytest.mark.slow  # the bundled model, one plain forward per record plus a capture: ~2 CPU-minutes
POOL = 8
TARGETS = 4


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference")
    gsm, mmlu = load_builtin("gsm8k").records, load_builtin("mmlu").records
    short = lambda recs: [r for r in recs if len(r.response) < 120]
    pool = short(gsm)[:3] + short(mmlu)[: POOL - 3]
    targets = short(gsm)[10 : 10 + TARGETS]
    for name, records in (("pool", pool), ("target", targets)):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r.raw) + "\n" for r in records))
    return folder


def raw_activations(model, path):
    """[sample] -> float64 array [tokens, layers, neurons], one plain forward per sample."""
    tokens = tokenize(read_records(path), model.tokenizer, 1024)
    out = []
    for ids in tokens.input_ids:
        seen = {}
        handles = [
            m.register_forward_pre_hook(lambda m, a, l=l: seen.__setitem__(l, a[0][0].double().numpy()))
            for l, m in enumerate(model.neuron_modules)
        ]
        with torch.inference_mode():
            model.model(torch.tensor([ids]))
        for h in handles:
            h.remove()
        out.append(np.stack([seen[l] for l in range(model.n_layers)], axis=1))
    return out


def first_pc(x):
    x = x - x.mean(0)
    return np.linalg.svd(x, full_matrices=False)[2][0]


def expected_scores(pool, targets, method):
    mean = lambda acts: np.stack([a.mean(0) for a in acts])  # token mean [n, L, N]
    x, t = mean(pool), mean(targets)
    profile = t.mean(0)
    if method == "overlap":
        c = x.mean(0)
        xc, pc = (x - c).reshape(len(x), -1), (profile - c).ravel()
        return xc @ pc / (np.linalg.norm(xc, axis=1) * np.linalg.norm(pc))
    if method == "jaccard":
        fires, target = x > 0, np.median(t, axis=0) > 0  # neurons firing for most target samples
        return (fires & target).sum((1, 2)) / (fires | target).sum((1, 2))
    delta = np.stack([a[-1] - a[0] for a in targets])  # Eq. 2, [n, L, N]
    directions = []
    for layer in range(delta.shape[1]):
        v = first_pc(delta[:, layer])
        directions.append(v if delta[:, layer].mean(0) @ v >= 0 else -v)  # Eq. 4
    candidate = np.stack([a[-1] - a[0] for a in pool])
    return np.einsum("nlj,lj->n", candidate, np.stack(directions))  # Eq. 5


@pytest.fixture(scope="module")
def activations(files, bundled):
    return raw_activations(bundled, files / "pool.jsonl"), raw_activations(bundled, files / "target.jsonl")


@pytest.mark.parametrize("method", ["overlap", "jaccard", "nait-pca"])
def test_select_matches_numpy_reference(method, files, activations, store_root, tmp_path):
    expected = expected_scores(*activations, method)
    out, scores = tmp_path / "out.jsonl", tmp_path / "scores.jsonl"
    assert (
        main(
            [
                "select",
                "--candidates",
                str(files / "pool.jsonl"),
                "--target",
                str(files / "target.jsonl"),
                "--method",
                method,
                "--top",
                "3",
                "--out",
                str(out),
                "--scores",
                str(scores),
                "--store-dir",
                str(store_root),
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in scores.read_text().splitlines()]
    got = np.array([r["score"] for r in rows])
    # The store keeps float16 summaries: agreement to float16 precision, not bit-for-bit.
    tolerance = 0.02 * np.abs(expected).max() if method == "nait-pca" else 2e-3
    np.testing.assert_allclose(got, expected, atol=tolerance)
    top = set(np.argsort(-expected)[:3])
    assert {r["index"] for r in rows if r["selected"]} == top or np.sort(expected)[-3] - np.sort(expected)[
        -4
    ] < tolerance
    chosen = out.read_text().splitlines()
    source = (files / "pool.jsonl").read_text().splitlines()
    assert chosen == [source[r["index"]] for r in rows if r["selected"]]
