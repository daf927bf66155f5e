"""Tiny, seeded, random-weight encoder models of many architectures, built offline in well under a second.

`build(architecture, task, dest, seed)` writes what `save_pretrained` writes (config, weights and tokenizer)
into `dest`, or for the task "sentence-embeddings" a sentence-transformers directory (Transformer, mean
Pooling, Normalize), and returns `dest`. Nothing is downloaded: each architecture's tokenizer is trained on
`data/tokenizer-corpus.txt` (the prose of config/regression and config/bench, and a few German, Spanish and
French lines) with the `tokenizers` library, and wrapped in the family's own transformers tokenizer class with
its special tokens in the family's order, so `tokenizer(text)` adds CLS/SEP (or <s>/</s>) as the real family
does, and offsets work (token-classification pipelines, aggregation_strategy="simple").

Sizes: hidden 32, 2 layers, 4 heads, intermediate 64, positions for 128 tokens, vocabulary of 1,500.
Same seed, same bytes: the weights come from `torch.manual_seed(seed)` (the caller's RNG state is restored)
and the tokenizers from a deterministic trainer (below). Classification heads are sharpened (`HEAD_STD`):
on the corpus, a sequence head's top two logits are 0.5 to 7 apart (a random head: ~0.02), so its labels do
not flip under the ~1e-5 numeric noise of a compiled copy. A random encoder's first token barely depends on the
text, so a sequence head gives most texts the same label; a token head's labels vary from token to token.

Why the tokenizers' own WordPiece and Unigram trainers are not used: in a fresh process they give a
different vocabulary each time (measured with tokenizers 0.23: tie-breaks follow a hash map's random order
and the Unigram EM's float sums its order). The BPE trainer is deterministic once its alphabet is given,
so every vocabulary here starts from it:
- byte-level BPE (RoBERTa, ModernBERT): the trained vocabulary and merges as they are;
- WordPiece (BERT, DistilBERT, ELECTRA, MPNet): BPE over the words with every character after a word's
  first moved to a private-use plane, so word-initial pieces and `##` continuations are learned apart, as
  WordPiece's trainer does, then moved back;
- Unigram (XLM-R, DeBERTa-v2, ALBERT): the BPE pieces, trained on the family's own normalization and Metaspace
  pre-tokenization, scored by the log frequency of each piece when BPE segments the corpus.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import tempfile
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

ARCHITECTURES = ("bert", "distilbert", "roberta", "xlm-roberta", "deberta-v2", "electra", "mpnet", "albert",
                 "modernbert")
TASKS = ("text-classification", "token-classification", "multi-label", "sentence-embeddings")

SEQUENCE_LABELS = ("NEGATIVE", "NEUTRAL", "POSITIVE")
TOKEN_LABELS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")
MULTI_LABELS = ("business", "politics", "science", "sports")

MAX_LENGTH = 128  # tokens, specials included: the tokenizer's model_max_length and the positions' reach
HIDDEN = 32
LAYERS = 2
HEADS = 4
INTERMEDIATE = 64
EMBEDDING = 16  # ALBERT and ELECTRA factorize their embeddings below the hidden size
VOCAB_SIZE = 1500
# Std of the classification heads' weights: 40x the 0.02 that BERT-style inits draw (see _sharpen_head)
HEAD_STD = 0.8

CORPUS = Path(__file__).parent / "data" / "tokenizer-corpus.txt"

_MARK = 0xF0000  # start of Unicode's supplementary private-use plane A


# ---------------------------------------------------------------------------------------------- tokenizers

def _lines() -> list[str]:
    return [line for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


def _bpe(words_or_lines, normalizer, pre_tokenizer, specials: list[str], alphabet: list[str]):
    """A BPE model trained deterministically: every character of the alphabet given, in code point order."""
    from tokenizers import Tokenizer, models, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=specials, initial_alphabet=alphabet,
                                  limit_alphabet=len(alphabet) + 1, show_progress=False)
    tokenizer.train_from_iterator(words_or_lines, trainer)
    model = json.loads(tokenizer.to_str())["model"]
    vocab = sorted(model["vocab"].items(), key=lambda item: item[1])
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return tokenizer, [token for token, _ in vocab], merges


def _pieces(normalizer, pre_tokenizer, line: str) -> list[str]:
    text = normalizer.normalize_str(line) if normalizer is not None else line
    return [piece for piece, _ in pre_tokenizer.pre_tokenize_str(text)]


def _alphabet(normalizer, pre_tokenizer, lines: list[str]) -> set[str]:
    """The characters of the pre-tokenized corpus, and of printable ASCII and Latin-1 as normalized: text
    outside the corpus meets few unknown tokens."""
    extra = "".join(map(chr, [*range(0x21, 0x7F), *range(0xA1, 0x100)]))
    return {c for line in [*lines, " ".join(extra)] for piece in _pieces(normalizer, pre_tokenizer, line)
            for c in piece}


@functools.lru_cache(maxsize=None)
def _wordpiece_vocab(lowercase: bool, specials: tuple[str, ...]) -> tuple[str, ...]:
    from tokenizers import normalizers, pre_tokenizers

    normalizer, pre = normalizers.BertNormalizer(lowercase=lowercase), pre_tokenizers.BertPreTokenizer()
    lines = _lines()
    words = Counter(word for line in lines for word in _pieces(normalizer, pre, line))
    chars = _alphabet(normalizer, pre, lines)
    # every character both word-initial and as a continuation
    alphabet = sorted(chars | {chr(_MARK + ord(c)) for c in chars})

    def mark(word: str) -> str:
        return word[0] + "".join(chr(_MARK + ord(c)) for c in word[1:])

    # the corpus as its words, each as often as it occurs: the trainer only counts them
    _, vocab, _ = _bpe((" ".join([mark(w)] * words[w]) for w in sorted(words)), None,
                       pre_tokenizers.WhitespaceSplit(), list(specials), alphabet)

    def unmark(token: str) -> str:
        if token in specials:
            return token
        plain = "".join(chr(ord(c) - _MARK) if ord(c) >= _MARK else c for c in token)
        return "##" + plain if ord(token[0]) >= _MARK else plain

    return tuple(unmark(token) for token in vocab)


@functools.lru_cache(maxsize=None)
def _byte_level_bpe(specials: tuple[str, ...]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    from tokenizers import pre_tokenizers

    pre = pre_tokenizers.ByteLevel(add_prefix_space=False)
    _, vocab, merges = _bpe(_lines(), None, pre, list(specials), sorted(pre_tokenizers.ByteLevel.alphabet()))
    return {token: i for i, token in enumerate(vocab)}, merges


def _unigram_vocab(tokenizer_class, specials: tuple[str, ...], **kwargs) -> list[tuple[str, float]]:
    """Pieces and log-probability scores for a Unigram model on `tokenizer_class`'s own normalization and
    Metaspace pre-tokenization (taken from an instance with its default, specials-only vocabulary)."""
    import numpy as np

    backend = tokenizer_class(**kwargs).backend_tokenizer
    normalizer, pre = backend.normalizer, backend.pre_tokenizer
    lines = _lines()
    trained, vocab, _ = _bpe(lines, normalizer, pre, list(specials), sorted(_alphabet(normalizer, pre, lines)))
    ids = [encoding.ids for encoding in trained.encode_batch(lines, add_special_tokens=False)]
    counts = np.bincount(np.concatenate(ids), minlength=len(vocab)).astype(np.float64)
    total = counts.sum() + len(vocab)
    return [(token, 0.0) if token in specials else (token, round(math.log((counts[i] + 1) / total), 6))
            for i, token in enumerate(vocab)]


def make_tokenizer(architecture: str, max_length: int = MAX_LENGTH):
    """The architecture's transformers tokenizer, trained on the shipped corpus (once per process: a copy)."""
    tokenizer = copy.deepcopy(_make_tokenizer(architecture))
    tokenizer.model_max_length = max_length
    return tokenizer


