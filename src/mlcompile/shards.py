"""A regression set validated in shards (REGRESSION_SHARD=I/N, one CI job each): where each shard's
partial verdict is published, and their merge into one verdict for the upload, refused with the reason
when a shard is missing, appears twice, failed or belongs to another artifact or other rules."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .artifacts import StageDir, read_json
from .errors import UploadRefused
from .regression import REGRESSION_CASE, merge
from .tasks import TOKENIZATION_CHECK, get_task
from .verdict import Verdict

SHARDS_DIR = "validate-shards"  # outputs/validate-shards/<I>-of-<N>/: a stage per shard
VERDICT_FILE = "verdict.json"


def shard_stage(outputs: Path, shard: str) -> StageDir:
    index, total = shard.split("/")
    return StageDir(Path(outputs) / SHARDS_DIR, f"{index}-of-{total}")


def shard_of(verdict: Verdict) -> str | None:
    return (verdict.rules.regression or {}).get("shard")


def without_shard(verdict: Verdict):
    return replace(verdict.rules, regression={k: v for k, v in verdict.rules.regression.items() if k != "shard"})


def published_shards(outputs: Path) -> list[tuple[str, Verdict]]:
    """Every shard verdict under outputs/validate-shards (as CI's upload job gathers them), by folder."""
    root = Path(outputs) / SHARDS_DIR
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        stage = StageDir(root, folder.name)
        problem = stage.problem()
        if problem is not None:
            raise UploadRefused(f"shard verdict {folder}: {problem}")
        found.append((folder.name, Verdict.from_dict(read_json(folder / VERDICT_FILE))))
    return found


def merged(task_name: str, shards: list[tuple[str, Verdict]], tolerance) -> Verdict:
    """One verdict over the whole set from every shard's; UploadRefused naming each reason it cannot be."""
    problems, by_shard = [], {}
    for folder, verdict in shards:
        shard = shard_of(verdict)
        if shard is None:
            problems.append(f"{folder}: not a shard's verdict (no REGRESSION_SHARD)")
        elif shard in by_shard:
            problems.append(f"shard {shard} twice: {by_shard[shard][0]} and {folder}")
        else:
            by_shard[shard] = (folder, verdict)
    if not by_shard:
        raise UploadRefused("no shard verdicts to merge" + (": " + "; ".join(problems) if problems else ""))
    totals = sorted({shard.split("/")[1] for shard in by_shard}, key=int)
    if len(totals) > 1:
        problems.append(f"shards of different splits: {', '.join(sorted(by_shard))}")
    total = int(totals[-1])
    missing = [f"{i}/{total}" for i in range(1, total + 1) if f"{i}/{total}" not in by_shard]
    if missing:
        problems.append(f"missing shard{'s' if len(missing) > 1 else ''} {', '.join(missing)} of {total}")
    _, first = by_shard[min(by_shard, key=lambda s: int(s.split("/")[0]))]
    for shard, (folder, verdict) in sorted(by_shard.items()):
        if verdict.compiled_content_id != first.compiled_content_id:
            problems.append(f"shard {shard} ({folder}) validated another compiled artifact "
                            f"({verdict.compiled_content_id[:12]}, not {first.compiled_content_id[:12]})")
        elif without_shard(verdict) != without_shard(first):
            problems.append(f"shard {shard} ({folder}) ran under other rules: "
                            + "; ".join(verdict.rules.differences(first.rules)))
        elif not verdict.passed:
            problems.append(f"shard {shard} ({folder}) did not pass: " + "; ".join(verdict.problems(limit=3)))
    if problems:
        raise UploadRefused("the shards' verdicts cannot be merged:\n  " + "\n  ".join(problems))
    task, rules = get_task(task_name), without_shard(first)
    verdicts = [verdict for _, verdict in by_shard.values()]
    # every shard passed: the first's outcomes and results stand, but for what each shard saw only part of
    whole = Verdict(first.compiled_content_id, rules, dict(first.outcomes), dict(first.results),
                    machine=merged_machine(verdicts))
    for check_id in rules.checks:
        case, check = check_id.split("::", 1)
        if case == REGRESSION_CASE:
            whole.record(check_id, merge(task, check, [v.results[check_id] for v in verdicts],
                                         rules.regression["min_agreement"], tolerance))
        elif check_id == TOKENIZATION_CHECK:  # each shard tokenized its rows (and the cases)
            texts = sum(v.results[check_id].details.get("texts", 0) for v in verdicts)
            whole.results[check_id] = replace(first.results[check_id], message=(
                f"every shard's texts ({texts} in all, cases counted per shard) tokenize to the same ids in both "
                "pipelines"))
    return whole


def merged_machine(verdicts: list[Verdict]) -> dict | None:
    """The shards' machine; where they differ, every flag any of them had (a load is checked against all)."""
    machines = [v.machine for v in verdicts if v.machine]
    if not machines or all(m == machines[0] for m in machines):
        return machines[0] if machines else None
    flags = sorted({flag for m in machines for flag in m.get("flags", [])})
    return {"model": "; ".join(sorted({m.get("model", "?") for m in machines})), "flags": flags, "shards": machines}
