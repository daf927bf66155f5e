"""The compiled lengths: SEQUENCE_LENGTHS checked against the downloaded model before compiling, or,
unset, chosen from the model's maximum length."""

from __future__ import annotations

from pathlib import Path

from .settings import Settings, invalid
from .tasks import TaskFamily

DEFAULT_LENGTHS = (32, 128)  # sentences, short paragraphs; the model's maximum serves the rest


def token_limits(task: TaskFamily, model_dir: Path) -> tuple[int, int]:
    """The fewest tokens any text takes (special tokens and one word) and the most the uncompiled
    pipeline keeps."""
    tokenizer = task.uncompiled_tokenizer(model_dir)
    return tokenizer.num_special_tokens_to_add(pair=False) + 1, task.max_length(model_dir)


def compiled_lengths(settings: Settings, task: TaskFamily, model_dir: Path) -> list[int]:
    """SEQUENCE_LENGTHS, or 32, 128 and the model's maximum (those below it); ConfigError naming every
    length the model cannot use."""
    shortest, longest = token_limits(task, model_dir)
    if settings.sequence_lengths is None:
        return sorted({length for length in DEFAULT_LENGTHS if shortest <= length < longest} | {longest})
    problems = []
    short = [n for n in settings.sequence_lengths if n < shortest]
    if short:
        problems.append(f"{', '.join(map(str, short))} cannot hold a word: this model's tokenizer needs "
                        f"{shortest} tokens for its special tokens and one word; use lengths of at least {shortest}")
    long = [n for n in settings.sequence_lengths if n > longest]
    if long:
        problems.append(f"{', '.join(map(str, long))} exceeds the {longest} tokens the uncompiled pipeline keeps "
                        f"of a text (the model's maximum); use lengths of at most {longest}")
    if problems:
        raise invalid({"SEQUENCE_LENGTHS": problems})
    return settings.sequence_lengths
