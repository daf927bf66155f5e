"""`bench --growth` without a regression set: a configuration error (exit 10), not a bare SystemExit."""

import pytest

from mlcompile import growth
from mlcompile.errors import ConfigError
from mlcompile.settings import load_settings

pytestmark = pytest.mark.unit


def test_growth_without_a_regression_set_is_a_configuration_error(settings_env):
    settings = load_settings()  # the tests' environment: REGRESSION_SET empty
    assert settings.regression_set is None
    with pytest.raises(ConfigError, match="bench --growth grows the project's regression set, and keywords has none") as error:
        growth.run(settings)
    assert error.value.exit_code == 10
    assert not (settings_env / "outputs").exists()  # refused before downloading anything
