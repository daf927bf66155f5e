"""Stage 4: register the compiled version, only if every check of this exact artifact passed."""

import pytest

from fixtures.plugin import upload_or_fail

pytestmark = pytest.mark.upload


@pytest.mark.dependency(name="upload")
def test_upload(settings, compiled, upload_verdict, pipeline):
    pipeline.artifacts["upload"] = upload_or_fail(settings, compiled, upload_verdict)


@pytest.mark.dependency(depends=["upload"])
def test_registered_version_has_lineage(settings, registry, compiled, pipeline):
    record = pipeline.artifacts["upload"].info
    version = registry.get_version(settings.compiled_project, record["version_id"])
    assert version.fingerprint == compiled.fingerprint
    assert version.card["lineage"]["uncompiled_version"] == settings.uncompiled_with_id
    assert version.card["validation"]["passed"] is True
    assert "validation/report.html" in version.files
