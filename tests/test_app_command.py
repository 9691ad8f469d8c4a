"""The command Select & export shows is the command that writes its file: run as shown (the real `nait`
CLI in a subprocess, on the small demo of test_app), it must export the same bytes the page offers."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from nait_core.scoring import ScoreOptions
from nait_core.selection import Cut
from nait_core.spec import CaptureSpec, DataSpec, ExecutionSettings, ModelSpec, SelectionSpec, to_argv, to_command
from nait_testing.app import check, downloads, open_page, tmp_data_root, widget  # noqa: F401 (autouse)

pytestmark = pytest.mark.unit  # the two end-to-end tests below are slow

ROOT = Path(__file__).resolve().parents[1]


def run_shown(command: str, cwd: Path) -> bytes:
    """Run the shown `nait select …` line with this Python and this checkout's code; the file it wrote."""
    argv = shlex.split(command)
    assert argv[:2] == ["nait", "select"], command
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-m", "nait_core", *argv[1:]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return (cwd / argv[argv.index("--out") + 1]).read_bytes()


def offered_selection(offered: dict, at) -> bytes:
    """The selection the page offers under its current settings (each has a file name of its own)."""
    from studio.select_page import export_name

    data = offered[export_name(at.session_state["studio"].pool.name, at.session_state["studio_settings"], "selected")]
    return data.encode() if isinstance(data, str) else data


def shown_command(at) -> str:
    shown = [c.value for c in at.code if c.value.startswith("nait select")]
    assert shown, [w.value for w in at.warning] + [e.value for e in at.error]
    return shown[0]


def test_the_command_renders_every_option():
    spec = SelectionSpec(
        data=DataSpec(
            "my pool.jsonl",
            ("gsm8k", "t.jsonl"),
            target_size=16,
            seed=3,
            format="text",
            text_field="body",
            skip_invalid=True,
        ),
        model=ModelSpec("smollm2-135m"),
        scoring=ScoreOptions("jaccard", centre=False, fire_threshold="q0.9"),
        cut=Cut(ratio=0.30000000000000004),
        merge="intersection",
    )
    stores = ExecutionSettings(store_dir="stores")
    argv = to_argv(spec, stores, "out dir/sel.jsonl", "scores.jsonl")
    assert argv == [
        "nait",
        "select",
        "--candidates",
        "my pool.jsonl",
        "--target",
        "gsm8k",
        "--target",
        "t.jsonl",
        "--target-size",
        "16",
        "--seed",
        "3",
        "--format",
        "text",
        "--text-field",
        "body",
        "--skip-invalid",
        "--model",
        "smollm2-135m",
        "--method",
        "jaccard",
        "--fire-threshold",
        "q0.9",
        "--reduction",
        "last-first",
        "--layer-norm",
        "none",
        "--no-centre",
        "--ratio",
        "0.30000000000000004",
        "--merge",
        "intersection",
        "--store-dir",
        "stores",
        "--out",
        "out dir/sel.jsonl",
        "--scores",
        "scores.jsonl",
    ]
    assert shlex.split(to_command(spec, stores, "out dir/sel.jsonl", "scores.jsonl")) == argv
    from nait_core.cli import build_parser

    args = build_parser().parse_args(argv[1:])  # every option is one the CLI takes, with the same value
    assert (args.format, args.text_field, args.skip_invalid, args.ratio) == ("text", "body", True, 0.30000000000000004)
    plain = to_argv(SelectionSpec(data=DataSpec("demo", ("gsm8k",))))
    assert not {"--target-size", "--seed", "--format", "--text-field", "--skip-invalid", "--no-centre"} & set(plain)


