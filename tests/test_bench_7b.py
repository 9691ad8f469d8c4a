"""bench/bench_7b.py at its tiny shape on the CPU: every arm runs and reports its figures (no timing asserted)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[1]


def test_bench_7b_tiny_shape_reports_every_figure(tmp_path):
    out = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_7b.py"), "--shape", "tiny", "--device", "cpu"]
        + ["--records", "8", "--max-length", "128", "--store-dir", str(tmp_path), "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    figures = json.loads(out.read_text())
    (shape,) = figures["shapes"]
    assert shape["shape"] == "tiny" and shape["records"] == 8 and shape["tokens"] > 8
    arms = shape["arms"]
    assert set(arms) == {"bare", "nait mean", "nait mean,last,first", "hooks (by hand)", "output_hidden_states"}
    for name, arm in arms.items():
        for field in ("tok_s", "ratio_to_bare", "peak_memory_bytes", "projected_52k_seconds"):
            assert arm[field] > 0, (name, field)
        assert f"{name:<22}" in run.stdout  # the printed table has a line per arm
    for name in ("nait mean", "nait mean,last,first"):
        assert arms[name]["store_bytes"] > 0 and arms[name]["store_write_bytes_per_s"] > 0
    # three summaries take up to three times the bytes of one: less at this tiny shape, where the arrays every
    # store holds once per record (token counts, rds's hidden state) weigh as much as a summary
    assert 2.0 < arms["nait mean,last,first"]["store_bytes"] / arms["nait mean"]["store_bytes"] < 3.1
    assert not list(tmp_path.glob("tmp*"))  # the temporary stores are gone
