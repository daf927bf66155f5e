"""Run a static-shape compiled model on texts of any length and number.

Compiled modules take `(input_ids, attention_mask)` of one fixed shape `(batch_size, length)`;
a model is compiled for a few lengths (buckets). The runner tokenizes, sorts texts by token
length, batches neighbours, routes each batch to the smallest bucket that fits, pads rows and
the batch, and returns per-text outputs in the caller's order with what it did to each text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from .serving.runner import Batching

CompiledFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class TextInfo:
    tokens: int  # token count with special tokens, before any truncation
    bucket: int  # compiled length that served the text (dynamic shapes: the padded length)
    kept: int  # tokens the model saw: all of them, or the largest compiled length
    truncated: bool

    def as_dict(self) -> dict:
        return {"tokens": self.tokens, "bucket": self.bucket, "kept": self.kept, "truncated": self.truncated}


class BucketedRunner(Batching):
    """The compiled modules (torch tensors in and out) over texts; which texts share a batch and which
    length serves it is `Batching`'s, the same plan mlcompile.serving runs."""

    def __init__(self, tokenizer, modules: dict[int, CompiledFn], batch_size: int, token_level: bool = False,
                 dynamic: bool = False, single: dict[int, CompiledFn] | None = None, batch_tokens: int | None = None,
                 backend: str | None = None):
        super().__init__(list(modules), batch_size, dynamic, batch_tokens)
        self.backend = backend  # the backend that compiled the modules (None: not a compiled artifact's)
        self.tokenizer = tokenizer
        self.modules = dict(sorted(modules.items()))
        self.token_level = token_level  # outputs per token (B, L, ...) rather than per text (B, ...)
        # Static modules compiled for batch 1, per length: a lone text needs no filler rows.
        self.single = dict(single or {})

    def encode(self, texts: Sequence[str]) -> tuple[list[list[int]], list[int]]:
        """Token ids truncated to the largest bucket, and the untruncated token counts."""
        full = self.tokenizer(list(texts), truncation=False, verbose=False)["input_ids"]
        counts = [len(ids) for ids in full]
        long = [i for i, n in enumerate(counts) if n > self.max_length]
        if long:
            cut = self.tokenizer(
                [texts[i] for i in long], truncation=True, max_length=self.max_length, verbose=False
            )["input_ids"]
            for i, ids in zip(long, cut):
                full[i] = ids
        return full, counts

    def _pad(self, rows: list[list[int]], length: int) -> tuple[torch.Tensor, torch.Tensor]:
        pad_id = self.tokenizer.pad_token_id or 0
        filler = boundary_ids(self.tokenizer) or [pad_id]
        if not self.dynamic and not (len(rows) == 1 and length in self.single):
            rows = rows + [filler] * (self.batch_size - len(rows))  # static batch dimension
        ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for r, row in enumerate(rows):
            ids[r, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[r, : len(row)] = 1
        return ids, mask

    def describe(self, texts: Sequence[str]) -> list[TextInfo]:
        """What `run` does to each text: its token count, the bucket that serves it, truncation."""
        _, counts = self.encode(texts) if texts else ([], [])
        return [self._info(n) for n in counts]

    def _info(self, tokens: int, bucket: int | None = None) -> TextInfo:
        return TextInfo(**self.text_info(tokens, bucket))

    @torch.inference_mode()
    def run(self, texts: Sequence[str], bucket: int | None = None) -> tuple[list[torch.Tensor], list[TextInfo]]:
        """Per-text outputs in the caller's order. `bucket` forces every text into that compiled
        length (when it fits) instead of the smallest that fits: a padding-invariance probe."""
        if not texts:
            return [], []
        ids, counts = self.encode(texts)
        outputs, buckets = self.run_ids(ids, bucket)
        return outputs, [self._info(n, b) for n, b in zip(counts, buckets)]

    @property
    def executables(self) -> list[tuple[int, int | None]]:
        """The compiled modules as (length, batch): static buckets at batch_size and, where
        compiled, at batch 1; a dynamic-shape model as (max_length, None)."""
        if self.dynamic:
            return [(self.max_length, None)]
        found = [(length, self.batch_size) for length in self.lengths]
        return found + [(length, 1) for length in self.single if (length, 1) not in found]

    def _module(self, length: int, rows: int) -> tuple[tuple[int, int | None], CompiledFn]:
        """The executable that serves `rows` rows at `length`, and its (length, batch) key."""
        if self.dynamic:
            return (self.max_length, None), self.modules[self.max_length]
        if rows == 1 and length in self.single:
            return (length, 1), self.single[length]
        return (length, self.batch_size), self.modules[length]

    @torch.inference_mode()
    def run_ids(self, ids: Sequence[Sequence[int]], bucket: int | None = None,
                trace: list | None = None) -> tuple[list[torch.Tensor], list[int]]:
        """Run token id rows (special tokens included, at most max_length long); returns the
        per-row outputs and the bucket that served each row. `trace`, if given, receives per
        module call the executable's (length, batch) key, the input shape and the row indices."""
        if bucket is not None and (bucket > self.max_length if self.dynamic else bucket not in self.modules):
            raise ValueError(f"no compiled bucket of length {bucket}; compiled: {self.lengths}")
        used = [len(row) for row in ids]
        if used and max(used) > self.max_length:
            raise ValueError(f"a row of {max(used)} tokens is longer than the largest bucket ({self.max_length})")
        outputs: list[torch.Tensor | None] = [None] * len(ids)
        served = [0] * len(ids)
        for length, members in self.batches(used, bucket):
            input_ids, attention_mask = self._pad([list(ids[i]) for i in members], length)
            key, module = self._module(length, len(members))
            result = module(input_ids, attention_mask)
            if trace is not None:
                trace.append((key, tuple(input_ids.shape), list(members)))
            for row, i in enumerate(members):
                out = result[row, : used[i]] if self.token_level else result[row]
                outputs[i] = out.detach().clone()
                served[i] = length
        return outputs, served  # type: ignore[return-value]


def boundary_ids(tokenizer) -> list[int]:
    """The ids a tokenizer puts around a text: CLS and SEP (BERT), or BOS and EOS (<s>, </s>)."""
    first = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    last = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    return [t for t in (first, last) if t is not None]


def example_inputs(tokenizer, batch_size: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Trace inputs of shape (batch_size, length) with real tokens and padding in every row,
    so no 'mask is all ones' shortcut is baked into a traced graph."""
    if length < 3:
        raise ValueError(f"sequence length {length} is too short; compile lengths of at least 3 tokens")
    special = set(tokenizer.all_special_ids)
    words = [i for i in range(len(tokenizer)) if i not in special]  # a small vocabulary too (tiny models)
    start = min(1000, len(words) // 2)
    vocab_ids = [words[start + i % (len(words) - start)] for i in range(length)]
    ids = torch.full((batch_size, length), tokenizer.pad_token_id or 0, dtype=torch.long)
    mask = torch.zeros((batch_size, length), dtype=torch.long)
    bounds = boundary_ids(tokenizer)
    for row in range(batch_size):
        n = max(2, length - 1 - row % max(1, length - 2))
        tokens = bounds[:1] + vocab_ids[: n - len(bounds)] + bounds[1:]
        ids[row, :n] = torch.tensor(tokens, dtype=torch.long)
        mask[row, :n] = 1
    return ids, mask


def truncation_note(case: str, compiled: dict | None, uncompiled: dict | None) -> str | None:
    """Which pipeline cut the case's text, and where; None when neither did."""
    if not compiled or not (compiled.get("truncated") or (uncompiled or {}).get("truncated")):
        return None
    tokens = compiled["tokens"]
    ours = (f"the compiled pipeline kept the first {compiled['kept']} (its largest compiled length)"
            if compiled["truncated"] else "the compiled pipeline kept all of them")
    if uncompiled is None:
        return f"case {case}: {tokens} tokens; {ours}"
    theirs = (f"the uncompiled pipeline the first {uncompiled['kept']} (the model's maximum)"
              if uncompiled["truncated"] else "the uncompiled pipeline all of them")
    note = f"case {case}: {tokens} tokens; {ours}, {theirs}"
    if compiled["kept"] != uncompiled["kept"]:
        note += ("; the two models saw different text, so their outputs may differ: make the largest of "
                 f"SEQUENCE_LENGTHS {uncompiled['kept'] if uncompiled['truncated'] else 'the model maximum'} "
                 "to match the uncompiled pipeline")
    return note
