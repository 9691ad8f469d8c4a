"""`nait eval` settings small enough for a tiny random model (12 demo records, 4 + 2 target samples, 1 step)."""

from __future__ import annotations


class Interrupt(Exception):
    """Raised from a progress callback to stop a run mid-way, as Ctrl-C would."""


def eval_settings(tmp_path, **changes):
    """EvalSettings for a run in seconds, stores under `tmp_path`; `changes` replace any field."""
    from nait_core.eval import EvalSettings
    from nait_core.finetune import FinetuneSettings
    from nait_core.metrics import MeasureSettings

    base = {
        "candidates": "demo",
        "candidates_limit": 12,
        "targets": ("gsm8k",),
        "methods": ("overlap", "random"),
        "ratio": 0.25,
        "random_seeds": (0,),
        "full": False,
        "feature_size": 4,
        "heldout_size": 2,
        "store_dir": str(tmp_path / "stores"),
        "finetune": FinetuneSettings(max_steps=1, batch_size=2, max_length=320),
        "measure": MeasureSettings(max_length=320, max_new_tokens=4, generate_limit=1),
    }
    return EvalSettings(**{**base, **changes})
