"""Fine-tune a causal LM on a data set: PEFT LoRA by default, full fine-tuning as an option.

Records are rendered with the model's chat template and tokenized by `tokens.tokenize`; the loss
covers response tokens only (labels before `response_start` are -100). Training runs in Hugging Face
`Trainer` with fixed seeds (same settings and seed => same run), bf16 on CUDA when supported, and a
progress callback that reports steps, loss and ETA. Given a checkpoint folder, it saves the whole
training state there every few minutes and resumes from it, so an interrupted run continues where it
stopped and ends as the uninterrupted run would.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from . import atomic
from .data import Dataset, content_hash
from .models import LoadedModel
from .tokens import tokenize

FINETUNE_METHODS = ("lora", "full")

# Trainer itself reads a deprecated transformers property: a warning for every arm, nothing a user can act on.
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)


@dataclass(frozen=True)
class FinetuneSettings:
    method: str = "lora"  # "lora" or "full"
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    learning_rate: float | None = None  # default: 2e-4 for LoRA, 2e-5 for full fine-tuning
    batch_size: int = 4
    grad_accum: int = 1
    warmup_steps: float = 0.03  # a share of the steps when < 1 (the first step then has learning rate 0)
    weight_decay: float = 0.0
    max_length: int = 512  # tokens per training sample (longer ones are truncated)
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_targets: str = "all-linear"  # PEFT target_modules
    seed: int = 0

    def __post_init__(self):
        if self.method not in FINETUNE_METHODS:
            raise ValueError(f"unknown fine-tuning method {self.method!r}; choose from {', '.join(FINETUNE_METHODS)}")

    @property
    def lr(self) -> float:
        return self.learning_rate if self.learning_rate is not None else (2e-4 if self.method == "lora" else 2e-5)


@dataclass
class TrainProgress:
    step: int
    total_steps: int
    loss: float | None  # the latest logged training loss
    seconds: float  # since this process started (or resumed) training
    resumed_at: int = 0  # the checkpoint's step this process resumed from

    @property
    def eta_seconds(self) -> float:
        done = self.step - self.resumed_at
        return self.seconds / done * (self.total_steps - self.step) if done > 0 else float("nan")

    def describe(self) -> str:
        eta = self.eta_seconds
        eta_text = "?" if eta != eta else f"{int(eta // 3600)}:{int(eta % 3600 // 60):02d}:{int(eta % 60):02d}"
        loss = "?" if self.loss is None else f"{self.loss:.4f}"
        resumed = f" (resumed at {self.resumed_at})" if self.resumed_at else ""
        return f"step {self.step}/{self.total_steps}{resumed} · loss {loss} · ETA {eta_text}"


TrainCallback = Callable[[TrainProgress], None]


@dataclass
class Trained:
    network: torch.nn.Module  # the trained model (a PEFT model for LoRA), in eval mode
    examples: int  # records trained on
    dropped: int  # records left out: their response was truncated away
    final_loss: float | None  # the last logged training loss
    steps: int = 0  # optimiser steps taken
    precision: str = ""  # what the arithmetic ran in: "bf16 mixed" or the weights' dtype
    resumed_at: int = 0  # the checkpoint step training resumed from (0: from the start)
    # where each stretch of steps ran: [{"steps": [first, last], "device", "precision", "seconds"}], one
    # per process (a checkpoint from before this record: one stretch of unknown device and time)
    segments: list[dict] = field(default_factory=list)


def training_examples(dataset: Dataset, tokenizer, max_length: int) -> list[dict]:
    """input_ids and labels (-100 outside the response) per record; records whose response was
    truncated away are left out (they would train nothing)."""
    tokens = tokenize(dataset, tokenizer, max_length)
    examples = []
    for ids, start in zip(tokens.input_ids, tokens.response_start):
        if start < len(ids):
            examples.append({"input_ids": ids, "labels": [-100] * start + ids[start:]})
    return examples


def collate(pad_id: int):
    def pad(batch: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(b["input_ids"]) for b in batch)
        ids = torch.tensor([b["input_ids"] + [pad_id] * (width - len(b["input_ids"])) for b in batch])
        labels = torch.tensor([b["labels"] + [-100] * (width - len(b["labels"])) for b in batch])
        mask = torch.tensor([[1] * len(b["input_ids"]) + [0] * (width - len(b["input_ids"])) for b in batch])
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    return pad


def planned_steps(examples: int, settings: FinetuneSettings) -> int:
    """Optimiser steps `finetune` takes on `examples` training examples (as Trainer counts them: one
    epoch is ceil(batches / grad_accum) steps; `max_steps` > 0 wins)."""
    if settings.max_steps > 0:
        return settings.max_steps
    batches = math.ceil(examples / settings.batch_size)
    per_epoch = max(batches // settings.grad_accum + (batches % settings.grad_accum > 0), 1)
    return math.ceil(settings.epochs * per_epoch)


CHECKPOINT_KEY = "nait-checkpoint.json"  # what the checkpoints in a folder were trained on
SEGMENTS = "nait-segments.json"  # in each checkpoint: which device and precision trained which steps


def last_checkpoint(folder: Path) -> Path | None:
    """The latest complete `checkpoint-<step>` in `folder`: Trainer writes trainer_state.json last, so
    a checkpoint cut short by an interruption (without it) is passed over."""
    done = [c for c in folder.glob("checkpoint-*") if c.name[11:].isdigit() and (c / "trainer_state.json").is_file()]
    return max(done, key=lambda c: int(c.name[11:]), default=None)


def _checkpoint_key(settings: FinetuneSettings, model: LoadedModel, examples: list[dict]) -> dict:
    return {
        "settings": asdict(settings),
        "model": model.name,
        "weights": model.fingerprint,
        "examples": content_hash(json.dumps(e["input_ids"]) + json.dumps(e["labels"]) for e in examples),
    }


def _segments_before(resume: Path | None) -> list[dict]:
    """The stretches of training a checkpoint holds (a run may resume on another device); a checkpoint
    saved before they were recorded gives one stretch on an unrecorded device."""
    if resume is None:
        return []
    if (resume / SEGMENTS).is_file():
        return json.loads((resume / SEGMENTS).read_text(encoding="utf-8"))
    return [{"steps": [1, int(resume.name[11:])], "device": None, "precision": None, "seconds": None}]


def _open_checkpoints(folder: Path, key: dict) -> Path | None:
    """Prepare `folder` for checkpoints of the run `key` describes; the checkpoint to resume from, if any.
    Checkpoints of another run are refused, never resumed or overwritten."""
    saved = folder / CHECKPOINT_KEY
    if saved.is_file():
        if json.loads(saved.read_text(encoding="utf-8")) != key:
            raise ValueError(
                f"{folder} holds checkpoints of another training run (other settings, model or records); "
                "remove the folder to start this run afresh"
            )
    else:
        folder.mkdir(parents=True, exist_ok=True)
        atomic.write_text(saved, json.dumps(key, indent=1))
    return last_checkpoint(folder)


def finetune(
    model: LoadedModel,
    dataset: Dataset,
    settings: FinetuneSettings = FinetuneSettings(),
    progress: TrainCallback | None = None,
    checkpoints: Path | str | None = None,
    checkpoint_seconds: float = 600.0,
) -> Trained:
    """Train `model` (changed in place: load a fresh copy per run).

    With `checkpoints` (a folder), the training state (adapter or weights, optimiser, schedule, random
    generators, data position) is saved there every `checkpoint_seconds` of training, the previous one
    removed once the new one is complete, and a later call with the same model, records and settings
    resumes from the latest. The folder is left for the caller to remove when the result is safe."""
    from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments, set_seed

    set_seed(settings.seed)
    examples = training_examples(dataset, model.tokenizer, settings.max_length)
    if not examples:
        raise ValueError(f"nothing to train on: no record of {dataset.name!r} keeps a response token")
    resume = _open_checkpoints(Path(checkpoints), _checkpoint_key(settings, model, examples)) if checkpoints else None
    resumed_at = int(resume.name[11:]) if resume else 0
    network = model.model
    if settings.method == "lora":
        from peft import LoraConfig, get_peft_model

        network = get_peft_model(
            network,
            LoraConfig(
                r=settings.lora_r,
                lora_alpha=settings.lora_alpha,
                lora_dropout=settings.lora_dropout,
                target_modules=settings.lora_targets,
                task_type="CAUSAL_LM",
            ),
        )
    else:
        network.requires_grad_(True)
    cuda = model.device.type == "cuda"
    bf16 = cuda and torch.cuda.is_bf16_supported()
    precision = "bf16 mixed" if bf16 else str(next(network.parameters()).dtype).removeprefix("torch.")
    earlier = _segments_before(resume)
    started = time.perf_counter()

    def segments_to(step: int) -> list[dict]:
        """Where training ran up to `step`: the checkpoint's stretches, then this process's."""
        this = {"steps": [resumed_at + 1, step], "device": str(model.device), "precision": precision}
        return earlier + [{**this, "seconds": round(time.perf_counter() - started, 1)}]

    class Report(TrainerCallback):
        loss = None

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self.loss = float(logs["loss"])
                if progress:
                    progress(
                        TrainProgress(
                            state.global_step,
                            state.max_steps,
                            self.loss,
                            time.perf_counter() - started,
                            resumed_at,
                        )
                    )

    class SaveOnTime(TrainerCallback):
        """Ask Trainer for a checkpoint every `checkpoint_seconds` (not at the last step: the caller
        keeps the result), and keep only the newest complete one."""

        last = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if time.perf_counter() - self.last >= checkpoint_seconds and state.global_step < state.max_steps:
                control.should_save = True

        def on_save(self, args, state, control, **kwargs):
            self.last = time.perf_counter()
            saved = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            atomic.write_text(saved / SEGMENTS, json.dumps(segments_to(state.global_step)))
            newest = last_checkpoint(Path(args.output_dir))
            for old in Path(args.output_dir).glob("checkpoint-*"):
                if old != newest:
                    shutil.rmtree(old, ignore_errors=True)

    report = Report()
    with tempfile.TemporaryDirectory(prefix="nait-finetune-") as scratch:
        args = TrainingArguments(
            output_dir=str(checkpoints) if checkpoints else scratch,
            per_device_train_batch_size=settings.batch_size,
            gradient_accumulation_steps=settings.grad_accum,
            num_train_epochs=settings.epochs,
            max_steps=settings.max_steps,
            learning_rate=settings.lr,
            warmup_steps=settings.warmup_steps,
            weight_decay=settings.weight_decay,
            lr_scheduler_type="linear",
            seed=settings.seed,
            data_seed=settings.seed,
            bf16=bf16,
            use_cpu=not cuda,
            logging_steps=1,
            save_strategy="no",  # checkpoints come from SaveOnTime only
            report_to="none",
            disable_tqdm=True,
            remove_unused_columns=False,
            dataloader_num_workers=0,
        )
        trainer = Trainer(
            model=network,
            args=args,
            train_dataset=examples,
            data_collator=collate(model.tokenizer.pad_token_id),
            callbacks=[report] + ([SaveOnTime()] if checkpoints else []),
        )
        trainer.remove_callback(PrinterCallback)  # progress goes through our callback only
        output = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    return Trained(
        network.eval(),
        len(examples),
        len(dataset) - len(examples),
        report.loss,
        int(output.global_step),
        precision,
        resumed_at,
        segments_to(int(output.global_step)),
    )
