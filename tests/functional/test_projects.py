"""Every reference project end to end, as a user runs it: `make run PROJECT=...` on a registry
holding only that project's demo uncompiled model."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from mlcompile.registry.local import LocalRegistry
from mlcompile.tasks import get_task

from ..conftest import REPO, pipeline_env

pytestmark = pytest.mark.functional
MODELS = {"keywords": "KEYWORDS", "ner": "NER", "sentiment": "SEN"}


@pytest.mark.parametrize("project", sorted(MODELS))
def test_make_run_project_validates_and_registers(project, seeded_registries, tmp_path):
    shutil.copytree(seeded_registries[project], tmp_path / "registry")
    done = subprocess.run(["make", "--no-print-directory", "run", f"PROJECT={project}"], cwd=REPO,
                          env=pipeline_env(tmp_path), capture_output=True, text=True, timeout=900)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    model = MODELS[project]
    assert f"upload: registered {model}-COMPILED-1" in output

    version = LocalRegistry(tmp_path / "registry").get_version(f"mlcompile/{project}", f"{model}-COMPILED-1")
    assert version.card["task"] == project and version.card["compiled"] is True
    assert version.card["lineage"]["uncompiled_version"] == f"{model}-TRAINED-1"
    assert {"validation/report.html", "validation/verdict.json", "compiled/compiled.json"} <= set(version.files)

    verdict = json.loads((tmp_path / "outputs" / "validate" / "verdict.json").read_text())
    assert verdict["summary"]["passed"] is True
    cases = {check_id.split("::")[0] for check_id in verdict["expected"]}
    task = get_task(project)
    assert len(cases) >= 10 and all(f"{case}::invariance" in verdict["results"] for case in cases)
    assert {c for c in cases if c.startswith("registry-")} == {f"registry-{i['id']}" for i in task.demo_inputs}
    assert "longer-than-compiled" in verdict["summary"]["truncated_cases"]
    listed = subprocess.run(["make", "--no-print-directory", "list", f"PROJECT={project}"], cwd=REPO,
                            env=pipeline_env(tmp_path), capture_output=True, text=True, timeout=300).stdout
    assert f'"version": "{model}-COMPILED-1"' in listed and '"stage": "staging"' in listed
    spec = json.loads((tmp_path / "outputs" / "compile" / "compiled.json").read_text())
    lengths = [bucket["length"] for bucket in spec["buckets"]]
    tokenizer_config = json.loads((tmp_path / "outputs" / "compile" / "tokenizer" / "tokenizer_config.json").read_text())
    assert tokenizer_config["model_max_length"] == max(lengths)  # the saved tokenizer truncates where buckets end
    served = {r["details"]["compiled_text"]["bucket"] for r in verdict["results"].values() if "compiled_text" in r["details"]}
    assert served == set(lengths)  # the cases cover every bucket
    report = (tmp_path / "outputs" / "validate" / "report.html").read_text()
    assert "longer-than-compiled::invariance" in report
