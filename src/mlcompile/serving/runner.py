"""Running compiled executables in numpy: token id rows sorted by length, batched with their neighbours,
each batch routed to the smallest compiled length that fits (a dynamic-shape model: padded to its longest
row, batches bounded by `batch_tokens`), padded, and the per-row outputs returned in the caller's order.
`Batching` (the plan) is also batching.BucketedRunner's, so serving and validation send the same
executables the same batches."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

Executable = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (input_ids, attention_mask) int64 -> output
# Rows per batch of a dynamic-shape model at most, however short they are (measured on all-MiniLM-L6-v2,
# 2 threads: 1,195 candidate words in batches of 8 took 1.00 s, of 64 0.62 s, of 200 0.70 s).
MAX_DYNAMIC_ROWS = 64


class Batching:
    """Which texts share a batch and which compiled length serves it: the one definition, for this runner
    and for batching.BucketedRunner (torch), so that serving and validation send the executables the same
    batches. `lengths`: the compiled lengths; a dynamic-shape model has one, its maximum."""

    def __init__(self, lengths: Sequence[int], batch_size: int, dynamic: bool = False,
                 batch_tokens: int | None = None):
        if not lengths:
            raise ValueError("no compiled buckets")
        if dynamic and len(lengths) != 1:
            raise ValueError("a dynamic-shape model is one module, keyed by its maximum length")
        self.lengths = sorted(lengths)
        self.batch_size = batch_size
        # A dynamic-shape model takes any (batch, length): batches are padded to their longest row only.
        self.dynamic = dynamic
        # A dynamic-shape model's batches by tokens (rows x padded length), not rows; None: batch_size rows.
        self.batch_tokens = batch_tokens if dynamic else None

    @property
    def max_length(self) -> int:
        return self.lengths[-1]

    def bucket_for(self, n_tokens: int) -> int:
        return next((length for length in self.lengths if length >= n_tokens), self.max_length)

    def text_info(self, tokens: int, bucket: int | None = None) -> dict:
        """What running does to a text of `tokens` tokens (special tokens included, before truncation): the
        compiled length that serves it (dynamic shapes: its padded length; `bucket` when forced), the tokens
        the model sees, whether it was cut."""
        own = min(tokens, self.max_length) if self.dynamic else self.bucket_for(tokens)
        return {"tokens": tokens, "bucket": bucket or own, "kept": min(tokens, self.max_length),
                "truncated": tokens > self.max_length}

    def _fits(self, members: list[int], length: int) -> bool:
        """Another row, padded to `length` like the batch, still fits the batch."""
        if self.batch_tokens is None:
            return len(members) < self.batch_size
        return len(members) < MAX_DYNAMIC_ROWS and (len(members) + 1) * length <= self.batch_tokens

    def batches(self, lengths: list[int], forced: int | None = None) -> list[tuple[int, list[int]]]:
        """Groups of row indices sorted by length (stable), each within one bucket and at most batch_size
        rows (a dynamic-shape model: batch_tokens tokens), with the length each is padded to. `forced`: every
        row that fits goes to that compiled length instead of the smallest that fits (a padding probe)."""
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        found: list[tuple[int, list[int]]] = []
        for i in order:
            fits = forced is not None and forced >= lengths[i]
            bucket = forced if fits else self.bucket_for(lengths[i])
            padded = forced if fits else lengths[i]
            if found and found[-1][0] == bucket and self._fits(found[-1][1], padded if self.dynamic else bucket):
                found[-1][1].append(i)
            else:
                found.append((bucket, [i]))
        if self.dynamic and forced is None:
            return [(max(lengths[i] for i in members), members) for _, members in found]
        return found


class Runner(Batching):
    def __init__(self, modules: dict[int, Executable], batch_size: int, token_level: bool, pad_id: int,
                 filler: list[int], dynamic: bool = False, single: dict[int, Executable] | None = None,
                 batch_tokens: int | None = None):
        super().__init__(list(modules), batch_size, dynamic, batch_tokens)
        self.modules = dict(sorted(modules.items()))
        self.token_level = token_level
        self.pad_id = pad_id
        self.filler = filler or [pad_id]  # a static batch's filler rows (batching.boundary_ids)
        self.single = dict(single or {})

    def _pad(self, rows: list[list[int]], length: int) -> tuple[np.ndarray, np.ndarray]:
        if not self.dynamic and not (len(rows) == 1 and length in self.single):
            rows = rows + [self.filler] * (self.batch_size - len(rows))  # static batch dimension
        ids = np.full((len(rows), length), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), length), dtype=np.int64)
        for r, row in enumerate(rows):
            ids[r, : len(row)] = row
            mask[r, : len(row)] = 1
        return ids, mask

    def _module(self, length: int, rows: int) -> Executable:
        if self.dynamic:
            return self.modules[self.max_length]
        if rows == 1 and length in self.single:
            return self.single[length]
        return self.modules[length]

    def run_ids(self, ids: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """Per-row outputs of token id rows (special tokens included, at most max_length long), in order:
        (length, labels) per row for a token-level model, (labels,) otherwise."""
        used = [len(row) for row in ids]
        if used and max(used) > self.max_length:
            raise ValueError(f"a row of {max(used)} tokens is longer than the largest bucket ({self.max_length})")
        outputs: list[np.ndarray | None] = [None] * len(ids)
        for length, members in self.batches(used):
            input_ids, attention_mask = self._pad([list(ids[i]) for i in members], length)
            result = np.asarray(self._module(length, len(members))(input_ids, attention_mask))
            for row, i in enumerate(members):
                outputs[i] = (result[row, : used[i]] if self.token_level else result[row]).copy()
        return outputs  # type: ignore[return-value]
