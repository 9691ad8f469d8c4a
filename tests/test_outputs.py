"""Issue 21, the CLI's part: outputs never replace a special file or a link; --out and --scores land
together or not at all; a full disk is a `nait: error`; `--out -` is standard output; leftover
temporaries of a killed run are removed. Each test failed on the code before the fix."""

import errno
import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nait_core import atomic
from nait_core.cli import main
from nait_core.data import read_records
from nait_core.selection import Cut, OutputError, export, remove_stale_temps, select

pytestmark = pytest.mark.unit


def pool_file(path, n=6, text="A"):
    path.write_bytes("".join(json.dumps({"instruction": f"Q{i}", "output": text}) + "\n" for i in range(n)).encode())
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def random_select(pool, *more):
    return ["select", "--candidates", pool, "--method", "random", "--ratio", "0.5", *more]


def dead_pid() -> int:
    """A pid no process has now: a child that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# ---------------------------------------------------------------- special files and links


def test_out_dev_null_with_force_is_refused_and_stays_a_device(tmp_path, capsys):
    """As root, the old code replaced /dev/null by a regular file. Root gets its own null device in tmp_path
    (a failing run must not break the machine's); others try the real one, which they cannot replace."""
    null = Path("/dev/null")
    if os.geteuid() == 0:
        null = tmp_path / "null"
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    code, _, err = run(capsys, *random_select(pool_file(tmp_path / "pool.jsonl"), "--out", null, "--force"))
    assert code == 2 and f"--out {null} is a character device, not a regular file" in err
    assert stat.S_ISCHR(os.lstat(null).st_mode)


@pytest.mark.parametrize("kind", ["fifo", "socket"])
@pytest.mark.parametrize("option", ["--out", "--scores"])
def test_a_special_file_is_never_replaced_even_with_force(kind, option, tmp_path, capsys):
    special = tmp_path / kind
    if kind == "fifo":
        os.mkfifo(special)
    else:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(special))
    outputs = {"--out": tmp_path / "o.jsonl", "--scores": tmp_path / "s.jsonl", option: special}
    code, _, err = run(
        capsys,
        *random_select(pool_file(tmp_path / "pool.jsonl"), "--force"),
        "--out",
        outputs["--out"],
        "--scores",
        outputs["--scores"],
    )
    assert code == 2 and f"{option} {special} is a" in err and "not a regular file" in err, err
    test = stat.S_ISFIFO if kind == "fifo" else stat.S_ISSOCK
    assert test(os.lstat(special).st_mode)
    assert not (tmp_path / "o.jsonl").exists() and not (tmp_path / "s.jsonl").exists()


@pytest.mark.parametrize("target", ["a file", "nothing"])
def test_a_symlink_output_is_refused_with_force_and_neither_it_nor_its_target_changes(target, tmp_path, capsys):
    mine, link = tmp_path / "mine.txt", tmp_path / "o.jsonl"
    if target == "a file":
        mine.write_text("my work\n")
    link.symlink_to(mine)
    code, _, err = run(capsys, *random_select(pool_file(tmp_path / "pool.jsonl"), "--out", link, "--force"))
    assert code == 2 and f"--out {link} is a symbolic link (to {mine})" in err, err
    assert link.is_symlink() and os.readlink(link) == str(mine)
    assert (mine.read_text() == "my work\n") if target == "a file" else not mine.exists()


def test_export_refuses_a_link_that_appeared_after_the_check(tmp_path):
    """The writer checks again right before its rename: the path may have changed since the CLI's check."""
    data = read_records(pool_file(tmp_path / "pool.jsonl"))
    out, mine = tmp_path / "o.jsonl", tmp_path / "mine.txt"
    mine.write_text("my work\n")
    out.symlink_to(mine)
    with pytest.raises(OutputError, match="is a symbolic link"):
        export(data.records, select({"t": np.arange(6.0)}, Cut(top=2)), out)
    assert out.is_symlink() and mine.read_text() == "my work\n"
    assert sorted(os.listdir(tmp_path)) == ["mine.txt", "o.jsonl", "pool.jsonl"]  # no temporary left


