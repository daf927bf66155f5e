"""The artifact's non-executable parts compared entry by entry, texts tokenized by both tokenizers, and the
machine a reduced-precision artifact was validated on against the one that loads it."""

from __future__ import annotations

import pytest

from mlcompile.components import differences, tokenization
from mlcompile.machine import mismatch

pytestmark = pytest.mark.unit


def test_differences_name_the_first_entries_that_differ_with_both_values():
    ours = {"vocab": {"a": 1, "b": 2, "c": 3}, "merges": ["x y", "y z"], "lowercase": True}
    theirs = {"vocab": {"a": 1, "b": 3, "c": 2}, "merges": ["x y"], "extra": 1, "lowercase": True}
    assert differences(ours, theirs) == [
        "extra: missing in the compiled artifact, 1 uncompiled",
        "merges: 2 entries in the compiled artifact, 1 uncompiled",
        "vocab['b']: 2 in the compiled artifact, 3 uncompiled",
        "vocab['c']: 3 in the compiled artifact, 2 uncompiled"]
    assert len(differences({str(i): i for i in range(50)}, {str(i): -i - 1 for i in range(50)})) == 5
    assert differences(ours, ours) == []


class Words:
    """A whitespace tokenizer over a fixed vocabulary (ids), the transformers call shape."""

    def __init__(self, vocab: dict[str, int]):
        self.vocab = vocab
        self.names = {i: w for w, i in vocab.items()}

    def __call__(self, texts, truncation=False, verbose=False):
        return {"input_ids": [[self.vocab.get(w, 0) for w in text.split()] for text in texts]}

    def convert_ids_to_tokens(self, ids):
        return [self.names.get(i, "?") for i in ids]


def test_tokenization_names_the_texts_that_tokenize_differently_and_where():
    same = Words({"the": 1, "bedroom": 2, "shooting": 3})
    swapped = Words({"the": 1, "bedroom": 3, "shooting": 2})
    rows = [(f"row-{i}", "the bedroom" if i == 700 else "the the") for i in range(1000)]
    assert tokenization(same, same, rows).passed
    result = tokenization(swapped, same, rows)
    assert not result.passed and result.details == {"texts": 1000, "differing": 1}
    assert result.message.startswith("1 of 1000 texts tokenize differently: row-700 at token 1: ['bedroom'] compiled,")


def test_a_reduced_precision_artifact_is_unproven_on_a_cpu_without_a_flag_its_validation_had():
    validated = {"model": "EPYC", "flags": ["avx2", "avx512_vnni"]}
    without = {"model": "Xeon", "flags": ["avx2"]}
    assert mismatch(validated, "fp32", without) is None  # fp32 numbers do not hinge on VNNI or AMX
    assert mismatch(validated, "int8", {"model": "X", "flags": ["avx2", "avx512_vnni", "amx_int8"]}) is None
    assert mismatch(None, "int8", without) is None  # nothing recorded (an older verdict): nothing to compare
    assert mismatch(validated, "int8", without) == (
        "this int8 artifact was validated on EPYC with avx2, avx512_vnni; this CPU (Xeon) lacks avx512_vnni, so its "
        "int8 numbers here were never validated (validate it on this machine)")
