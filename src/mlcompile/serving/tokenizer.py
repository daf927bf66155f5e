"""The artifact's tokenizer through the `tokenizers` library alone, as the transformers fast tokenizer
uses it in the compiled pipeline: special tokens added, no truncation to count a text's tokens, truncation
at the largest compiled length (`longest_first`, on the saved `truncation_side`) for what the model sees,
offsets and the special-tokens mask for token classification. Padding is the runner's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .artifact import SPECIAL_TOKENS_MAP, TOKENIZER_CONFIG, TOKENIZER_FILE, ServingUnsupported, read_json

SPECIAL_NAMES = ("pad_token", "unk_token", "cls_token", "sep_token", "bos_token", "eos_token")


@dataclass
class Encoded:
    """One text: the ids the model sees (truncated to the largest compiled length), their character
    offsets and special-tokens mask, and the token count before truncation."""

    ids: list[int]
    offsets: list[tuple[int, int]]
    special: list[int]
    tokens: int


def _content(token) -> str | None:
    """A special token as tokenizer_config.json saves it: a string, or a dict with its content."""
    if isinstance(token, dict):
        return token.get("content")
    return token if isinstance(token, str) else None


class TextTokenizer:
    def __init__(self, directory: Path, max_length: int):
        from tokenizers import Tokenizer

        directory = Path(directory)
        file = directory / TOKENIZER_FILE
        if not file.is_file():
            raise ServingUnsupported(f"{directory} has no {TOKENIZER_FILE} (a slow, Python-only tokenizer was "
                                     f"saved): serving tokenizes with the `tokenizers` library only")
        config = read_json(directory / TOKENIZER_CONFIG) if (directory / TOKENIZER_CONFIG).is_file() else {}
        special_map = read_json(directory / SPECIAL_TOKENS_MAP) if (directory / SPECIAL_TOKENS_MAP).is_file() else {}
        self.max_length = max_length
        # Two tokenizers, never reconfigured after this: one counts tokens, one cuts at max_length.
        self.full = Tokenizer.from_file(str(file))
        self.full.no_truncation()
        self.full.no_padding()
        self.cut = Tokenizer.from_file(str(file))
        self.cut.no_padding()
        self.cut.enable_truncation(max_length, stride=0, strategy="longest_first",
                                   direction=config.get("truncation_side", "right"))
        self.special_ids: dict[str, int | None] = {}
        for name in SPECIAL_NAMES:
            token = _content(config.get(name)) or _content(special_map.get(name))
            self.special_ids[name] = self.full.token_to_id(token) if token is not None else None

    # --- what transformers' tokenizer attributes give
    @property
    def pad_token_id(self) -> int | None:
        return self.special_ids["pad_token"]

    @property
    def unk_token_id(self) -> int | None:
        return self.special_ids["unk_token"]

    def boundary_ids(self) -> list[int]:
        """The ids around a text: CLS and SEP (BERT), or BOS and EOS (batching.boundary_ids)."""
        ids = self.special_ids
        first = ids["cls_token"] if ids["cls_token"] is not None else ids["bos_token"]
        last = ids["sep_token"] if ids["sep_token"] is not None else ids["eos_token"]
        return [t for t in (first, last) if t is not None]

    @property
    def model(self):
        return self.full.model

    def id_to_token(self, token_id: int) -> str:
        return self.full.id_to_token(int(token_id))

    def tokens_to_string(self, tokens: list[str]) -> str:
        """transformers' fast `convert_tokens_to_string`: the decoder's, else the tokens joined by spaces."""
        decoder = self.full.decoder
        return decoder.decode(tokens) if decoder is not None else " ".join(tokens)

    # --- encoding
    def counts(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self.full.encode_batch(list(texts), add_special_tokens=True)]

    def encode(self, texts: Sequence[str]) -> list[Encoded]:
        """Each text's ids as the model sees them (cut at max_length) and its untruncated token count."""
        texts = list(texts)
        full = self.full.encode_batch(texts, add_special_tokens=True)
        found = [Encoded(e.ids, e.offsets, e.special_tokens_mask, len(e.ids)) for e in full]
        long = [i for i, e in enumerate(found) if e.tokens > self.max_length]
        if long:
            for i, e in zip(long, self.cut.encode_batch([texts[i] for i in long], add_special_tokens=True)):
                found[i] = Encoded(e.ids, e.offsets, e.special_tokens_mask, found[i].tokens)
        return found