# ---------------------------------------------------------------- --out -


def test_out_dash_writes_the_selection_to_stdout_and_messages_to_stderr(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pool = pool_file(tmp_path / "pool.jsonl")
    code, out, err = run(capsys, *random_select(pool, "--out", "-", "--scores", "s.jsonl"))
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 3 and all(line.encode() + b"\n" in pool.read_bytes() for line in lines)  # pure JSONL
    assert "-> standard output" in err
    scores = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert sum(s["selected"] for s in scores) == 3
    assert sorted(os.listdir(tmp_path)) == ["pool.jsonl", "s.jsonl"]  # no file named "-"


def test_a_reader_leaving_early_is_an_error_and_no_scores_file_lands(tmp_path):
    """`nait select --out - --scores s.jsonl | head -c 10`: no traceback, and no --scores for a selection
    that was not delivered."""
    pool, scores = pool_file(tmp_path / "pool.jsonl", 3000, "x" * 50), tmp_path / "s.jsonl"
    argv = [sys.executable, "-m", "nait_core", *random_select(pool, "--out", "-", "--scores", scores)]
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdout.read(10)
    child.stdout.close()  # 200 kB of JSONL: more than the pipe holds
    err = child.stderr.read().decode()
    assert child.wait() == 2 and "standard output was closed" in err and "Traceback" not in err, err
    assert sorted(os.listdir(tmp_path)) == ["pool.jsonl"]


def test_out_and_scores_cannot_both_be_stdout(tmp_path, capsys):
    code, _, err = run(capsys, *random_select(pool_file(tmp_path / "pool.jsonl"), "--out", "-", "--scores", "-"))
    assert code == 2 and "are both '-' (standard output)" in err


def test_feature_out_dash_is_refused_not_written_as_a_file_named_dash(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pool = pool_file(tmp_path / "pool.jsonl")
    code, _, err = run(capsys, "feature", "--target", pool, "--out", "-", "--store-dir", tmp_path / "stores")
    assert code == 2 and "--out -: nait feature writes a binary file" in err
    assert sorted(os.listdir(tmp_path)) == ["pool.jsonl"]


# ---------------------------------------------------------------- both outputs or neither; full disk


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 64 KiB file system (tmpfs; needs root), unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("needs root to mount a small tmpfs (the renames' failure is tested without it below)")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


@pytest.mark.parametrize("full", ["--out", "--scores"])
def test_a_full_disk_is_an_error_naming_the_path_and_keeps_the_old_pair(full, tiny_disk, tmp_path, capsys):
    # a big --out (every long record) or a big --scores (many records, one kept): 100+ KiB on a 64 KiB disk
    n, text, cut = (100, "x" * 1500, ["--ratio", "1"]) if full == "--out" else (2000, "A", ["--top", "1"])
    pool = pool_file(tmp_path / "pool.jsonl", n, text)
    out, scores = tiny_disk / "o.jsonl", tiny_disk / "s.jsonl"
    out.write_text("old out\n"), scores.write_text("old scores\n")
    code, _, err = run(
        capsys,
        "select",
        "--candidates",
        pool,
        "--method",
        "random",
        *cut,
        "--out",
        out,
        "--scores",
        scores,
        "--force",
    )
    path = out if full == "--out" else scores
    assert code == 2 and f"nait: error: {path}: no space left on device" in err, err
    assert "Traceback" not in err
    assert out.read_text() == "old out\n" and scores.read_text() == "old scores\n"  # neither new one landed
    assert sorted(os.listdir(tiny_disk)) == ["o.jsonl", "s.jsonl"]  # no temporary left


def test_force_replaces_both_outputs_and_leaves_no_backup_behind(tmp_path, capsys):
    out, scores = tmp_path / "o.jsonl", tmp_path / "s.jsonl"
    out.write_text("old out\n"), scores.write_text("old scores\n")
    code, _, err = run(
        capsys, *random_select(pool_file(tmp_path / "pool.jsonl"), "--out", out, "--scores", scores, "--force")
    )
    assert code == 0, err
    assert len(out.read_text().splitlines()) == 3 and len(scores.read_text().splitlines()) == 6
    assert sorted(os.listdir(tmp_path)) == ["o.jsonl", "pool.jsonl", "s.jsonl"]


def test_a_failed_second_rename_restores_the_first_output(tmp_path, monkeypatch):
    """The renames can fail too (after both files were written): the first output is put back."""
    data = read_records(pool_file(tmp_path / "pool.jsonl"))
    out, scores = tmp_path / "o.jsonl", tmp_path / "s.jsonl"
    out.write_text("old out\n")
    real = os.replace

    def replace(src, dst):
        if str(dst) == str(scores):
            raise OSError(errno.EIO, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OutputError, match=f"{scores}: input/output error"):
        export(data.records, select({"t": np.arange(6.0)}, Cut(top=2)), out, scores)
    assert out.read_text() == "old out\n" and not scores.exists()
    assert sorted(os.listdir(tmp_path)) == ["o.jsonl", "pool.jsonl"]

    out.unlink()  # no old --out: the new one is removed again
    with pytest.raises(OutputError):
        export(data.records, select({"t": np.arange(6.0)}, Cut(top=2)), out, scores)
    assert sorted(os.listdir(tmp_path)) == ["pool.jsonl"]


# ---------------------------------------------------------------- leftover temporaries


def test_a_killed_runs_temporaries_are_removed_by_the_next_run_writing_that_output(tmp_path, capsys):
    pool, out = pool_file(tmp_path / "pool.jsonl"), tmp_path / "o.jsonl"
    dead, alive = dead_pid(), os.getppid()
    stale = tmp_path / f".o.jsonl.tmp{dead}-140000-0123abcd-{atomic.HOST}"
    live = tmp_path / f".o.jsonl.tmp{alive}-140000-0123abcd-{atomic.HOST}"
    other = tmp_path / f".other.jsonl.tmp{dead}-140000-0123abcd-{atomic.HOST}"  # another output's: not ours to judge
    unrelated = tmp_path / ".o.jsonl.tmpnotes"
    for path in (stale, live, other, unrelated):
        path.write_text("half an export\n")
    code, _, err = run(capsys, *random_select(pool, "--out", out))
    assert code == 0, err
    assert not stale.exists() and live.exists() and other.exists() and unrelated.exists()
    assert len(out.read_text().splitlines()) == 3


def test_remove_stale_temps_never_follows_a_link(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    link = tmp_path / f".o.jsonl.tmp{dead_pid()}-1-0123abcd-{atomic.HOST}"
    link.symlink_to(victim)
    assert remove_stale_temps(tmp_path / "o.jsonl") == []
    assert link.is_symlink() and victim.read_text() == "keep\n"


@pytest.mark.model
def test_a_feature_file_on_a_full_disk_is_an_error_and_a_killed_runs_temporary_goes(tiny_disk, tmp_path, capsys):
    out = tiny_disk / "f.safetensors"  # some hundred kB for the bundled model: more than the disk holds
    stale = tiny_disk / f".f.safetensors.tmp{dead_pid()}-1-0123abcd-{atomic.HOST}"
    stale.write_text("half a feature\n")
    target = pool_file(tmp_path / "target.jsonl", 2)
    code, _, err = run(capsys, "feature", "--target", target, "--out", out, "--store-dir", tmp_path / "stores")
    assert code == 2 and f"nait: error: {out}: no space left on device" in err and "Traceback" not in err, err
    assert os.listdir(tiny_disk) == []
