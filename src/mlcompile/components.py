"""The compiled artifact's parts other than its executables, proven against the uncompiled model's:
every file the compiled pipeline reads besides the compiled files (the tokenizer, the model config with
its label maps, a sentence-transformer's pooling and normalization modules, the model card) is compared
in full, entry by entry (`compiled-artifact::components`); and every case and regression row is
tokenized by both pipelines' tokenizers and the ids compared (`compiled-artifact::tokenization`).

The coverage check proves the executables; these prove the rest, which the cases alone reach only where
a case happens to use a swapped word or a relabelled class. Only the truncation length may differ (the
compiled tokenizer stops where the largest compiled length ends), and the result says so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from .compare import CheckResult
from .registry import MODEL_CARD
from .tasks import COMPONENTS_CHECK, TOKENIZATION_CHECK, load_tokenizer
from .tasks.sentence_embeddings import sentence_modules

ARTIFACT, COMPONENTS = COMPONENTS_CHECK.split("::")
TOKENIZATION = TOKENIZATION_CHECK.split("::")[1]
MODULES_DIR = "modules"  # a sentence-transformer's module configs, kept with the compiled artifact
# Tokenizer state that is not the tokenizer: where it truncates or pads a batch (set per pipeline).
TOKENIZER_RUNTIME = ("truncation", "padding")
# What a model config records of the library that wrote it, not of the model.
CONFIG_RUNTIME = ("transformers_version", "_name_or_path")
SHOWN = 5  # differing entries named per component


def differences(ours: Any, theirs: Any, path: str = "", found: list[str] | None = None, limit: int = SHOWN) -> list[str]:
    """The first `limit` entries where two JSON values differ, as `path: compiled X, uncompiled Y`."""
    found = [] if found is None else found
    if len(found) >= limit:
        return found
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for key in sorted(set(ours) | set(theirs), key=str):
            here = f"{path}[{key!r}]" if path else str(key)
            if key not in ours or key not in theirs:
                found.append(f"{here}: {'missing' if key not in ours else _short(ours[key])} in the compiled artifact, "
                             f"{'missing' if key not in theirs else _short(theirs[key])} uncompiled")
            else:
                differences(ours[key], theirs[key], here, found, limit)
            if len(found) >= limit:
                break
    elif isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            found.append(f"{path}: {len(ours)} entries in the compiled artifact, {len(theirs)} uncompiled")
        for index, (a, b) in enumerate(zip(ours, theirs)):
            differences(a, b, f"{path}[{index}]", found, limit)
            if len(found) >= limit:
                break
    elif ours != theirs:
        found.append(f"{path}: {_short(ours)} in the compiled artifact, {_short(theirs)} uncompiled")
    return found


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _tokenizer_state(path: Path) -> tuple[dict, int]:
    """A tokenizer as it tokenizes: its serialized pipeline (vocabulary, normalizer, pre-tokenizer,
    post-processor, decoder, added tokens) and its special tokens; and its truncation length."""
    tokenizer = load_tokenizer(path)
    serialized = json.loads(tokenizer.backend_tokenizer.to_str())
    for key in TOKENIZER_RUNTIME:
        serialized.pop(key, None)
    serialized["special_tokens"] = {name: str(value) for name, value in tokenizer.special_tokens_map.items()}
    serialized["class"] = type(tokenizer).__name__
    return serialized, tokenizer.model_max_length


def _config(path: Path) -> dict:
    """The model config as transformers reads it (defaults filled in, so files that write them out or
    leave them implicit compare equal), less what records the library that wrote it."""
    from transformers import AutoConfig

    found = AutoConfig.from_pretrained(str(path), local_files_only=True).to_dict()
    return {key: value for key, value in found.items() if key not in CONFIG_RUNTIME}


def _module_files(root: Path) -> dict[str, Any]:
    """A sentence-transformer's module configs below its root: modules.json, sentence_bert_config.json and
    each later module's config (pooling mode, normalization, dense shape)."""
    modules = sentence_modules(root)
    if not modules:
        return {}
    names = ["modules.json", "sentence_bert_config.json"] + [
        f"{m['path']}/config.json" for m in modules[1:] if m.get("path")]
    return {name: json.loads((root / name).read_text()) for name in names if (root / name).is_file()}


