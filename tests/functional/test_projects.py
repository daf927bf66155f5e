"""Every reference project end to end, as a user runs it (`mlcompile run`, in this process; .ci/run
runs `make run` for each project too) on a registry holding only that project's demo uncompiled
model. Each task family with each CPU backend at least once: keywords with auto (both backends
compiled and measured), ner with onnx, sentiment with torchscript; keywords with torchscript is in
tests/integration/test_pipeline_stages.py."""

from __future__ import annotations

import json
import shutil

import pytest

from mlcompile import pyfunc
from mlcompile.compiled import executable_name
from mlcompile.compilers import candidate_name, get_compiler, parse_candidate
from mlcompile.machine import bf16_supported
from mlcompile.registry.local import LocalRegistry
from mlcompile.demo.models import DEMOS
from mlcompile.tasks import get_task


pytestmark = pytest.mark.functional
MODELS = {"keywords": "KEYWORDS", "ner": "NER", "sentiment": "SEN"}


@pytest.mark.parametrize("project, compiler", [("keywords", "auto"), ("ner", "onnx"), ("sentiment", "torchscript")])
def test_run_project_validates_and_registers(project, compiler, seeded_registries, tmp_path, in_process):
    shutil.copytree(seeded_registries[project], tmp_path / "registry")
    done = in_process.cli(tmp_path, "run", PROJECT=project, COMPILER=compiler)
    output = done.output
    assert done.returncode == 0, output
    model = MODELS[project]
    assert f"upload: registered {model}-COMPILED-1" in output

    version = LocalRegistry(tmp_path / "registry").get_version(f"mlcompile/{project}", f"{model}-COMPILED-1")
    assert version.card["task"] == DEMOS[project].task and version.card["compiled"] is True
    assert version.card["lineage"]["uncompiled_version"] == f"{model}-TRAINED-1"
    assert {"validation/report.html", "validation/verdict.json", "compiled/compiled.json", "MLmodel"} <= set(version.files)
    # an MLflow model in its registry directory: MLflow alone loads it and predicts as the validated pipeline
    import mlflow.pyfunc
    import pandas as pd

    files = tmp_path / "registry" / "mlcompile" / project / f"{model}-COMPILED" / f"{model}-COMPILED-1" / "files"
    text = "Angela Merkel visited Siemens in Munich and loved it."
    [served] = mlflow.pyfunc.load_model(str(files)).predict(pd.DataFrame({"text": [text]}))
    validated = pyfunc.load(tmp_path / "outputs" / "compile")
    assert get_task(DEMOS[project].task).task_output(served) == get_task(DEMOS[project].task).task_output(validated.predict([text])[0])
    assert version.details.metrics["checks_passed"] == version.details.metrics["checks"] > 0
    predicted = in_process.cli(tmp_path, "predict", str(files.parent), text)  # mlcompile's own call, same answer
    assert predicted.returncode == 0, predicted.output
    assert get_task(DEMOS[project].task).task_output(json.loads(predicted.output.strip().splitlines()[-1])) == \
        get_task(DEMOS[project].task).task_output(served)
    assert version.details.params["backend"] == json.loads((files / "compiled" / "compiled.json").read_text())["backend"]

    verdict = json.loads((tmp_path / "outputs" / "validate" / "verdict.json").read_text())
    assert verdict["summary"]["passed"] is True
    cases = set(verdict["rules"]["cases"])
    assert len(cases) >= 10 and all(f"{case}::invariance" in verdict["results"] for case in cases)
    assert {c for c in cases if c.startswith("registry-")} == {f"registry-{i['id']}" for i in DEMOS[project].inputs}
    assert "longer-than-compiled" in verdict["summary"]["truncated_cases"]
    listed = in_process.cli(tmp_path, "list", PROJECT=project).output
    assert f'"version": "{model}-COMPILED-1"' in listed and '"lifecycle": "staging"' in listed
    spec = json.loads((tmp_path / "outputs" / "compile" / "compiled.json").read_text())
    lengths = [bucket["length"] for bucket in spec["buckets"]]
    tokenizer_config = json.loads((tmp_path / "outputs" / "compile" / "tokenizer" / "tokenizer_config.json").read_text())
    assert tokenizer_config["model_max_length"] == max(lengths)  # the saved tokenizer truncates where buckets end
    coverage = verdict["summary"]["coverage"]  # every compiled file ran on case rows and matched
    assert [e["executable"] for e in coverage] == [
        executable_name(f, m) for b in spec["buckets"]
        for f, m in ((b["file"], b.get("method")), (b.get("single_file"), b.get("single_method"))) if f]
    assert all(e["passed"] and e["cases"] for e in coverage)
    served = {r["details"]["compiled_text"]["bucket"] for r in verdict["results"].values() if "compiled_text" in r["details"]}
    if spec["dynamic_shapes"]:  # one model for every shape; a case reports its padded length
        assert [b["file"] for b in spec["buckets"]] == [f"model{get_compiler(spec['backend']).suffix}"]
        assert max(served) == max(lengths) and len(served) > 3
    else:
        assert served == set(lengths)  # the cases cover every bucket
    if compiler == "auto":
        selection = spec["selection"]
        assert selection is not None, f"auto compiled only {spec['backend']}:\n{output}"
        ladder = {"onnx", "openvino", "torchscript", "onnx-int8", "onnx-int8-mixed"} | (
            {"openvino-bf16", "torchscript-bf16"} if bf16_supported() else set())
        assert set(selection["candidates"]) == ladder
        passing = {name: m for name, m in selection["candidates"].items() if m["passed"]}
        assert candidate_name(spec["backend"], spec["precision"], spec["compiler_settings"].get("recipe")) == selection["kept"] == min(
            passing, key=lambda name: passing[name]["seconds"])
        assert all(m["precision"] == parse_candidate(name)[1] and m["atol"] is not None
                   for name, m in selection["candidates"].items())
        assert verdict["rules"]["precision"] == spec["precision"]  # validated under that precision's tolerance
        assert f"compile: backend {selection['kept']} (auto, fastest that matches the model" in output
    else:
        assert candidate_name(spec["backend"], spec["precision"]) == compiler and spec["selection"] is None
    report = (tmp_path / "outputs" / "validate" / "report.html").read_text()
    assert "longer-than-compiled::invariance" in report
