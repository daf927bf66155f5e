"""Serving a compiled ONNX or TorchScript text- or token-classification artifact with the standard library,
numpy, `tokenizers` and the backend's runtime only (`onnxruntime`; torch for TorchScript): no transformers,
pydantic or other mlcompile module, so the package can be shipped on its own (e.g. inside a registered
MLflow model's code).

    from mlcompile.serving import load
    pipeline = load("outputs/compile", threads=2)
    pipeline.predict_many(["Anna Müller works for SAP."], {"aggregation_strategy": "simple"})

gives per text exactly what mlcompile's compiled pipeline gives (`compiled.load(...).predict_many`):
the same tokenization (the artifact's tokenizer.json), the same routing and batching into the compiled
executables (batching.BucketedRunner), and transformers' pipelines' post-processing, in numpy.
"""

from .artifact import BACKENDS, ServingUnsupported, Spec
from .pipeline import ServingPipeline, TextClassificationPipeline, TokenClassificationPipeline, build, load

__all__ = ["BACKENDS", "ServingPipeline", "ServingUnsupported", "Spec", "TextClassificationPipeline",
           "TokenClassificationPipeline", "build", "load"]
