"""`mlcompile bench --growth`: how the validate stage scales with the regression set. The project's set
is repeated to 100, 1,000 and 10,000 rows; each size is validated by the real stage (`mlcompile run
--stage validate --rebuild validate -n W`, a process of its own) and, side by side, the plain batched
pipelines run over the same rows in the same chunks (the floor any validation pays). Printed: seconds,
the ratio to the plain pipelines, peak memory (largest process) and the HTML report's size."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from .errors import ConfigError
from .regression import CHUNK_ROWS, read_rows
from .settings import Settings


def synthesize(source: Path, rows: int, dest: Path) -> Path:
    """`rows` rows: the set repeated (ids suffixed with the repetition), as JSON Lines."""
    base = [json.loads(line) for line in Path(source).read_text().splitlines() if line.strip()]
    with dest.open("w") as out:
        for i in range(rows):
            row = base[i % len(base)]
            out.write(json.dumps({**row, "id": f"{row.get('id', i)}-r{i // len(base)}"}) + "\n")
    return dest


def plain(settings: Settings, path: Path) -> float:
    """Seconds for both pipelines over the rows, chunked and length-sorted as the validation runs them."""
    from . import stages

    downloaded = stages.download_model(settings)
    compiled = stages.load_compiled(stages.stage(settings, "compile").path, settings)
    uncompiled = stages.load_uncompiled(settings, downloaded)
    params = stages.model_card(downloaded).get("inference_params", {})
    rows = list(read_rows(path, params))
    started = time.perf_counter()
    for start in range(0, len(rows), CHUNK_ROWS):
        texts = sorted((row.text for row in rows[start:start + CHUNK_ROWS]), key=len, reverse=True)
        compiled.predict_many(texts, params)
        uncompiled.predict_many(texts, params)
    return time.perf_counter() - started


def _child(command: list[str], env: dict) -> tuple[float, float]:
    """(seconds, peak MB of the largest process it started) of a command run to completion."""
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    # the largest resident set of any finished child (xdist workers included): sizes run smallest first
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def run(settings: Settings, sizes=(100, 1000, 10000), workers=("1", "2")) -> list[dict]:
    from . import stages

    if settings.regression_set is None:
        raise ConfigError(f"bench --growth grows the project's regression set, and {settings.project} has none: "
                          "set REGRESSION_SET to a JSON Lines, CSV or Parquet file of texts")
    stages.compile_model(settings, stages.download_model(settings))  # built (or reused) before anything is timed
    work = Path(settings.outputs_dir) / "growth"
    work.mkdir(parents=True, exist_ok=True)
    table = []
    print(f"{settings.project}: the validate stage against both pipelines alone, as {settings.regression_set.name} "
          f"grows (repeated); peak memory of the largest process", flush=True)
    print(f"{'rows':>6} {'plain s':>8} " + " ".join(f"{f'-n {w} s (x plain)':>18}" for w in workers)
          + f" {'peak MB':>8} {'report KB':>9}", flush=True)
    for size in sizes:
        path = synthesize(settings.regression_set, size, work / f"set-{size}.jsonl")
        env = {**os.environ, "REGRESSION_SET": str(path)}
        _child([sys.executable, "-m", "mlcompile.growth", str(path)], env)
        plain_seconds = float((work / "plain-seconds").read_text())
        row = {"rows": size, "plain_seconds": round(plain_seconds, 1)}
        peak = 0.0
        for count in workers:
            seconds, peak = _child([sys.executable, "-m", "mlcompile.cli", "run", "--stage", "validate", "--rebuild",
                                    "validate", "-n", count], env)
            row[f"validate_n{count}_seconds"] = round(seconds, 1)
        row["peak_mb"] = round(peak)
        row["report_kb"] = round((stages.stage(settings, "validate").path / stages.REPORT_FILE).stat().st_size / 1024)
        table.append(row)
        cells = " ".join(f"{row[f'validate_n{w}_seconds']:>9.1f} (x{row[f'validate_n{w}_seconds'] / plain_seconds:4.2f})"
                         .rjust(18) for w in workers)
        print(f"{size:>6} {plain_seconds:>8.1f} {cells} {row['peak_mb']:>8} {row['report_kb']:>9}", flush=True)
    (work / "growth.json").write_text(json.dumps(table, indent=2))
    return table


if __name__ == "__main__":  # the plain pipelines, in a process of their own (timed by run)
    from .settings import load_settings

    current = load_settings()
    seconds = plain(current, Path(sys.argv[1]))
    (Path(current.outputs_dir) / "growth" / "plain-seconds").write_text(str(seconds))
