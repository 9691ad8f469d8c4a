"""`nait eval`: fine-tune the same base model on each selection ("arm") and measure the target skill.

Arms: each scoring method at a ratio (NAIT methods through `pipeline.run_select`, `ifd`/`length` from
`baselines`), with `--bins` also `<method>@middle` and `<method>@bottom` (as many records from the middle and
the bottom of a target-scoring method's ranking), `random#<seed>` at the same ratio for several seeds, `full` (the whole pool at the set
epochs), `full-matched` (the whole pool, stopped after as many optimiser steps as a selection arm
takes: the Trainer's seeded shuffle decides which records those steps see), `subset:<file>` (a JSONL
subset the user brings), and `base` (the model without tuning).

Per held-out record, each arm's summed response loss and token count are kept (`per_problem`), so two
arms can be compared problem by problem (`paired_comparison`: a paired bootstrap interval of the
difference in loss and a sign test). What each arm selected is counted by kind (`composition`: a
record's `origin` field, as `bench/make_rare_pool.py` writes it, else its source) and planted records
(`"planted": true`).

Each target set is split once, by seed, into a feature part (builds the capability feature) and a
held-out part (measured); the held-out part is never given to selection or training, and held-out
records that also occur in the pool or a subset are left out of the measurement and counted.

Modules: `settings` (the settings, the arms, the data and the target split), `run` (each arm's selection,
fine-tuning and measurement; results.json on disk, checkpoints and resume), `compare` (paired comparisons and
score bins), `report` (the table, charts, results.md). The command line is `nait_core.cli.eval`.
"""

from .compare import (
    bin_rows,
    bins_finding,
    bins_table,
    comparison_references,
    comparison_table,
    group_per_problem,
    paired_bootstrap,
    paired_comparison,
    sign_test,
)
from .report import (
    arm_status,
    composition_table,
    device_note,
    results_figures,
    results_markdown,
    results_table,
    summary,
)
from .run import (
    ArmProgress,
    arm_finetune_settings,
    bin_indices,
    checkpoint_folder,
    composition,
    compositions,
    load_results,
    matched_steps,
    read_results,
    record_kind,
    run_eval,
    save_results,
    selection_indices,
    training_set,
)
from .settings import (
    ARM_METHODS,
    BINS,
    FULL_STEPS,
    Arm,
    EvalData,
    EvalSettings,
    arms_of,
    data_fingerprint,
    load_eval_data,
    settings_from_json,
    split_target,
    subset_names,
)

__all__ = [
    "ARM_METHODS",
    "BINS",
    "FULL_STEPS",
    "Arm",
    "ArmProgress",
    "EvalData",
    "EvalSettings",
    "arm_finetune_settings",
    "arm_status",
    "bin_indices",
    "bin_rows",
    "bins_finding",
    "bins_table",
    "arms_of",
    "checkpoint_folder",
    "comparison_references",
    "comparison_table",
    "composition",
    "composition_table",
    "compositions",
    "data_fingerprint",
    "device_note",
    "group_per_problem",
    "load_eval_data",
    "load_results",
    "matched_steps",
    "paired_bootstrap",
    "paired_comparison",
    "read_results",
    "record_kind",
    "results_figures",
    "results_markdown",
    "results_table",
    "run_eval",
    "save_results",
    "selection_indices",
    "settings_from_json",
    "sign_test",
    "split_target",
    "subset_names",
    "summary",
    "training_set",
]
