"""mlcompile.batching.BucketedRunner in numpy: token id rows sorted by length, batched with their
neighbours, each batch routed to the smallest compiled length that fits (a dynamic-shape model: padded to
its longest row, batches bounded by `batch_tokens`), padded, and the per-row outputs returned in the
caller's order. The same routing and batching, so the same executables see the same batches."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

Executable = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (input_ids, attention_mask) int64 -> output
# Rows per batch of a dynamic-shape model at most (batching.MAX_DYNAMIC_ROWS)
MAX_DYNAMIC_ROWS = 64


class Runner:
    def __init__(self, modules: dict[int, Executable], batch_size: int, token_level: bool, pad_id: int,
                 filler: list[int], dynamic: bool = False, single: dict[int, Executable] | None = None,
                 batch_tokens: int | None = None):
        if not modules:
            raise ValueError("no compiled buckets")
        if dynamic and len(modules) != 1:
            raise ValueError("a dynamic-shape model is one module, keyed by its maximum length")
        self.modules = dict(sorted(modules.items()))
        self.lengths = list(self.modules)
        self.batch_size = batch_size
        self.token_level = token_level
        self.pad_id = pad_id
        self.filler = filler or [pad_id]  # a static batch's filler rows (batching.boundary_ids)
        self.dynamic = dynamic
        self.single = dict(single or {})
        self.batch_tokens = batch_tokens if dynamic else None

    @property
    def max_length(self) -> int:
        return self.lengths[-1]

    def bucket_for(self, n_tokens: int) -> int:
        return next((length for length in self.lengths if length >= n_tokens), self.max_length)

    def text_info(self, tokens: int) -> dict:
        """batching.TextInfo of a text of `tokens` tokens (special tokens included, before truncation)."""
        bucket = min(tokens, self.max_length) if self.dynamic else self.bucket_for(tokens)
        kept = min(tokens, self.max_length)
        return {"tokens": tokens, "bucket": bucket, "kept": kept, "truncated": tokens > self.max_length}

    def _fits(self, members: list[int], length: int) -> bool:
        if self.batch_tokens is None:
            return len(members) < self.batch_size
        return len(members) < MAX_DYNAMIC_ROWS and (len(members) + 1) * length <= self.batch_tokens

    def batches(self, lengths: list[int]) -> list[tuple[int, list[int]]]:
        """Groups of row indices sorted by length (stable), each within one bucket and batch limit."""
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        found: list[tuple[int, list[int]]] = []
        for i in order:
            bucket = self.bucket_for(lengths[i])
            if found and found[-1][0] == bucket and self._fits(found[-1][1], lengths[i] if self.dynamic else bucket):
                found[-1][1].append(i)
            else:
                found.append((bucket, [i]))
        if self.dynamic:
            return [(max(lengths[i] for i in members), members) for _, members in found]
        return found

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
