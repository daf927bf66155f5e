"""The serving pipelines: texts -> per-text predictions, exactly what mlcompile's compiled transformers
pipeline gives (tasks/classification.py), from the tokenizer, the runner and the post-processing of this
package alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import text_classification, token_classification
from .artifact import (TEXT_CLASSIFICATION, TOKEN_CLASSIFICATION, TOKENIZER_FILE, TORCHSCRIPT, LabelConfig,
                       ServingUnsupported, Spec)
from .runner import Executable, Runner
from .tokenizer import Encoded, TextTokenizer

# The token-classification task's default inference parameter (tasks/token_classification.py)
DEFAULT_AGGREGATION = token_classification.SIMPLE


class ServingPipeline:
    """`predict_many(texts, params)`: per text, the task output, the tensors mlcompile checks and
    `text_info` (tokens, bucket, kept, truncated)."""

    task: str
    token_level: bool

    def __init__(self, tokenizer: TextTokenizer, runner: Runner, config: LabelConfig):
        self.tokenizer = tokenizer
        self.runner = runner
        self.config = config

    def text_info(self, texts: Sequence[str]) -> list[dict]:
        return [self.runner.text_info(n) for n in self.tokenizer.counts(texts)] if texts else []

    def predict_many(self, texts: Sequence[str], params: dict | None = None) -> list[dict[str, Any]]:
        texts = list(texts)
        if not texts:
            return []
        params = params or {}
        encoded = self.tokenizer.encode(texts)
        # as the compiled pipeline: texts sorted by token count, then the runner's batches of them
        order = sorted(range(len(texts)), key=lambda i: encoded[i].tokens)
        outputs: list = [None] * len(texts)
        for i, output in zip(order, self.runner.run_ids([encoded[i].ids for i in order])):
            outputs[i] = output
        return [{**self.convert(text, enc, output, params), "text_info": self.runner.text_info(enc.tokens)}
                for text, enc, output in zip(texts, encoded, outputs)]

    def predict(self, text: str, params: dict | None = None) -> dict[str, Any]:
        return self.predict_many([text], params)[0]

    def convert(self, text: str, encoded: Encoded, output: np.ndarray, params: dict) -> dict:
        raise NotImplementedError


class TextClassificationPipeline(ServingPipeline):
    task = TEXT_CLASSIFICATION
    token_level = False

    def convert(self, text: str, encoded: Encoded, output: np.ndarray, params: dict) -> dict:
        scores = text_classification.postprocess(output, self.config)
        return text_classification.prediction(scores, self.config.labels, self.config.problem_type)


class TokenClassificationPipeline(ServingPipeline):
    task = TOKEN_CLASSIFICATION
    token_level = True

    def __init__(self, tokenizer: TextTokenizer, runner: Runner, config: LabelConfig):
        super().__init__(tokenizer, runner, config)
        self.grouper = token_classification.EntityGrouper(tokenizer, config)

    def convert(self, text: str, encoded: Encoded, output: np.ndarray, params: dict) -> dict:
        entities = self.grouper.postprocess(text, encoded.ids, output, encoded.offsets, encoded.special,
                                            params.get("aggregation_strategy", DEFAULT_AGGREGATION))
        return token_classification.prediction(text, entities, output)


PIPELINES = {TEXT_CLASSIFICATION: TextClassificationPipeline, TOKEN_CLASSIFICATION: TokenClassificationPipeline}


def build(task: str, tokenizer_dir: Path, config_dir: Path, modules: dict[int, Executable], batch_size: int,
          dynamic: bool, single: dict[int, Executable] | None = None, batch_tokens: int | None = None
          ) -> ServingPipeline:
    """The task's serving pipeline over executables already loaded, keyed by compiled length."""
    if task not in PIPELINES:
        raise ServingUnsupported(f"task {task!r}; serving runs {', '.join(PIPELINES)}")
    cls = PIPELINES[task]
    tokenizer = TextTokenizer(tokenizer_dir, max(modules))
    runner = Runner(modules, batch_size, cls.token_level, tokenizer.pad_token_id or 0, tokenizer.boundary_ids(),
                    dynamic=dynamic, single=single, batch_tokens=batch_tokens)
    return cls(tokenizer, runner, LabelConfig.read(config_dir))


def load(path: Path | str, threads: int | None = None,
         load_executable: Callable[[Path], Executable] | None = None) -> ServingPipeline:
    """The serving pipeline of a compiled artifact directory (`compiled.json`, its ONNX files or TorchScript
    file, `tokenizer/`, `config/`); `threads`: intra-op threads (None: the runtime's default). Raises
    ServingUnsupported, saying why, for an artifact this package does not serve."""
    root = Path(path)
    spec = Spec.read(root)
    spec.check(root)
    if not (root / spec.tokenizer / TOKENIZER_FILE).is_file():  # before loading any executable
        TextTokenizer(root / spec.tokenizer, 1)  # raises ServingUnsupported naming the missing file
    files: dict[str, object] = {}

    def executable(name: str, method: str | None) -> Executable:
        if load_executable is not None:
            return load_executable(root / name)
        if spec.backend == TORCHSCRIPT:
            from . import torchscript

            if name not in files:
                files[name] = torchscript.load_module(root / name, threads)
            return torchscript.executable(files[name], method)
        from .sessions import load_session

        if name not in files:
            files[name] = load_session(root / name, threads)
        return files[name]  # type: ignore[return-value]

    modules = {b.length: executable(b.file, b.method) for b in spec.buckets}
    single = {b.length: executable(b.single_file, b.single_method) for b in spec.buckets if b.single_file}
    return build(spec.task, root / spec.tokenizer, root / spec.config, modules, spec.batch_size, spec.dynamic_shapes,
                 single, spec.batch_tokens)
