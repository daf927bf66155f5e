"""The benchmark's workloads: the validation cases one request each (latency), and the project's
batched corpus of real documents (throughput), `config/bench/<project>.jsonl`.

The corpora are prose from the Python 3.11 documentation (the Language Reference topics Python ships
as `pydoc_data.topics`; PSF License), joined from consecutive paragraphs into documents of the lengths each
task sees in serving. `build_corpus` made the shipped files; they are read, never rebuilt, by a bench.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from .errors import ConfigError

CORPUS_DIR = Path(__file__).resolve().parents[2] / "config" / "bench"
SOURCE = "Python 3.11 documentation, Language Reference topics (pydoc_data.topics), PSF License"
# Documents per project and their length range in words: keyword extraction runs on articles,
# entity recognition and sentiment on sentences to short paragraphs.
SHAPES = {"keywords": (64, 20, 400), "ner": (128, 8, 60), "sentiment": (128, 8, 120)}


def _paragraphs(topic: str) -> list[str]:
    """The prose paragraphs of a topic: no headings, grammar or code blocks."""
    found = []
    for block in re.split(r"\n\s*\n", topic):
        lines = block.splitlines()
        if not lines or lines[0].startswith(" ") or re.fullmatch(r"[*=\-]+", lines[-1].strip()):
            continue
        text = " ".join(line.strip() for line in lines)
        if len(text.split()) >= 5 and not text.endswith(":"):
            found.append(text)
    return found


def build_corpus(project: str, seed: int = 0, count: int | None = None) -> list[dict]:
    """Documents of the project's lengths, made of consecutive paragraphs."""
    import pydoc_data.topics

    default_count, shortest, longest = SHAPES[project]
    count = count or default_count
    rng = random.Random(seed)
    topics = [_paragraphs(text) for _, text in sorted(pydoc_data.topics.topics.items())]
    topics = [paragraphs for paragraphs in topics if paragraphs]
    documents: list[dict] = []
    while len(documents) < count:
        first = rng.randrange(len(topics))
        if project == "keywords":
            target = rng.randint(shortest, longest)
        else:  # log-uniform: many short texts, some long
            target = int(shortest * (longest / shortest) ** rng.random())
        start = rng.randrange(len(topics[first]))
        # consecutive paragraphs of a topic, and of the next ones when it runs out
        following = topics[first][start:] + [p for t in topics[first + 1:] for p in t]
        words: list[str] = []
        for paragraph in following:
            words += paragraph.split()
            if len(words) >= target:
                break
        if len(words) < shortest:
            continue
        text = " ".join(words[:target])
        if project != "keywords":  # sentence-sized texts end at a sentence boundary where one exists
            end = max(text.rfind(". ", 0, len(text)), text.rfind(".", len(text) - 1))
            text = text[: end + 1] if end > len(text) // 2 else text
        documents.append({"id": f"{project}-{len(documents):03d}", "text": text})
    return documents


def write_jsonl(rows: list[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return path


def write_corpus(project: str, dest: Path = CORPUS_DIR) -> Path:
    return write_jsonl(build_corpus(project), dest / f"{project}.jsonl")


def read_corpus(project: str, root: Path = CORPUS_DIR, fallback: Path | None = None) -> list[str]:
    """The project's bench corpus; a project without one (a user's) is timed on `fallback`, its
    regression set, when it names one."""
    path = root / f"{project}.jsonl"
    if not path.is_file() and fallback is not None:
        from .regression import read_rows

        return [row.text for row in read_rows(fallback, {})]
    if not path.is_file():
        raise ConfigError(f"no bench corpus for PROJECT={project!r}: {path} is missing (known: "
                          f"{', '.join(sorted(p.stem for p in root.glob('*.jsonl')))}); set REGRESSION_SET to a file "
                          f"of your texts to time them instead")
    return [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]
