"""`-m` read without pytest's private expression module: which stages a marker expression keeps."""

import pytest

from fixtures.configure import marker_selected

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("markexpr, marker, kept", [
    ("validate", "validate", True),
    ("not validate", "validate", False),
    ("download or compile", "validate", False),
    ("(compile or validate) and not upload", "validate", True),
    ("(compile or validate) and not upload", "upload", False),
    ("not (unit or integration)", "functional", True),
    ("unit", "integration", False),
    ("validate(strict=1)", "validate", True),  # marker arguments: in doubt, kept
])
def test_a_marker_expression_keeps_the_stages_pytest_keeps(markexpr, marker, kept):
    assert marker_selected(markexpr, marker) is kept
