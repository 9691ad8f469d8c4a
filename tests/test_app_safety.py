"""The app touches only what it should (issue 21; README, Security model): the path rule (`nait_core.paths`),
`hf:` as hub ids only, the Streamlit options `nait app` sets, and through AppTest the sidebar's boxes, the
Outcomes folder box, the write form and a bad link. Last, the real `nait app` listens on loopback only.

Unit tests need no model: the sidebar's setups are refused before anything loads. The write form, the link
and the server are slow (the small demo, a real Streamlit server).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from nait_core.cli import main
from nait_core.cli.app import streamlit_options
from nait_core.data import DataError
from nait_core.paths import OutsideRoot, inside
from nait_core.sources import parse_hub
from nait_testing.app import APP, check, open_page
from nait_testing.browser import wait_until_serving
from studio.guard import check_output
from studio.session import Settings
from studio.urlstate import settings_from

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[1]
SHIPPED_RUN = ROOT / "docs" / "results" / "gsm8k"


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """tmp/root (the data root, holding a pool and a run) and tmp/outside (a secret, another run), with
    symlinks in the root pointing out and within."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "data").mkdir(parents=True)
    outside.mkdir()
    (root / "data" / "pool.jsonl").write_text('{"instruction": "a", "output": "b"}\n')
    (outside / "secret.txt").write_text("password\n")
    shutil.copytree(SHIPPED_RUN, root / "runs" / "mine")
    shutil.copytree(SHIPPED_RUN, outside / "runs" / "theirs")
    (root / "out-link.jsonl").symlink_to(outside / "secret.txt")
    (root / "out-dir").symlink_to(outside)
    (root / "in-link.jsonl").symlink_to(root / "data" / "pool.jsonl")
    monkeypatch.setenv("NAIT_DATA_ROOT", str(root))
    monkeypatch.setenv("NAIT_STORE_DIR", str(tmp_path / "stores"))
    return root, outside


# ---------------------------------------------------------------- the rule


def test_inside_keeps_paths_in_the_root(tree):
    root, _ = tree
    assert inside(root / "data" / "pool.jsonl", [root]) == root / "data" / "pool.jsonl"
    assert inside(root / "new" / "file.jsonl", [root]) == root / "new" / "file.jsonl"  # not there yet
    assert inside(root / "in-link.jsonl", [root]) == root / "data" / "pool.jsonl"  # a symlink within
    assert inside(root / "data" / ".." / "data" / "pool.jsonl", [root]) == root / "data" / "pool.jsonl"
    assert inside(Path("/etc/hostname"), [root, "/etc"]) == Path("/etc/hostname")  # another allowed root


@pytest.mark.parametrize(
    "path",
    [
        "{root}/../outside/secret.txt",  # `..`
        "/etc/passwd",  # absolute
        "{root}/out-link.jsonl",  # a symlink pointing out
        "{root}/out-dir/secret.txt",  # through a symlinked folder
        "{root}/out-dir/new.jsonl",  # a file not there yet, below a symlink out
        "{root}/../root-sibling",  # a name that only starts like the root
    ],
)
def test_inside_refuses_paths_that_resolve_out(tree, path):
    root, _ = tree
    path = path.format(root=root)
    with pytest.raises(OutsideRoot) as error:
        inside(path, [root], "the pool")
    assert str(error.value).startswith(f"the pool {path}") and f"outside the data root {root}" in str(error.value)


def test_hf_takes_hub_ids_only(tmp_path, monkeypatch):
    assert parse_hub("hf:openai/gsm8k:main:test") == ("openai/gsm8k", "main", "test")
    assert parse_hub("hf:gsm8k") == ("gsm8k", None, "train")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "owner" / "name").mkdir(parents=True)  # datasets would read this folder, not the hub
    for bad in ("hf:/some/folder", "hf:./x", "hf:~/x", "hf:../x", "hf:a/../b", "hf:owner/name", "hf:a/b/c"):
        with pytest.raises(DataError, match="hf: takes hub ids only") as error:
            parse_hub(bad)
        assert "plain path" in str(error.value)


