"""Issue 24's "adding a method is one new module plus one registry line": a toy method, written as a user
would (its own module, one `Method` in `methods.REGISTRY`), runs from `nait select`, is accepted by
`nait eval --methods`, described and listed where the app reads its methods, with nothing else edited."""

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.unit

TOY = '''
"""Words shared with the target: the share of a candidate's distinct words that the target's records use."""
import numpy as np

from nait_core.methods.embed import record_text
from nait_core.scores import Scores


def words(record):
    return set(record_text(record).lower().split())


def score(candidates, targets, names, options, root=None):
    out = []
    for target, name in zip(targets, names):
        vocabulary = set().union(*(words(r) for r in target.records))
        values = np.array([len(words(r) & vocabulary) / max(len(words(r)), 1) for r in candidates.records])
        out.append(Scores(name, values[:, None], np.zeros(1), np.ones(1)))
    return out
'''

REGISTER = """
import sys
from nait_core import methods

methods.REGISTRY["shared-words"] = methods.Method("shared-words", "text", True, "toy_method:score", "words shared")
"""


def run(tmp_path, code: str) -> str:
    (tmp_path / "toy_method.py").write_text(TOY)
    script = textwrap.dedent(REGISTER) + textwrap.dedent(code)
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_a_new_method_is_one_module_and_one_registry_line(tmp_path):
    pool = tmp_path / "pool.jsonl"
    rows = [("add the two numbers", "3"), ("paint the fence red", "ok"), ("add three numbers then halve", "4")]
    pool.write_text("".join(json.dumps({"instruction": q, "input": "", "output": a}) + "\n" for q, a in rows))
    target = tmp_path / "target.jsonl"
    target.write_text(json.dumps({"instruction": "add the numbers", "input": "", "output": "then halve"}) + "\n")
    out = tmp_path / "picked.jsonl"
    run(
        tmp_path,
        f"""
        from nait_core.cli import main
        code = main(["select", "--candidates", {str(pool)!r}, "--target", {str(target)!r}, "--method",
                     "shared-words", "--top", "2", "--out", {str(out)!r}, "--store-dir", {str(tmp_path / "s")!r}])
        assert code in (0, None), code
        """,
    )
    picked = [json.loads(line)["instruction"] for line in out.read_text().splitlines()]
    assert picked == ["add the two numbers", "add three numbers then halve"]
    listed = run(
        tmp_path,
        """
        from nait_core.eval import EvalSettings
        from nait_core.scoring import ScoreOptions
        EvalSettings(methods=("shared-words", "random"))
        print(ScoreOptions("shared-words").describe())
        print("shared-words" in methods.names())  # what the app's method list and agreement table read
        """,
    )
    assert listed.splitlines() == ["shared-words (words shared)", "True"]
