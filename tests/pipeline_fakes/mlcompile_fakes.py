"""Stand-ins for the model work of mlcompile.stages (download, compile, the pipelines and the
validation: `FakeStages`, the plugin's `PipelineState.stages`; and the MLmodel of a registered version),
so the pipeline plugin's hooks, its spool and the real upload gate and local registry run in well under
a second. Loaded with `-p mlcompile_fakes`; scripted by environment variables:

FAKE_FAILING          comma-separated check ids that fail
FAKE_COMPILE_SALT     changes the compiled bytes (a recompiled artifact)
FAKE_DOWNLOAD_ERROR   the download fails with this registry error
FAKE_CRASH            the process running this check id dies (SIGKILL), as a worker killed mid-validation
"""

from __future__ import annotations

import os
import signal

import pytest
import torch

from mlcompile import pyfunc, stages
from mlcompile.artifacts import fingerprint, write_json_atomic
from mlcompile.batching import TextInfo
from mlcompile.cases import Case
from mlcompile.compare import CheckResult
from mlcompile.compiled import Bucket, CompiledSpec
from mlcompile.errors import RegistryError
from mlcompile.spool import ValidationPlan

from fixtures.state import pipeline_state, runs_pipeline

CASES = [Case("alpha", "a short text"), Case("beta", "another short text")]
CALLS = "fake-calls.txt"  # what the fakes were asked to do, a line each, in the working directory


def called(what: str) -> None:
    with open(CALLS, "a") as log:
        log.write(what + "\n")


class FakePipeline:
    def predict(self, text, params):
        return {"text_info": {"tokens": 3, "bucket": 16, "kept": 3, "truncated": False}}


class FakeRunner:
    def run(self, texts):
        return [torch.zeros(4) for _ in texts], [TextInfo(3, 16, 3, False) for _ in texts]


class FakeValidation:
    def __init__(self, compiled, rules):
        self.compiled, self.rules = compiled, rules

    def result(self, check_id):
        called(f"check {check_id}")
        if check_id == os.environ.get("FAKE_CRASH"):
            os.kill(os.getpid(), signal.SIGKILL)
        case, check = check_id.split("::")
        failing = os.environ.get("FAKE_FAILING", "").split(",")
        return CheckResult(case, check, check_id not in failing, "scripted")

    def first_note(self, case_id):
        return False

    def plan(self):
        return ValidationPlan(self.compiled.content_id, self.rules, reused=False)


class FakeStages:
    """The model work of mlcompile.stages (fixtures.state.Stages), scripted."""

    def download_model(self, settings, force=False):
        called("download")
        if os.environ.get("FAKE_DOWNLOAD_ERROR"):
            raise RegistryError(os.environ["FAKE_DOWNLOAD_ERROR"])

        def build(tmp):
            write_json_atomic(tmp / "model_card.json", {"task": settings.model_task})
            write_json_atomic(tmp / "version.json", {"version_id": settings.uncompiled_with_id, "metadata": {}})
            return {"version_id": settings.uncompiled_with_id}

        return stages.stage(settings, "download").ensure(fingerprint(settings.uncompiled_with_id), build,
                                                         force=force)

    def compile_model(self, settings, downloaded, force=False):
        called("compile")
        salt = os.environ.get("FAKE_COMPILE_SALT", "")

        def build(tmp):
            (tmp / "bucket-16.pt").write_text(f"weights{salt}")
            write_json_atomic(tmp / "model_card.json", {"task": settings.model_task})
            CompiledSpec(task=settings.model_task, backend="torchscript", requested_compiler=settings.compiler,
                         compiler_settings={}, dynamic_shapes=False, batch_size=settings.batch_size,
                         buckets=[Bucket(length=16, file="bucket-16.pt")],
                         uncompiled_version=settings.uncompiled_with_id, versions={}).write(tmp)
            return {"backend": "torchscript"}

        return stages.stage(settings, "compile").ensure(fingerprint([downloaded.fingerprint, salt]), build,
                                                        force=force)

    def compile_lengths(self, settings, downloaded):
        return settings.sequence_lengths

    def load_cases(self, settings, downloaded):
        return list(CASES)

    def load_compiled(self, path, settings=None):
        return FakePipeline()

    def load_runner(self, path, settings=None):
        return FakeRunner()

    def load_uncompiled(self, settings, downloaded):
        return FakePipeline()

    def plan_validation(self, settings, downloaded, compiled, cases, rules, recorded=None, compiled_loader=None,
                        uncompiled_loader=None):
        return FakeValidation(compiled, rules)


@pytest.hookimpl(trylast=True)  # after the pipeline plugin's, which makes the run's state
def pytest_configure(config):
    if runs_pipeline(config):
        pipeline_state(config).stages = FakeStages()
    # the fake artifact is no model: no MLmodel for it (and no mlflow import inside pytester's run)
    patch = pytest.MonkeyPatch()
    patch.setattr(pyfunc, "write_mlmodel", lambda files, spec, card, examples: called("write MLmodel"))
    config.add_cleanup(patch.undo)  # in process, the real function is back for the next test
