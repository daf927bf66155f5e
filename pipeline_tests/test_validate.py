"""Stage 3: one test per case and check, compiled against the uncompiled pipeline on CPU."""

import pytest

from fixtures.plugin import check_ids, check_validation

pytestmark = pytest.mark.validate


def pytest_generate_tests(metafunc):
    if "check_id" in metafunc.fixturenames:
        ids = check_ids(metafunc.config)
        metafunc.parametrize("check_id", ids, ids=ids)


def test_check(validation, check_id, record_property):
    check_validation(validation, check_id, record_property)