@functools.lru_cache(maxsize=None)
def _make_tokenizer(architecture: str):
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    common = {"model_max_length": MAX_LENGTH}  # make_tokenizer sets the one asked for
    if architecture in ("bert", "distilbert", "electra"):
        specials = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
        vocab = {token: i for i, token in enumerate(_wordpiece_vocab(True, specials))}
        cls = {"bert": transformers.BertTokenizer, "distilbert": transformers.DistilBertTokenizer,
               "electra": transformers.ElectraTokenizer}[architecture]
        return cls(vocab=vocab, do_lower_case=True, **common)
    if architecture == "mpnet":
        specials = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
        vocab = {token: i for i, token in enumerate(_wordpiece_vocab(True, specials))}
        return transformers.MPNetTokenizer(vocab=vocab, do_lower_case=True, unk_token="<unk>", **common)
    if architecture == "roberta":
        specials = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
        vocab, merges = _byte_level_bpe(specials)
        return transformers.RobertaTokenizer(vocab=dict(vocab), merges=list(merges), **common)
    if architecture == "modernbert":
        specials = ("[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]")
        vocab, merges = _byte_level_bpe(specials)
        backend = Tokenizer(models.BPE(vocab=dict(vocab), merges=list(merges)))
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        backend.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=True),
            processors.TemplateProcessing(single="[CLS]:0 $A:0 [SEP]:0", pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
                                          special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])])
        return transformers.PreTrainedTokenizerFast(
            tokenizer_object=backend, unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]",
            mask_token="[MASK]", model_input_names=["input_ids", "attention_mask"], **common)
    if architecture == "xlm-roberta":
        specials = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")  # the unk id is 3 in XLMRobertaTokenizer
        cls = transformers.XLMRobertaTokenizer
        return cls(vocab=_unigram_vocab(cls, specials), **common)
    if architecture == "deberta-v2":
        specials = ("[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]")  # DeBERTa-v3's order
        cls = transformers.DebertaV2Tokenizer
        return cls(vocab=_unigram_vocab(cls, specials), **common)
    if architecture == "albert":
        specials = ("<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]")  # the unk id is 1 in AlbertTokenizer
        cls = transformers.AlbertTokenizer
        return cls(vocab=_unigram_vocab(cls, specials), **common)
    raise ValueError(f"unknown architecture {architecture!r}; one of {', '.join(ARCHITECTURES)}")


