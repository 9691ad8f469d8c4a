"""The Outcomes page on a real `nait eval` results folder (a tiny random model, interrupted mid-run so
one arm is still pending), plus the evaluate helpers it reads through. The page needs no loaded model:
only the slow test, which checks the sidebar stays in view once a model is loaded, captures the small demo."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import nait_core.eval as evaluate
from nait_testing.app import APP, tmp_data_root  # noqa: F401 (autouse: the data root holds the temporary runs)
from nait_testing.evals import Interrupt, eval_settings
from nait_testing.models import tiny_model

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def eval_dir(tmp_path_factory, tokenizer):
    """<dir>/partial: base, random#0 and random#1 finished, random#2 pending; <dir>/broken: corrupt JSON."""
    root = tmp_path_factory.mktemp("runs")
    settings = eval_settings(root, methods=("random",), random_seeds=(0, 1, 2))

    def stop_after_second_seed(p):
        if p.stage == "done" and p.arm == "random#1":
            raise Interrupt

    with pytest.raises(Interrupt):
        evaluate.run_eval(settings, root / "partial", lambda: tiny_model("llama", tokenizer), stop_after_second_seed)
    (root / "broken").mkdir()
    (root / "broken" / "results.json").write_text('{"settings": {', encoding="utf-8")
    (root / "empty").mkdir()
    return root


@pytest.fixture
def page(eval_dir, monkeypatch):
    monkeypatch.setenv("NAIT_EVAL_DIR", str(eval_dir))
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/outcomes.py")  # straight to Outcomes: the sidebar's model is never loaded
    at.run()
    check(at)
    return at


def check(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.main.title] == ["Outcomes"]


def test_helpers(eval_dir):
    results = evaluate.read_results(eval_dir / "partial")
    assert evaluate.settings_from_json(results["settings"]) == eval_settings(
        eval_dir, methods=("random",), random_seeds=(0, 1, 2)
    )
    status = {s["arm"]: s for s in evaluate.arm_status(results)}
    assert list(status) == ["base", "random#0", "random#1", "random#2"]
    assert [s["status"] for s in status.values()] == ["finished", "finished", "finished", "pending"]
    assert status["random#2"]["selection_saved"] and status["random#0"]["train_records"] == 3
    with pytest.raises(ValueError, match="not valid JSON"):
        evaluate.read_results(eval_dir / "broken")
    with pytest.raises(FileNotFoundError, match="no results.json"):
        evaluate.read_results(eval_dir / "empty")
    with pytest.raises(FileNotFoundError, match="no folder"):
        evaluate.read_results(eval_dir / "missing")


def test_page_shows_the_results_on_file(page, eval_dir):
    at = page
    assert at.text_input(key="outcomes_root").value == str(eval_dir)
    assert at.selectbox(key="outcomes_run").options == ["broken", "partial"]  # folders holding results.json
    assert at.selectbox(key="outcomes_run").index == 0  # the newest first
    at.selectbox(key="outcomes_run").select_index(1).run()
    check(at)
    assert not at.error, [e.value for e in at.error]

    results = json.loads((eval_dir / "partial" / "results.json").read_text())
    arms = results["arms"]
    assert set(arms) == {"base", "random#0", "random#1"}
    table = at.dataframe[0].value.set_index("arm")
    assert list(table.index) == ["base", "random"]
    assert list(table.columns) == ["runs", "train records", "gsm8k/exact_match", "gsm8k/loss"]
    assert table.loc["base", "train records"] == "—" and table.loc["random", "train records"] == "3"
    assert table.loc["random", "runs"] == 2
    for metric in ("loss", "exact_match"):
        base = arms["base"]["metrics"]["gsm8k"][metric]
        assert table.loc["base", f"gsm8k/{metric}"] == f"{base:.4f}"
        seeds = np.array([arms[f"random#{s}"]["metrics"]["gsm8k"][metric] for s in (0, 1)])
        assert table.loc["random", f"gsm8k/{metric}"] == f"{seeds.mean():.4f} ± {seeds.std(ddof=1):.4f} (n=2)"

    status = at.dataframe[1].value.set_index("arm")
    assert status["status"].to_dict() == {
        "base": "finished",
        "random#0": "finished",
        "random#1": "finished",
        "random#2": "pending",
    }
    assert status.loc["random#2", "selection saved"] == "yes"
    assert status.loc["random#0", "device"] == "cpu" and status.loc["random#0", "precision"] == "float32"
    assert not any("more than one device" in c.value for c in at.caption)  # every arm ran on the CPU
    assert any("3 of 4 arms finished" in p.proto.text for p in at.get("progress"))

    charts = at.get("plotly_chart")
    assert len(charts) == 2  # one per metric
    titles = {json.loads(c.proto.spec)["layout"]["title"]["text"] for c in charts}
    assert titles == {"gsm8k/exact_match", "gsm8k/loss"}
    settings_text = " ".join(m.value for m in at.markdown)
    assert "demo" in settings_text and "ratio** 0.25" in settings_text and "1 step," in settings_text


