"""What the transformers classification tasks (text and token classification) share.

The uncompiled pipeline is the transformers pipeline over the downloaded model. The compiled pipeline of
an ONNX or TorchScript artifact is mlcompile.serving's (`ServedPipeline`): the artifact's tokenizer.json
through the `tokenizers` library, the runner's routing and batching and transformers' post-processing
ported to numpy, over the very executables the runner loaded; what is validated is what serves without
transformers (ONNX: without torch). Other backends (and an artifact without tokenizer.json) keep the
transformers pipeline class whose model is a `CompiledModel`: the model's config and call signature,
computed by the compiled buckets.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from .. import serving
from ..batching import BucketedRunner
from ..compilers import logger_at
from . import CompiledPipeline, Pipeline, TaskFamily, load_tokenizer, model_max_length, uncompiled_text_info

MODEL_DIR = "model"


class LogitsModule(torch.nn.Module):
    """The classification model as one `(input_ids, attention_mask) -> logits` function."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


class CompiledModel(torch.nn.Module):
    """Stands in for the transformers model inside a transformers pipeline: its config, device and
    `model(input_ids=..., attention_mask=...)` call, answered by the compiled buckets. A padded
    batch from the pipeline is unpadded row by row and re-batched by the runner."""

    device = torch.device("cpu")
    dtype = torch.float32

    def __init__(self, config, runner: BucketedRunner):
        super().__init__()
        self.config = config
        self.runner = runner

    def can_generate(self) -> bool:
        return False

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_unused) -> dict:
        from transformers.modeling_outputs import ModelOutput

        rows = [ids[mask.bool()].tolist() for ids, mask in zip(input_ids, attention_mask)]
        outputs, _ = self.runner.run_ids(rows)
        if self.runner.token_level:  # back to the pipeline's padded (batch, length, labels)
            logits = torch.zeros((*input_ids.shape, outputs[0].shape[-1]), dtype=outputs[0].dtype)
            for row, out in enumerate(outputs):
                logits[row, : out.shape[0]] = out
        else:
            logits = torch.stack(outputs)
        return ModelOutput(logits=logits)


# The uncompiled pipeline run as a user serves it: texts length-sorted, in batches of this many.
UNCOMPILED_BATCH = 8


class TransformersPipeline(Pipeline):
    def __init__(self, task: "ClassificationTask", hf_pipeline, text_info, batch_size: int | None = UNCOMPILED_BATCH):
        self.task = task
        self.hf_pipeline = hf_pipeline
        self.text_info = text_info  # texts -> [{"tokens", "bucket", "truncated"}]
        self.batch_size = batch_size  # None: every text in one call (the compiled model batches them itself)

    def predict_many(self, texts: list[str], params: dict) -> list[dict[str, Any]]:
        texts = list(texts)
        infos = self.text_info(texts)
        order = sorted(range(len(texts)), key=lambda i: infos[i]["tokens"])  # neighbours pad little
        raw = self.hf_pipeline([texts[i] for i in order], batch_size=self.batch_size or max(1, len(texts)),
                               **self.task.call_kwargs(params))
        outputs: list = [None] * len(texts)
        for i, output in zip(order, raw):
            outputs[i] = output
        return [
            {**self.task.convert(text, output, self.hf_pipeline.model.config), "text_info": info}
            for text, output, info in zip(texts, outputs, infos)
        ]


class CompiledTransformersPipeline(TransformersPipeline, CompiledPipeline):
    def __init__(self, task: "ClassificationTask", hf_pipeline, runner: BucketedRunner):
        super().__init__(task, hf_pipeline, lambda texts: [info.as_dict() for info in runner.describe(texts)],
                         batch_size=None)
        self.runner = runner


class ServedPipeline(CompiledPipeline):
    """The compiled pipeline whose predictions come from mlcompile.serving; `runner` (a BucketedRunner over
    the same executables) stays for the probes below the task level (invariance, coverage, tokenization)."""

    def __init__(self, pipeline: "serving.ServingPipeline", runner: BucketedRunner):
        self.serving = pipeline
        self.runner = runner

    def predict_many(self, texts: list[str], params: dict) -> list[dict[str, Any]]:
        return self.serving.predict_many(list(texts), params)


def _numpy_executable(module):
    """A runner's executable `(torch ids, torch mask) -> torch tensor` as serving's numpy one (ONNX: no copies,
    the executable hands the same arrays to its session)."""

    def run(input_ids, attention_mask):
        with torch.inference_mode():
            return module(torch.from_numpy(input_ids), torch.from_numpy(attention_mask)).numpy()

    return run