def test_a_compact_session_names_the_store_the_cli_finds():
    """The app's compact pool options (Config: NAIT_SKETCH, NAIT_EXACT_SAMPLE, NAIT_REDUCTIONS) are the ones
    `nait capture --sketch K --exact-sample N --reductions R` builds, and the command Select & export shows
    for that session parses back to them: the same store key everywhere."""
    from nait_core.capture import capture_identity
    from nait_core.cli import build_parser
    from nait_core.cli.options import capture_options
    from studio.session import Config

    config = Config(sketch=256, exact_sample=500, reductions=("mean", "last-first"))
    cli = build_parser().parse_args(
        ["capture", "--data", "demo", "--sketch", "256", "--exact-sample", "500", "--reductions", "mean,last-first"]
    )
    assert capture_identity(config.pool_options()) == capture_identity(capture_options(cli))
    assert capture_identity(config.pool_options())["sketch"] == {"k": 256, "seed": 0, "kind": "gaussian"}
    spec = SelectionSpec(
        data=DataSpec("demo", ("gsm8k",)), capture=CaptureSpec(config.reductions, sketch=256, exact_sample=500)
    )
    argv = to_argv(spec)
    assert argv[argv.index("--sketch") : argv.index("--sketch") + 4] == ["--sketch", "256", "--exact-sample", "500"]
    shown = capture_options(build_parser().parse_args(argv[1:]))
    assert capture_identity(shown) == capture_identity(config.pool_options())
    exact = Config(sketch=0, exact_sample=500)  # K = 0: an exact pool, no exact sample, the keys it always had
    assert capture_identity(exact.pool_options()) == capture_identity(
        capture_options(build_parser().parse_args(["capture", "--data", "demo"]))
    )
    assert "--sketch" not in to_argv(SelectionSpec(data=DataSpec("demo", ("gsm8k",))))
    with pytest.raises(ValueError, match="--exact-sample must be 0 or more"):
        Config(sketch=64, exact_sample=-1).pool_options()


@pytest.mark.slow
@pytest.mark.usefixtures("demo")
def test_shown_command_exports_the_offered_file(tmp_path, monkeypatch):
    offered = downloads(monkeypatch)
    at = open_page("select")
    for key, value in {"select_method": "jaccard", "select_threshold": "q0.9", "select_ratio": 0.35}.items():
        widget(at, key).set_value(value).run()
    check(at)
    command = shown_command(at)
    assert "--target-size 16" in command and "--fire-threshold q0.9" in command
    assert run_shown(command, tmp_path) == offered_selection(offered, at)


@pytest.mark.slow
@pytest.mark.usefixtures("demo")
def test_shown_command_keeps_the_data_options(tmp_path, monkeypatch):
    """A plain-text pool with a bad record, read with a format, a text field and skip-invalid in the sidebar:
    the shown command carries all three (without them `nait select` stops at the bad record)."""
    pool = tmp_path / "notes.jsonl"
    texts = [f"Add {i} and {i + 1}: the sum is {2 * i + 1}." for i in range(6)]
    pool.write_text(
        "".join(json.dumps({"body": t}) + "\n" for t in texts[:2])
        + '{"body": ""}\n'
        + "".join(json.dumps({"body": t}) + "\n" for t in texts[2:])
    )
    offered = downloads(monkeypatch)
    at = open_page("data")
    at.text_input(key="sb_pool").set_value(str(pool))
    at.selectbox(key="sb_format").set_value("text")
    at.text_input(key="sb_text_field").set_value("body")
    at.checkbox(key="sb_skip_invalid").check()
    at.button(key="FormSubmitter:sb_form-Load").click().run()
    check(at)
    assert not at.error, [e.value for e in at.error]
    at.switch_page("pages/select.py").run()
    check(at)
    command = shown_command(at)
    for option in ("--format text", "--text-field body", "--skip-invalid"):
        assert option in command
    out = tmp_path / "run"
    out.mkdir()
    assert run_shown(command, out) == offered_selection(offered, at)


def test_each_export_has_a_file_name_of_its_own():
    """Issue 25: every download was named `demo-selected.jsonl`, whatever the settings."""
    from studio.select_page import export_name
    from studio.session import Settings

    default = Settings()
    other = Settings(ScoreOptions("jaccard"), Cut(top=10), "intersection")
    assert export_name("demo", default, "selected") == "demo-overlap-ratio0.1-union-selected.jsonl"
    assert export_name("demo", other, "scores") == "demo-jaccard-top10-intersection-scores.jsonl"
    assert export_name("demo", other, "selected") != export_name("demo", default, "selected")