# ---------------------------------------------------------------------------------------------- models

def make_config(architecture: str, tokenizer, **labels):
    """The tiny config of `architecture` for `tokenizer`'s vocabulary, special tokens and model_max_length."""
    import transformers

    length = tokenizer.model_max_length
    ids = {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id}
    size = {"hidden_size": HIDDEN, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
            "intermediate_size": INTERMEDIATE, "max_position_embeddings": length}
    # RoBERTa's family numbers positions from pad_token_id + 1 on: 2 more rows for 128 tokens, as 514 for 512
    offset = {"max_position_embeddings": length + tokenizer.pad_token_id + 1}
    bos_eos = {"bos_token_id": tokenizer.cls_token_id, "eos_token_id": tokenizer.sep_token_id}
    if architecture == "bert":
        return transformers.BertConfig(**size, **ids, **labels)
    if architecture == "distilbert":
        return transformers.DistilBertConfig(dim=HIDDEN, n_layers=LAYERS, n_heads=HEADS, hidden_dim=INTERMEDIATE,
                                             max_position_embeddings=length, **ids, **labels)
    if architecture == "electra":
        return transformers.ElectraConfig(embedding_size=EMBEDDING, **size, **ids, **labels)
    if architecture == "albert":
        return transformers.AlbertConfig(embedding_size=EMBEDDING, **size, **ids, **bos_eos, **labels)
    if architecture in ("roberta", "xlm-roberta"):
        cls = transformers.RobertaConfig if architecture == "roberta" else transformers.XLMRobertaConfig
        return cls(**{**size, **offset}, type_vocab_size=1, **ids, **bos_eos, **labels)
    if architecture == "mpnet":
        return transformers.MPNetConfig(**{**size, **offset}, relative_attention_num_buckets=32, **ids, **bos_eos,
                                        **labels)
    if architecture == "deberta-v2":
        # DeBERTa-v3's layout: relative attention only (no absolute positions, no token types), log buckets
        # (32 here, so sequences past 16 tokens reach the logarithmic part), shared keys, LayerNorm'd rel. emb.
        return transformers.DebertaV2Config(**size, **ids, **labels, type_vocab_size=0, relative_attention=True,
                                            position_biased_input=False, pos_att_type=["p2c", "c2p"],
                                            max_relative_positions=-1, position_buckets=32,
                                            norm_rel_ebd="layer_norm", share_att_key=True)
    if architecture == "modernbert":
        # one global layer then one local (sliding window of 16 tokens: 8 each side), as ModernBERT alternates
        return transformers.ModernBertConfig(**size, **ids, **labels, layer_types=["full_attention",
                                             "sliding_attention"], local_attention=16,
                                             cls_token_id=tokenizer.cls_token_id, sep_token_id=tokenizer.sep_token_id,
                                             bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id)
    raise ValueError(f"unknown architecture {architecture!r}; one of {', '.join(ARCHITECTURES)}")


