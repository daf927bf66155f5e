"""Stage 2: the compiled model in outputs/compile, at the requested shapes, loadable and runnable."""

import pytest

from mlcompile import stages
from mlcompile.compiled import CompiledSpec

# Tests reach the stage through its session fixture (built once, or the test fails), never
# through another test's result: under xdist those run on other workers.
pytestmark = pytest.mark.compile


@pytest.fixture(scope="module")
def lengths(pipeline_state, downloaded) -> list[int]:
    """SEQUENCE_LENGTHS, or the lengths chosen from the downloaded model."""
    return pipeline_state.stages.compile_lengths(pipeline_state.settings, downloaded)


def test_compiled_at_the_requested_shapes_from_the_downloaded_version(settings, downloaded, compiled, lengths):
    spec = CompiledSpec.read(compiled.path)
    assert spec.uncompiled_version == downloaded.info["version_id"]
    if settings.compiler == "auto":  # the candidate auto measured fastest among those that passed
        kept = spec.selection.candidates[spec.candidate]
        assert spec.selection.kept == spec.candidate and kept.passed, spec.describe_backend()
        assert all(m.seconds >= kept.seconds for m in spec.selection.candidates.values() if m.passed), (
            spec.describe_backend())
    else:
        assert spec.candidate == settings.compiler
    assert spec.batch_size == settings.batch_size
    assert spec.lengths == (lengths[-1:] if spec.dynamic_shapes else lengths)


def test_compiled_model_loads_and_runs_within_its_lengths(pipeline_state, compiled, cases, lengths):
    # the compiled model alone: the task pipeline around it is the validate stage's
    if cannot_run := stages.cannot_run_here(compiled):  # a Neuron artifact compiled where no NeuronCore is
        pytest.skip(f"{cannot_run}; the validate stage runs it where it can")
    longest = max(cases, key=lambda case: len(case.text))
    (output,), (info,) = pipeline_state.stages.load_runner(compiled.path, pipeline_state.settings).run([longest.text])
    assert info.kept <= lengths[-1] and info.bucket <= lengths[-1]
    assert output.isfinite().all()
