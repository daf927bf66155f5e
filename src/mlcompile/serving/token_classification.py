"""Token classification's post-processing: transformers' `TokenClassificationPipeline.postprocess`
(softmax per token, pre-entities with subword detection from offsets, aggregation by strategy, grouping of
B-/I- tags, `ignore_labels`) in numpy for one chunk per text (no stride, not pre-split into words, as
mlcompile's pipeline calls it), and mlcompile's prediction of it (the task's `convert`)."""

from __future__ import annotations

import warnings

import numpy as np

from .artifact import LabelConfig

NONE, SIMPLE, FIRST, AVERAGE, MAX = "none", "simple", "first", "average", "max"
STRATEGIES = (NONE, SIMPLE, FIRST, AVERAGE, MAX)
DEFAULT_IGNORE_LABELS = ("O",)


def strategy_of(aggregation_strategy) -> str:
    name = str(getattr(aggregation_strategy, "value", aggregation_strategy) or NONE).lower()
    if name not in STRATEGIES:
        raise KeyError(f"aggregation_strategy {aggregation_strategy!r}; one of {', '.join(STRATEGIES)}")
    return name


class EntityGrouper:
    """The pipeline's postprocess over the artifact's tokenizer and labels."""

    def __init__(self, tokenizer, config: LabelConfig):
        self.tokenizer = tokenizer  # serving.tokenizer.TextTokenizer
        self.id2label = config.id2label
        # a word-aware tokenizer (WordPiece's `##`): a token is a subword when its text differs from the span
        self.word_aware = bool(getattr(tokenizer.model, "continuing_subword_prefix", None))

    def postprocess(self, sentence: str, input_ids, logits: np.ndarray, offsets, special, aggregation_strategy=NONE,
                    ignore_labels=None) -> list[dict]:
        strategy = strategy_of(aggregation_strategy)
        ignore = list(DEFAULT_IGNORE_LABELS) if ignore_labels is None else ignore_labels
        logits = np.asarray(logits, dtype=np.float32)
        maxes = np.max(logits, axis=-1, keepdims=True)
        shifted_exp = np.exp(logits - maxes)
        scores = shifted_exp / shifted_exp.sum(axis=-1, keepdims=True)
        pre_entities = self.gather_pre_entities(sentence, input_ids, scores, offsets, special, strategy)
        grouped = self.aggregate(pre_entities, strategy)
        return [entity for entity in grouped
                if entity.get("entity", None) not in ignore and entity.get("entity_group", None) not in ignore]

    def gather_pre_entities(self, sentence, input_ids, scores, offsets, special, strategy: str) -> list[dict]:
        pre_entities = []
        for idx, token_scores in enumerate(scores):
            if special[idx]:
                continue
            word = self.tokenizer.id_to_token(int(input_ids[idx]))
            if offsets is not None:
                start_ind, end_ind = (int(v) for v in offsets[idx])
                word_ref = sentence[start_ind:end_ind]
                if self.word_aware:
                    is_subword = len(word) != len(word_ref)
                else:
                    if strategy in (FIRST, AVERAGE, MAX):
                        warnings.warn("Tokenizer does not support real words, using fallback heuristic", UserWarning)
                    is_subword = start_ind > 0 and " " not in sentence[start_ind - 1: start_ind + 1]
                if int(input_ids[idx]) == self.tokenizer.unk_token_id:
                    word = word_ref
                    is_subword = False
            else:
                start_ind = end_ind = None
                is_subword = False
            pre_entities.append({"word": word, "scores": token_scores, "start": start_ind, "end": end_ind,
                                 "index": idx, "is_subword": is_subword})
        return pre_entities

    def aggregate(self, pre_entities: list[dict], strategy: str) -> list[dict]:
        if strategy in (NONE, SIMPLE):
            entities = []
            for pre_entity in pre_entities:
                entity_idx = pre_entity["scores"].argmax()
                score = pre_entity["scores"][entity_idx]
                entities.append({"entity": self.id2label[int(entity_idx)], "score": score,
                                 "index": pre_entity["index"], "word": pre_entity["word"],
                                 "start": pre_entity["start"], "end": pre_entity["end"]})
        else:
            entities = self.aggregate_words(pre_entities, strategy)
        if strategy == NONE:
            return entities
        return self.group_entities(entities)

    def aggregate_word(self, entities: list[dict], strategy: str) -> dict:
        word = self.tokenizer.tokens_to_string([entity["word"] for entity in entities])
        if strategy == FIRST:
            scores = entities[0]["scores"]
            idx = scores.argmax()
            score = scores[idx]
            entity = self.id2label[int(idx)]
        elif strategy == MAX:
            max_entity = max(entities, key=lambda entity: entity["scores"].max())
            scores = max_entity["scores"]
            idx = scores.argmax()
            score = scores[idx]
            entity = self.id2label[int(idx)]
        elif strategy == AVERAGE:
            scores = np.stack([entity["scores"] for entity in entities])
            average_scores = np.nanmean(scores, axis=0)
            entity_idx = average_scores.argmax()
            entity = self.id2label[int(entity_idx)]
            score = average_scores[entity_idx]
        else:
            raise ValueError("Invalid aggregation_strategy")
        return {"entity": entity, "score": score, "word": word, "start": entities[0]["start"],
                "end": entities[-1]["end"]}

    def aggregate_words(self, entities: list[dict], strategy: str) -> list[dict]:
        """Tokens of one word forced to agree (first, average or max over the word's tokens)."""
        if strategy in (NONE, SIMPLE):
            raise ValueError("NONE and SIMPLE strategies are invalid for word aggregation")
        word_entities = []
        word_group = None
        for entity in entities:
            if word_group is None:
                word_group = [entity]
            elif entity["is_subword"]:
                word_group.append(entity)
            else:
                word_entities.append(self.aggregate_word(word_group, strategy))
                word_group = [entity]
        if word_group is not None:
            word_entities.append(self.aggregate_word(word_group, strategy))
        return word_entities

    def group_sub_entities(self, entities: list[dict]) -> dict:
        entity = entities[0]["entity"].split("-", 1)[-1]
        scores = np.nanmean([entity["score"] for entity in entities])
        tokens = [entity["word"] for entity in entities]
        return {"entity_group": entity, "score": np.mean(scores), "word": self.tokenizer.tokens_to_string(tokens),
                "start": entities[0]["start"], "end": entities[-1]["end"]}

    @staticmethod
    def get_tag(entity_name: str) -> tuple[str, str]:
        if entity_name.startswith("B-"):
            return "B", entity_name[2:]
        if entity_name.startswith("I-"):
            return "I", entity_name[2:]
        return "I", entity_name  # not in B-/I- format: a continuation

    def group_entities(self, entities: list[dict]) -> list[dict]:
        """Adjacent tokens with the same entity tag grouped (a B- tag starts a new group)."""
        entity_groups = []
        entity_group_disagg: list[dict] = []
        for entity in entities:
            if not entity_group_disagg:
                entity_group_disagg.append(entity)
                continue
            bi, tag = self.get_tag(entity["entity"])
            _, last_tag = self.get_tag(entity_group_disagg[-1]["entity"])
            if tag == last_tag and bi != "B":
                entity_group_disagg.append(entity)
            else:
                entity_groups.append(self.group_sub_entities(entity_group_disagg))
                entity_group_disagg = [entity]
        if entity_group_disagg:
            entity_groups.append(self.group_sub_entities(entity_group_disagg))
        return entity_groups


def prediction(text: str, entities: list[dict], logits) -> dict:
    """The pipeline's entities for one text as mlcompile's prediction: label, character span, the text cut
    from the original string at the span, score; and the per-token logits (special tokens included)."""
    found = [
        {"label": e.get("entity_group", e.get("entity")), "start": int(e["start"]), "end": int(e["end"]),
         "text": text[int(e["start"]):int(e["end"])], "score": float(e["score"])}
        for e in entities
    ]
    return {"entities": found, "logits": logits.tolist()}