def test_page_errors_are_messages(page, eval_dir):
    at = page
    at.selectbox(key="outcomes_run").select_index(0).run()  # broken
    check(at)
    assert any("not valid JSON" in e.value for e in at.error)

    at.text_input(key="outcomes_root").set_value(str(eval_dir / "missing")).run()
    check(at)
    assert any("No folder" in e.value for e in at.error) and not at.dataframe

    at.text_input(key="outcomes_root").set_value(str(eval_dir / "empty")).run()
    check(at)
    assert any("No results.json" in e.value for e in at.error)

    at.text_input(key="outcomes_root").set_value(str(eval_dir / "partial")).run()  # a run folder itself
    check(at)
    assert not at.error and len(at.dataframe) == 2


def test_page_needs_no_model(eval_dir, monkeypatch, tmp_path):
    """A model that cannot load stops the other pages at the sidebar; Outcomes still shows the results."""
    monkeypatch.setenv("NAIT_MODEL", str(tmp_path / "no-such-model"))
    monkeypatch.setenv("NAIT_EVAL_DIR", str(eval_dir / "partial"))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception and not at.main.title
    assert any("Could not load this setup" in e.value for e in at.error)
    at.switch_page("pages/outcomes.py").run()
    check(at)
    assert not at.error and len(at.dataframe) == 2


@pytest.mark.slow
def test_loaded_sidebar_stays_on_outcomes(demo, eval_dir, monkeypatch):
    """After the model is loaded on another page, Outcomes keeps the sidebar's setup in view."""
    monkeypatch.setenv("NAIT_EVAL_DIR", str(eval_dir / "partial"))
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    assert not at.exception and not at.error
    at.switch_page("pages/outcomes.py").run()
    check(at)
    assert not at.error and len(at.dataframe) == 2
    assert any(c.value.startswith("**Pool**") for c in at.sidebar.caption)


