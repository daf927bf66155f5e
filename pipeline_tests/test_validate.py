"""Stage 3: one test per check the cases call for (each case's checks, and the compiled artifact's
coverage), the compiled model against the uncompiled one on CPU. The plugin parametrizes
`check_id` from the cases."""

import pytest

pytestmark = pytest.mark.validate


def test_check(checker, check_id):
    checker.check(check_id)