def served(task: str, runner: BucketedRunner, model_dir: Path) -> tuple["serving.ServingPipeline | None", str | None]:
    """mlcompile.serving's pipeline over the runner's executables, or None and why it does not serve them."""
    if runner.backend not in serving.BACKENDS:
        return None, f"{runner.backend} executables: mlcompile.serving runs {', '.join(serving.BACKENDS)} artifacts"
    try:
        pipeline = serving.build(task, model_dir / "tokenizer", model_dir / "config",
                                 {length: _numpy_executable(m) for length, m in runner.modules.items()},
                                 runner.batch_size, runner.dynamic,
                                 {length: _numpy_executable(m) for length, m in runner.single.items()},
                                 runner.batch_tokens)
    except serving.ServingUnsupported as exc:
        return None, str(exc)
    if pipeline.runner.lengths != runner.lengths:
        return None, f"serving's compiled lengths {pipeline.runner.lengths} are not the runner's {runner.lengths}"
    return pipeline, None


class ClassificationTask(TaskFamily):
    """A transformers `AutoModelFor...` classifier behind a transformers pipeline."""

    auto_model: str  # e.g. "AutoModelForTokenClassification"

    # --- what each classification task defines
    def pipeline_class(self):
        raise NotImplementedError

    def call_kwargs(self, params: dict) -> dict:
        """Keyword arguments of the pipeline call for these inference params."""
        raise NotImplementedError

    def convert(self, text: str, output, config) -> dict:
        """The pipeline's output for one text as this task's prediction."""
        raise NotImplementedError

    # --- shared
    def tokenizer_dir(self, model_dir: Path) -> Path:
        return model_dir / MODEL_DIR

    def load_model(self, model_dir: Path):
        import transformers

        auto = getattr(transformers, self.auto_model)
        return auto.from_pretrained(str(model_dir / MODEL_DIR), local_files_only=True).eval()

    def traceable(self, model_dir: Path) -> torch.nn.Module:
        return LogitsModule(self.load_model(model_dir)).eval()

    def max_length(self, model_dir: Path) -> int:
        return model_max_length(model_dir / MODEL_DIR)

    def uncompiled(self, model_dir: Path, card: dict) -> TransformersPipeline:
        tokenizer = self.uncompiled_tokenizer(model_dir)
        tokenizer.model_max_length = self.max_length(model_dir)  # no more than the model can embed
        hf_pipeline = self.pipeline_class()(model=self.load_model(model_dir), tokenizer=tokenizer, device="cpu")

        def text_info(texts: list[str]) -> list[dict]:
            counts = [len(ids) for ids in tokenizer(texts, verbose=False)["input_ids"]]
            return [uncompiled_text_info(n, tokenizer.model_max_length) for n in counts]

        return TransformersPipeline(self, hf_pipeline, text_info)

    def compiled(self, runner: BucketedRunner, model_dir: Path, card: dict) -> CompiledPipeline:
        """mlcompile.serving's pipeline for ONNX or TorchScript executables; otherwise (another backend, or no tokenizer.json
        in the artifact) the transformers pipeline over a CompiledModel, which says why (`serving_fallback`)."""
        pipeline, reason = served(self.name, runner, model_dir)
        if pipeline is not None:
            return ServedPipeline(pipeline, runner)
        if runner.backend in serving.BACKENDS:
            logging.getLogger(__name__).warning("the compiled %s model runs in the transformers pipeline, not "
                                                "mlcompile.serving: %s", runner.backend, reason)
        fallback = self.transformers_compiled(runner, model_dir, card)
        fallback.serving_fallback = reason
        return fallback

    def transformers_compiled(self, runner: BucketedRunner, model_dir: Path, card: dict) -> CompiledTransformersPipeline:
        """The transformers pipeline class whose model is a CompiledModel over the runner."""
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(str(model_dir / "config"), local_files_only=True)
        tokenizer = load_tokenizer(model_dir / "tokenizer")
        tokenizer.model_max_length = runner.max_length  # the pipeline truncates where the buckets end
        # the pipelines log an error for a model class they do not know (CompiledModel)
        with logger_at("transformers.pipelines.base", logging.CRITICAL):
            hf_pipeline = self.pipeline_class()(model=CompiledModel(config, runner), tokenizer=tokenizer, device="cpu")
        return CompiledTransformersPipeline(self, hf_pipeline, runner)