@pytest.mark.unit
@pytest.mark.parametrize("runs", ["missing", "empty"])
def test_opens_on_the_shipped_runs_before_any_run(runs, monkeypatch, tmp_path):
    """No runs/ (or an empty one) in the working folder: a how-to and the recorded runs of docs/results/, no error."""
    monkeypatch.delenv("NAIT_EVAL_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    if runs == "empty":
        (tmp_path / "runs").mkdir()
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/outcomes.py")
    at.run()
    check(at)
    assert not at.error, [e.value for e in at.error]
    assert any(
        "No `nait eval` results in `runs` yet" in i.value and "nait eval --candidates demo" in i.value for i in at.info
    )
    options = at.selectbox(key="outcomes_run").options
    assert sorted(options) == [
        "gsm8k",
        "gsm8k-control",
        "gsm8k-train-seed1",
        "peers-cpu-general-embed-s0",
        "peers-cpu-general-s0",
        "peers-cpu-general-s1",
        "peers-cpu-planted",
        "rare-gsm8k-cpu-check",
        "rare-gsm8k-general-cpu",
        "rare-gsm8k-gpu",
        "rare-overlap120-e16-gpu",
        "rare-overlap120-e2-gpu",
    ]  # docs/results/*/results.json
    assert len(at.dataframe) == 2  # the chosen run's metrics and arms
    at.text_input(key="outcomes_root").set_value(str(tmp_path / "elsewhere")).run()  # a folder the user typed
    assert any("No folder" in e.value for e in at.error)


def test_page_shows_paired_comparison_and_composition(page, eval_dir):
    at = page
    at.selectbox(key="outcomes_run").select_index(1).run()  # partial: base, random#0, random#1 finished
    check(at)
    results = evaluate.read_results(eval_dir / "partial")
    assert at.selectbox(key="outcomes_reference").value == "random"  # overlap is not in this run
    comparison, composition = (t.value for t in at.table)
    row = evaluate.paired_comparison(results, "gsm8k", "random")[0]
    assert list(comparison.index) == ["base (1 run)"]
    assert comparison.loc["base (1 run)", "loss difference (arm − reference)"] == f"{row['difference']:+.4f}"
    base, seeds = results["arms"]["base"]["metrics"]["gsm8k"]["loss"], [results["arms"][f"random#{s}"] for s in (0, 1)]
    # The mean per-problem loss over both seeds, token-weighted: base's loss minus that.
    detail = [a["per_problem"]["gsm8k"] for a in seeds]
    mean_nll = np.mean([d["nll"] for d in detail], axis=0)
    assert row["difference"] == pytest.approx(base - mean_nll.sum() / sum(detail[0]["tokens"]))
    assert list(composition.index) == ["random#0", "random#1", "random#2"]  # the pending arm's selection too
    assert (composition["records"] == 3).all() and (composition["planted"] == 0).all()
    at.selectbox(key="outcomes_reference").set_value("base").run()
    check(at)
    assert list(at.table[0].value.index) == ["random (2 runs)"]


@pytest.mark.unit
def test_page_on_results_of_an_older_version(monkeypatch):
    """The shipped results (no per-problem losses, no composition) still show, with a note instead."""
    monkeypatch.setenv("NAIT_EVAL_DIR", str(Path(__file__).resolve().parents[1] / "docs" / "results" / "gsm8k"))
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/outcomes.py")
    at.run()
    check(at)
    assert not at.error and len(at.dataframe) == 2 and not at.table
    assert any("no per-problem" in i.value for i in at.info) and any("did not record" in i.value for i in at.info)


def test_page_says_where_arms_ran_when_a_run_moved_device(eval_dir, monkeypatch, tmp_path):
    results = json.loads((eval_dir / "partial" / "results.json").read_text())
    results["arms"]["base"]["device"] = "cuda:0"  # as if the run started on a GPU and resumed on a CPU
    (tmp_path / "moved").mkdir()
    (tmp_path / "moved" / "results.json").write_text(json.dumps(results))
    monkeypatch.setenv("NAIT_EVAL_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/outcomes.py")
    at.run()
    check(at)
    notes = [c.value for c in at.caption if "more than one device" in c.value]
    assert notes == ["Arms ran on more than one device: cuda: base; cpu, trained in float32: random#0, random#1."]


@pytest.fixture(scope="module")
def bins_dir(tmp_path_factory, tokenizer):
    """<dir>/bins: a finished run of overlap with its three score bins, and random."""
    root = tmp_path_factory.mktemp("bins")
    settings = eval_settings(root, bins=evaluate.BINS, base=False)
    evaluate.run_eval(settings, root / "bins", lambda: tiny_model("llama", tokenizer))
    return root


def test_a_run_with_bins_shows_whether_closeness_predicts_gain(bins_dir, eval_dir, monkeypatch):
    monkeypatch.setenv("NAIT_EVAL_DIR", str(bins_dir))
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/outcomes.py")
    at.run()
    check(at)
    assert "Does closeness predict gain?" in [h.value for h in at.subheader]
    assert any("**score bins** top, middle, bottom" in m.value for m in at.markdown)
    results = evaluate.read_results(bins_dir / "bins")
    rows = evaluate.bin_rows(results, "gsm8k")
    (chart,) = [
        c for c in at.get("plotly_chart") if "per score bin" in json.loads(c.proto.spec)["layout"]["title"]["text"]
    ]
    spec = json.loads(chart.proto.spec)
    (line,) = spec["data"]
    assert line["name"] == "overlap" and line["x"] == ["top", "middle", "bottom"]
    assert line["y"] == pytest.approx([r["loss"] for r in rows[:3]])
    assert line["error_y"]["array"] == pytest.approx([r["high"] - r["difference"] for r in rows[:3]])
    random_loss = results["arms"]["random#0"]["metrics"]["gsm8k"]["loss"]
    assert spec["layout"]["shapes"][0]["y0"] == pytest.approx(random_loss)  # the dashed line: random's loss
    assert any(m.value == evaluate.bins_finding(rows, "gsm8k") for m in at.markdown)
    assert evaluate.bins_finding(rows, "gsm8k").startswith("`overlap` on gsm8k: ")
    figures = next(t.value for t in at.table if list(t.value.index.names) == ["method", "bin"])  # under the chart
    assert figures.loc[("overlap", "bottom vs top"), "difference"] == f"{rows[3]['difference']:+.4f}"

    monkeypatch.setenv("NAIT_EVAL_DIR", str(eval_dir / "partial"))  # a run without bins: nothing of it
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/outcomes.py")
    at.run()
    check(at)
    assert at.table and "Does closeness predict gain?" not in [h.value for h in at.subheader]


@pytest.mark.unit
def test_opens_on_the_most_informative_shipped_run_and_keeps_the_run_in_the_url(monkeypatch, tmp_path):
    monkeypatch.delenv("NAIT_EVAL_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # no runs/ here: the shipped runs
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/outcomes.py")
    at.run()
    check(at)
    assert at.selectbox(key="outcomes_run").value.name == "rare-gsm8k-gpu"  # 9 arm groups compared, not a 1-arm run
    assert len(at.table[0].value) == 8 and at.query_params["run"] == "rare-gsm8k-gpu"
    runs = at.selectbox(key="outcomes_run")
    runs.select_index(runs.options.index("gsm8k")).run()
    assert at.query_params["run"] == "gsm8k"

    # A reload (or a shared link) with ?run= opens that run; Back/Forward to another run follows it
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/outcomes.py")
    at.query_params["run"] = "rare-gsm8k-cpu-check"
    at.run()
    check(at)
    assert at.selectbox(key="outcomes_run").value.name == "rare-gsm8k-cpu-check"
    at.query_params["run"] = "gsm8k-control"
    at.run()
    assert at.selectbox(key="outcomes_run").value.name == "gsm8k-control"
    at.query_params["run"] = "../../etc"  # not a listed run: ignored with a note, never read as a path
    at.run()
    check(at)
    assert at.selectbox(key="outcomes_run").value.name == "rare-gsm8k-gpu" and not at.error  # as a reload opens
    assert any("Ignoring run='../../etc' in the link: not one of the runs listed" in w.value for w in at.warning)
