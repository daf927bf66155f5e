"""Stage 4: register the compiled version, only if every check of this exact artifact passed
under the rules the current settings call for."""

import pytest

# Tests reach the stage through its session fixture (built once, or the test fails), never
# through another test's result: under xdist those run on other workers.
pytestmark = pytest.mark.upload


def test_upload_registers_validated_version_with_lineage(uploader, settings, registry, downloaded, compiled):
    uploaded = uploader.register()
    version = registry.get_version(settings.compiled_project, uploaded.info["version_id"])
    assert version.fingerprint == compiled.content_id
    assert version.card["lineage"]["uncompiled_version"] == downloaded.info["version_id"]
    assert version.card["validation"]["passed"] is True
    assert "validation/report.html" in version.files