def _labels(task: str) -> dict:
    names = {"text-classification": SEQUENCE_LABELS, "multi-label": MULTI_LABELS,
             "token-classification": TOKEN_LABELS}[task]
    found = {"id2label": dict(enumerate(names)), "label2id": {name: i for i, name in enumerate(names)}}
    if task == "multi-label":
        found["problem_type"] = "multi_label_classification"
    return found


def _head(model, task: str) -> list:
    """The linear layers between the encoder's hidden states and the labels whose scale reaches the logits:
    the head's own and, for a sequence task, the pooler's it reads (BERT's and ALBERT's pooler live in the base
    model), less any whose output a LayerNorm beside it rescales anyway (ModernBERT's head.dense)."""
    import torch

    base = {id(m) for m in model.base_model.modules()}
    pooler = getattr(model.base_model, "pooler", None) if task != "token-classification" else None
    pooled = {id(m) for m in pooler.modules()} if isinstance(pooler, torch.nn.Module) else set()
    normed = {id(child) for parent in model.modules()
              if any(isinstance(c, torch.nn.LayerNorm) for c in parent.children()) for child in parent.children()}
    return [m for m in model.modules() if isinstance(m, torch.nn.Linear)
            and (id(m) not in base or id(m) in pooled) and id(m) not in normed]


def _sharpen_head(model, task: str) -> None:
    """Those layers' weights rescaled to std HEAD_STD (the seed still draws them): a random head otherwise
    puts the top two logits ~1e-2 apart, and a compiled copy's label is a coin toss. Rescaled to a std rather
    than multiplied, so families that draw heads at other stds (ModernBERT's classifier at hidden_size**-0.5)
    land at the same spread."""
    import torch

    with torch.no_grad():
        for linear in _head(model, task):
            linear.weight.mul_(HEAD_STD / linear.weight.std())


def make_model(architecture: str, task: str, seed: int = 0, max_length: int = MAX_LENGTH):
    """(model, tokenizer), the model random from `seed`, in eval mode; the global torch RNG is left as it was."""
    import torch
    import transformers

    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; one of {', '.join(ARCHITECTURES)}")
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; one of {', '.join(TASKS)}")
    tokenizer = make_tokenizer(architecture, max_length)
    labels = {} if task == "sentence-embeddings" else _labels(task)
    config = make_config(architecture, tokenizer, **labels)
    auto = {"text-classification": transformers.AutoModelForSequenceClassification,
            "multi-label": transformers.AutoModelForSequenceClassification,
            "token-classification": transformers.AutoModelForTokenClassification,
            "sentence-embeddings": transformers.AutoModel}[task]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = auto.from_config(config)
    if labels:
        _sharpen_head(model, task)
    return model.eval(), tokenizer


@contextmanager
def _no_progress_bars():
    """transformers 5 draws a progress bar for every save and load, even of a 100 kB model."""
    from transformers.utils import logging

    shown = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            logging.enable_progress_bar()


def build(architecture: str, task: str, dest: Path, seed: int = 0, *, max_length: int = MAX_LENGTH) -> Path:
    """A tiny random `architecture` model for `task` saved into `dest` (created if missing); returns `dest`.

    text-classification, multi-label and token-classification: what `save_pretrained` writes, the tokenizer
    included (a transformers pipeline loads it); sentence-embeddings: a sentence-transformers directory
    (`SentenceTransformer(str(dest), local_files_only=True)` loads it). `max_length`: the most tokens the
    model takes (its positions) and the tokenizer's model_max_length; at 128 a few rows of the shipped
    regression sets are longer (19 of 450 sentiment rows, 3 of 500 ner rows), which a pipeline then truncates
    only if asked to."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    model, tokenizer = make_model(architecture, task, seed, max_length)
    with _no_progress_bars():
        if task != "sentence-embeddings":
            model.save_pretrained(dest)
            tokenizer.save_pretrained(dest)
            return dest
        try:
            from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
        except ImportError:  # sentence-transformers before 6
            from sentence_transformers.models import Normalize, Pooling, Transformer
        from sentence_transformers import SentenceTransformer

        with tempfile.TemporaryDirectory(prefix="tiny-encoder-") as base:
            model.save_pretrained(base)
            tokenizer.save_pretrained(base)
            transformer = Transformer(base, max_seq_length=max_length)
            pooling = Pooling(transformer.get_embedding_dimension(), "mean")
            SentenceTransformer(modules=[transformer, pooling, Normalize()], device="cpu").save(
                str(dest), create_model_card=False)
    return dest