def test_cli_refuses_hf_folder(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("secret line\n")
    code = main(
        [
            "select",
            "--candidates",
            f"hf:{tmp_path}",
            "--target",
            "gsm8k",
            "--out",
            str(tmp_path / "o.jsonl"),
            "--ratio",
            "0.5",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("nait: error:") and "hf: takes hub ids only" in err, err
    assert not (tmp_path / "o.jsonl").exists()


def test_nait_app_options():
    ours = ["--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    ours += ["--client.toolbarMode", "minimal", "--server.fileWatcherType", "none", "--runner.postScriptGC", "false"]
    assert streamlit_options([], {}) == ours
    assert streamlit_options(["--server.port", "8502"], {}) == [*ours, "--server.port", "8502"]
    mine = streamlit_options(["--server.address=0.0.0.0", "--server.fileWatcherType", "auto"], {})
    assert mine == ["--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal"] + [
        "--runner.postScriptGC",
        "false",
        "--server.address=0.0.0.0",
        "--server.fileWatcherType",
        "auto",
    ]
    assert "--server.address" not in streamlit_options([], {"STREAMLIT_SERVER_ADDRESS": "0.0.0.0"})
    assert "--server.fileWatcherType" not in streamlit_options([], {"STREAMLIT_SERVER_FILE_WATCHER_TYPE": "auto"})
    assert "--browser.gatherUsageStats" not in streamlit_options([], {"STREAMLIT_BROWSER_GATHER_USAGE_STATS": "1"})


def test_nait_app_opens_a_smaller_demo_without_an_accelerator(monkeypatch):
    """Issue 25: the whole demo's first start is 11 minutes of forward passes on a 2-core CPU; there the app
    opens 400 of its records (in the demo's proportions) with 32-record targets, unless the user sized it."""
    from nait_core.cli.app import CPU_DEMO, first_start_env
    from nait_core.datasets import load_builtin

    def never():
        raise AssertionError("torch asked although the user sized the demo")

    assert first_start_env({}, accelerator=lambda: False) == CPU_DEMO
    assert first_start_env({}, accelerator=lambda: True) == {}
    assert first_start_env({"NAIT_DEMO_SIZE": "1000"}, accelerator=never) == {}
    assert first_start_env({"NAIT_TARGET_SIZE": "64"}, accelerator=never) == {}
    monkeypatch.setenv("NAIT_DEMO_SIZE", CPU_DEMO["NAIT_DEMO_SIZE"])
    demo = load_builtin("demo")
    assert demo.name == "demo-400" and len(demo) == 400
    assert [sum(r.source == s for r in demo.records) for s in ("gsm8k", "humaneval", "mmlu")] == [100, 20, 280]


@pytest.mark.parametrize(
    "params, why",
    [
        ({"merge": "bogus"}, "merge='bogus': must be one of union, intersection, mean-z"),
        ({"reduction": "bogus"}, "reduction='bogus': must be one of"),
        ({"min_score": "nan"}, "min_score='nan': must be a finite number"),
        ({"min_score": "inf"}, "min_score='inf': must be a finite number"),  # the number box raised on every run
    ],
)
def test_bad_settings_in_a_link_are_refused(params, why):
    with pytest.raises(ValueError, match=why):
        settings_from(params, Settings())


def test_nait_app_refuses_a_missing_data_root(tmp_path, capsys):
    assert main(["app", "--data-root", str(tmp_path / "nowhere")]) == 2
    assert "--data-root" in capsys.readouterr().err


def test_export_paths(tree):
    """What the write form may write: a .jsonl file in the root, in no hidden folder, not in the stores."""
    root, outside = tree
    stores = root / "cached_features"
    assert check_output(str(root / "out" / "a.jsonl"), "the selection path", stores) == root / "out" / "a.jsonl"
    for path, why in (
        (outside / "a.jsonl", f"outside the data root {root}"),
        (root / "out-dir" / "a.jsonl", "outside the data root"),
        (stores / "uploads" / "a.jsonl", f"inside the app's store folder {stores}"),
        (root / ".git" / "a.jsonl", "hidden"),
        (root / ".bashrc", "hidden"),
        (root / "data" / "run.sh", "does not end in .jsonl"),
    ):
        with pytest.raises(ValueError, match=why.replace(".", r"\.")):
            check_output(str(path), "the selection path", stores)


# ---------------------------------------------------------------- the app (AppTest)


def errors(at) -> list[str]:
    return [e.value for e in at.error]


def test_sidebar_refuses_paths_outside_the_root(tree, monkeypatch):
    """Model, pool and target boxes: a path outside the data root (or a symlink out, or hf: on a folder) is
    refused with the path and the root named, before anything is read or captured."""
    root, outside = tree
    monkeypatch.setenv("NAIT_MODEL", str(outside / "model"))  # the starting setup itself is refused
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    check(at)
    assert any(f"the model {outside / 'model'} is outside the data root {root}" in e for e in errors(at))

    def load(model="smollm2-135m", pool="demo", targets="gsm8k"):
        at.text_input(key="sb_model").set_value(model)
        at.text_input(key="sb_pool").set_value(pool)
        at.text_area(key="sb_targets").set_value(targets)
        at.button(key="FormSubmitter:sb_form-Load").click().run()
        check(at)
        return errors(at)

    secret = str(outside / "secret.txt")
    assert any(f"the pool {secret} is outside the data root {root}" in e for e in load(pool=secret))
    linked = str(root / "out-link.jsonl")
    assert any(f"the pool {linked} (it resolves to {secret}) is outside" in e for e in load(pool=linked))
    assert any(f"the target {secret} is outside" in e for e in load(targets=f"gsm8k\n{secret}"))
    assert any("hf: takes hub ids only" in e for e in load(pool=f"hf:{outside}"))
    assert any(f"the model {outside} is outside" in e for e in load(model=str(outside)))
    assert not (root.parent / "stores").exists()  # nothing was captured (nor read: the checks come first)
    assert not at.main.title  # no page ran on a refused setup


def test_read_only_app_takes_no_uploads(tree, monkeypatch):
    root, outside = tree
    monkeypatch.setenv("NAIT_MODEL", str(outside / "model"))  # nothing loads: only the sidebar's form is drawn
    for read_only, uploaders in (("", 2), ("1", 0)):
        monkeypatch.setenv("NAIT_READ_ONLY", read_only)
        at = AppTest.from_file(APP, default_timeout=120)
        at.run()
        check(at)
        assert len(at.get("file_uploader")) == uploaders


def outcomes(at_path: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/outcomes.py")  # no model: the sidebar loads nothing on this page
    at.run()
    if at_path is not None:
        at.text_input(key="outcomes_root").set_value(at_path).run()
    check(at)
    return at


def test_outcomes_box_reads_only_the_root(tree, monkeypatch):
    root, outside = tree
    monkeypatch.setenv("NAIT_EVAL_DIR", str(root / "runs"))
    at = outcomes()
    assert at.selectbox(key="outcomes_run").options == ["mine"] and not errors(at)
    for folder in (outside / "runs", root / "out-dir" / "runs", root / ".." / "outside"):
        at = outcomes(str(folder))
        assert any(f"Not read: the results folder {folder}" in e and f"data root {root}" in e for e in errors(at))
        assert not at.selectbox  # nothing listed, nothing read
    (root / "runs" / "linked").symlink_to(outside / "runs" / "theirs")  # a run folder linked in from outside
    assert outcomes(str(root / "runs")).selectbox(key="outcomes_run").options == ["mine"]


@pytest.mark.slow
def test_write_form_follows_the_cli_rules_inside_the_root(demo, tmp_path, monkeypatch):
    """Outside the root, into the store, a hidden or non-JSONL file: refused. The loaded pool is never
    replaced; an existing file only with the replace box; "Wrote" only when a file was written."""
    monkeypatch.setenv("NAIT_DATA_ROOT", str(tmp_path))
    pool = tmp_path / "pool.jsonl"
    records = [{"instruction": f"question {i}", "output": f"answer {i}"} for i in range(20)]
    pool.write_text("".join(json.dumps(r) + "\n" for r in records))
    at = open_page("data")
    at.text_input(key="sb_pool").set_value(str(pool))
    at.button(key="FormSubmitter:sb_form-Load").click().run()
    at.switch_page("pages/select.py").run()
    check(at)
    assert [t.value for t in at.main.title] == ["Select & export"]

    def write(path, replace=False, scores=""):
        at.text_input(key="select_path").set_value(str(path))
        at.text_input(key="select_scores_path").set_value(str(scores))
        at.checkbox(key="select_replace").set_value(replace)
        at.button(key="FormSubmitter:select_write-Write").click().run()
        check(at)
        return errors(at), [s.value for s in at.success]

    before = pool.read_bytes()
    bashrc = tmp_path.parent / "outside-home" / ".bashrc"
    err, ok = write(bashrc, replace=True)
    assert any(f"Not written: the selection path {bashrc} is outside the data root {tmp_path}" in e for e in err)
    assert not ok and not bashrc.exists()
    err, ok = write(pool, replace=True)
    assert any("is the input the pool" in e for e in err) and not ok and pool.read_bytes() == before
    err, ok = write(tmp_path / "notes.sh")
    assert any("does not end in .jsonl" in e for e in err) and not ok and not (tmp_path / "notes.sh").exists()
    out = tmp_path / "chosen.jsonl"
    err, ok = write(out)
    assert not err and ok == [f"Wrote {out.read_text().count(chr(10))} records to {out}"]
    out.write_text("mine\n")
    err, ok = write(out)
    assert any("already exists" in e and "Replace an existing file" in e for e in err) and not ok
    assert out.read_text() == "mine\n"
    err, ok = write(out, replace=True)
    assert not err and len(ok) == 1 and out.read_text() != "mine\n"
    err, ok = write("", scores=tmp_path / "scores.jsonl")
    assert ok == [f"Wrote the scores of 20 records to {tmp_path / 'scores.jsonl'}"]  # and no "Wrote … records to "
    monkeypatch.setenv("NAIT_READ_ONLY", "1")  # `nait app --read-only`: no write form
    at.run()
    check(at)
    assert "select_path" not in [t.key for t in at.text_input] and at.get("download_button")


@pytest.mark.slow
@pytest.mark.parametrize("name, value", [("merge", "bogus"), ("min_score", "inf")])
def test_a_bad_value_in_a_link_is_ignored(demo, name, value):
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params[name] = value
    at.switch_page("pages/select.py")
    at.run()
    check(at)
    assert any("Ignoring the scoring settings in the link" in w.value and value in w.value for w in at.warning)
    assert at.selectbox(key="select_merge").value == "union" and at.slider(key="select_ratio").value == 0.1
    assert not errors(at)
    at.switch_page("pages/samples.py").run()  # the session still works on every page
    check(at)
    assert [t.value for t in at.main.title] == ["Sample explorer"]


# ---------------------------------------------------------------- the real server


def non_loopback_ipv4() -> list[str]:
    """This machine's IPv4 addresses other than 127.x (from `ip -4 addr`; none if it has no other)."""
    try:
        out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return []
    found = [line.split()[3].split("/")[0] for line in out.splitlines() if " inet " in line]
    return [a for a in found if not a.startswith("127.")]


def listening(port: int) -> set[str]:
    """The local addresses a socket listens on at `port` (from /proc/net/tcp and tcp6; hex, as the kernel writes)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


@pytest.mark.slow
def test_nait_app_listens_on_loopback_only(tmp_path):
    from nait_testing.browser import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "nait_core", "app", "--server.headless", "true", "--server.port", str(port)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_serving(process, port)
        assert listening(port) == {"0100007F"}, listening(port)  # 127.0.0.1 only: no 0.0.0.0, no ::
        for address in non_loopback_ipv4():
            with pytest.raises(OSError), socket.create_connection((address, port), timeout=3):
                pass
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_make_app_forwards_its_args_to_streamlit(tmp_path):
    """`make app ARGS="…"` (the README's command) passes the options on: the app serves on the port asked for,
    on loopback still (`nait app`'s defaults stay beneath a user's options)."""
    import shutil
    import signal

    from nait_testing.browser import free_port

    if not shutil.which("make"):
        pytest.fail("make is missing: the README's two commands need it")
    port = free_port()
    process = subprocess.Popen(
        ["make", "-s", "app", f"ARGS=--server.headless true --server.port {port}"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # make's child is the server: stop them together
    )
    try:
        wait_until_serving(process, port)
        assert listening(port) == {"0100007F"}, listening(port)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