def keep_modules(model_root: Path, dest: Path) -> None:
    """Copy a sentence-transformer's module configs into the compiled artifact (`modules/`): what the
    traced embedding function was built from, compared with the uncompiled model's at validation."""
    for name, content in _module_files(model_root).items():
        target = dest / MODULES_DIR / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(content, indent=2, sort_keys=True))


def check(compiled: Path, spec, uncompiled_model: Path, tokenizer_dir: Path, uncompiled_card: dict) -> CheckResult:
    """Every non-executable part of the compiled artifact at `compiled` against the uncompiled model."""
    compared: dict[str, list[str]] = {}
    ours, our_length = _tokenizer_state(compiled / spec.tokenizer)
    theirs, their_length = _tokenizer_state(tokenizer_dir)
    compared["tokenizer"] = differences(ours, theirs)
    compared["config"] = differences(_config(compiled / spec.config), _config(tokenizer_dir))
    modules = _module_files(uncompiled_model)
    if modules or (compiled / MODULES_DIR).is_dir():
        kept = _module_files(compiled / MODULES_DIR)
        compared["modules"] = differences(kept, modules)
    card = json.loads((compiled / MODEL_CARD).read_text())
    compared["model card"] = differences(card, uncompiled_card)
    failed = {name: found for name, found in compared.items() if found}
    note = (f"; truncation differs by design: the compiled tokenizer keeps {our_length} tokens (the largest compiled "
            f"length), the uncompiled tokenizer {their_length}" if our_length != their_length else "")
    details = {"components": {name: found or "identical" for name, found in compared.items()},
               "truncation": {"compiled": our_length, "uncompiled": their_length}}
    if failed:
        named = "; ".join(f"{name} differs: {', '.join(found)}" for name, found in failed.items())
        return CheckResult(ARTIFACT, COMPONENTS, False, named + note, details=details)
    return CheckResult(ARTIFACT, COMPONENTS, True, f"{', '.join(compared)} identical to the uncompiled model's{note}",
                       details=details)


def tokenization(compiled_tokenizer, uncompiled_tokenizer, texts: Iterable[tuple[str, str]], chunk: int = 256
                 ) -> CheckResult:
    """Every (id, text) tokenized by both tokenizers, untruncated: the same ids, or the first rows that differ
    with the first differing position."""
    checked, differing, shown = 0, 0, []
    batch: list[tuple[str, str]] = []

    def compare(rows: list[tuple[str, str]]) -> None:
        nonlocal checked, differing
        texts_ = [text for _, text in rows]
        ours = compiled_tokenizer(texts_, truncation=False, verbose=False)["input_ids"]
        theirs = uncompiled_tokenizer(texts_, truncation=False, verbose=False)["input_ids"]
        checked += len(rows)
        for (row_id, _), a, b in zip(rows, ours, theirs):
            if a == b:
                continue
            differing += 1
            if len(shown) < SHOWN:
                at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
                shown.append(f"{row_id} at token {at}: {compiled_tokenizer.convert_ids_to_tokens(a[at:at + 3])} "
                             f"compiled, {uncompiled_tokenizer.convert_ids_to_tokens(b[at:at + 3])} uncompiled")

    for row in texts:
        batch.append(row)
        if len(batch) == chunk:
            compare(batch)
            batch = []
    if batch:
        compare(batch)
    details = {"texts": checked, "differing": differing}
    if differing:
        return CheckResult(ARTIFACT, TOKENIZATION, False, f"{differing} of {checked} texts tokenize differently: "
                           + "; ".join(shown), details=details)
    return CheckResult(ARTIFACT, TOKENIZATION, True, f"{checked} texts tokenize to the same ids in both pipelines",
                       details=details)
