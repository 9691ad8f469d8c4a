"""Capture on a local Ray cluster (CPU, tiny random Llama saved to a folder): same bytes as one process,
same selection, and it survives a killed actor and a killed driver."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from nait_core.capture import CaptureOptions, capture
from nait_core.cli import main
from nait_core.data import Dataset
from nait_core.datasets import load_builtin
from nait_core.distributed import RayOptions
from nait_core.models import load_model
from nait_core.store import Store

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cluster():
    """One local cluster for the module, 4 logical CPUs declared on the 2-core machine (fractional-CPU
    actors plus Ray Data's own tasks); auth off for a local test cluster."""
    os.environ["RAY_AUTH_MODE"] = "disabled"
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny_folder(tiny_model_dir):
    """A tiny random Llama with the bundled tokenizer, saved so that actors load it by path."""
    return tiny_model_dir


@pytest.fixture(scope="module")
def model(tiny_folder):
    return load_model(str(tiny_folder), device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def records():
    demo = load_builtin("demo")
    return Dataset("demo-60", demo.records[:60])


def _options(**more):
    return CaptureOptions(shard_size=4, max_length=64, **more)


def _shard_bytes(store: Store) -> dict:
    return {(s.start, f.name): f.read_bytes() for s in store.shards() for f in sorted(s.path.glob("*.npy"))}


def test_ray_store_has_the_same_bytes_as_one_process(cluster, model, records, tmp_path):
    single = capture(model, records, tmp_path / "single", _options()).store
    settings = RayOptions(address=cluster, workers=2)
    report = capture(model, records, tmp_path / "ray", _options(ray=settings))
    assert not report.reused and report.store.complete
    assert report.store.path.name == single.path.name  # same key, same manifest
    assert _shard_bytes(Store.open(report.store.path)) == _shard_bytes(single)  # every shard, byte for byte
    assert 1 <= len(report.workers) <= 2  # a pool of 2; the second may start after the last shard
    assert sum(w["shards"] for w in report.workers.values()) == len(single.shard_ranges())
    assert sum(w["tokens"] for w in report.workers.values()) == int(single.per_sample("tokens").sum())
    assert capture(model, records, tmp_path / "ray", _options(ray=settings)).reused


def test_select_with_ray_writes_the_same_selection(cluster, tiny_folder, records, tmp_path):
    pool, target = tmp_path / "pool.jsonl", tmp_path / "target.jsonl"
    pool.write_text("".join(json.dumps(r.raw) + "\n" for r in records.records[:40]))
    target.write_text("".join(json.dumps(r.raw) + "\n" for r in records.records[40:52]))
    common = [
        "select",
        "--candidates",
        str(pool),
        "--target",
        str(target),
        "--model",
        str(tiny_folder),
        "--device",
        "cpu",
        "--max-length",
        "64",
        "--ratio",
        "0.25",
    ]
    assert (
        main(
            common
            + [
                "--store-dir",
                str(tmp_path / "a"),
                "--out",
                str(tmp_path / "a.jsonl"),
                "--scores",
                str(tmp_path / "a-scores.jsonl"),
            ]
        )
        == 0
    )
    assert (
        main(
            common
            + [
                "--store-dir",
                str(tmp_path / "b"),
                "--out",
                str(tmp_path / "b.jsonl"),
                "--scores",
                str(tmp_path / "b-scores.jsonl"),
                "--ray",
                cluster,
                "--ray-workers",
                "2",
            ]
        )
        == 0
    )
    chosen = (tmp_path / "a.jsonl").read_text()
    assert chosen and chosen == (tmp_path / "b.jsonl").read_text()
    assert (tmp_path / "a-scores.jsonl").read_text() == (tmp_path / "b-scores.jsonl").read_text()


def _incomplete(path: Path) -> list[str]:
    """Shard folders without their completeness mark: what a reader must never see."""
    return [p.name for p in path.glob("shard-*") if not (p / "checksums.json").exists()]


def test_a_killed_worker_is_retried_and_the_store_verifies(cluster, model, records, tmp_path):
    settings = RayOptions(address=cluster, workers=1)  # one actor: the rest of the run needs its restart
    options = CaptureOptions(shard_size=2, max_length=64, ray=settings)
    seen, outcome = [], {}

    def progress(p):
        seen.append(p.samples_done)

    def run():
        try:
            outcome["report"] = capture(model, records, tmp_path, options, progress)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    board = None
    deadline = time.time() + 300
    while time.time() < deadline and board is None:  # the run's progress actor, found by its name prefix
        names = [n for n in ray.util.list_named_actors() if n.startswith("nait-progress-")]
        board = ray.get_actor(names[0]) if names else None
        time.sleep(0.2)
    assert board is not None
    victim = None
    while time.time() < deadline and victim is None:
        snap = ray.get(board.snapshot.remote())
        busy = [w for w in snap["workers"].values() if w["shards"] >= 1]
        if busy and snap["samples"] < len(records) - 10:  # mid-run: most shards still to do
            victim = busy[0]["pid"]
        time.sleep(0.05)
    assert victim is not None, "the worker never finished a first shard"
    os.kill(victim, signal.SIGKILL)
    thread.join(timeout=600)
    assert "error" not in outcome, outcome.get("error")
    report = outcome["report"]
    workers = report.workers
    assert any(w["pid"] == victim for w in workers.values())
    assert any(w["pid"] != victim and w["shards"] for w in workers.values())  # a restarted actor finished it
    store = Store.open(report.store.path, verify=True)
    assert not _incomplete(store.path)
    whole = capture(model, records, tmp_path / "one", CaptureOptions(shard_size=2, max_length=64)).store
    assert _shard_bytes(store) == _shard_bytes(whole)


DRIVER = """
import sys
from nait_core.capture import CaptureOptions, capture
from nait_core.data import Dataset
from nait_core.datasets import load_builtin
from nait_core.distributed import RayOptions
from nait_core.models import load_model
model = load_model(sys.argv[1], device="cpu", dtype="float32")
records = Dataset("demo-60", load_builtin("demo").records[:60])
options = CaptureOptions(shard_size=2, max_length=64, ray=RayOptions(address=sys.argv[3], workers=1))
print(capture(model, records, sys.argv[2], options).store.path, flush=True)
"""


def _driver(tiny_folder, root, address):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "disabled"}
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(tiny_folder), str(root), address],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def test_a_killed_driver_resumes_with_only_the_missing_shards(cluster, tiny_folder, model, records, tmp_path):
    root = tmp_path / "store"
    process = _driver(tiny_folder, root, cluster)
    deadline = time.time() + 300
    try:
        while time.time() < deadline:
            written = [p for p in root.glob("*/shard-*") if (p / "checksums.json").exists()]
            if len(written) >= 2:
                break
            assert process.poll() is None, process.communicate()
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)  # the driver only: its actors die with their job
    finally:
        process.wait(timeout=60)
    [folder] = root.iterdir()
    kept = {
        p.name: (p / "checksums.json").stat().st_mtime_ns
        for p in folder.glob("shard-*")
        if (p / "checksums.json").exists()
    }
    partial = Store(folder, json.loads((folder / "manifest.json").read_text()))
    assert 2 <= len(kept) < len(partial.shard_ranges())  # killed mid-run
    assert not _incomplete(folder)

    rerun = _driver(tiny_folder, root, cluster)
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    store = Store.open(folder, verify=True)
    after = {p.name: (p / "checksums.json").stat().st_mtime_ns for p in folder.glob("shard-*")}
    assert {name: after[name] for name in kept} == kept  # finished shards untouched
    assert len(after) == len(store.shard_ranges())
    rewritten = sum(int(m) for m in re.findall(r"(\d+) shards,", err))  # the per-worker counts at the end
    assert rewritten == len(store.shard_ranges()) - len(kept)  # only the missing shards ran again
    whole = capture(model, records, tmp_path / "one", CaptureOptions(shard_size=2, max_length=64)).store
    assert _shard_bytes(store) == _shard_bytes(whole)
