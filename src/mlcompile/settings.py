"""One settings model: environment > config/<env>.env > config/projects/<project>.env > defaults.

`<env>` is `MLCOMPILE_ENV` (dev|prod); it defaults to `prod` when `CI=true`, else `dev`.
`<project>` is `PROJECT`, read from the environment or the env file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal, get_args

from dotenv import dotenv_values
from pydantic import Field, PositiveInt, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .errors import ConfigError
from .registry import MODEL_NAME, Lifecycle

STAGES = ("download", "compile", "validate", "upload")
# neuronx-cc: keep fp32 (its default since 2.22, said so the recorded arguments are complete); the model is a transformer
NEURON_DEFAULT_ARGS = "--auto-cast none --model-type transformer"
# The reference implementation's switches, mapped onto the stage markers.
STAGE_SWITCHES = {
    "download": "COMPILE_PIPELINE_EXECUTION_DOWNLOAD",
    "compile": "COMPILE_PIPELINE_EXECUTION_COMPILE",
    "validate": "COMPILE_PIPELINE_EXECUTION_TEST",
    "upload": "COMPILE_PIPELINE_EXECUTION_UPLOAD",
}


# What MODEL_TASK may be: auto, or a task family (mlcompile.tasks.TASKS).
TaskChoice = Literal["auto", "text-classification", "token-classification", "sentence-embeddings", "keywords"]
TASK_CHOICES = get_args(TaskChoice)


def _comma_list(value):
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, env_file_encoding="utf-8")

    mlcompile_env: Literal["dev", "prod"] = "dev"
    project: str = "keywords"
    # What the model does: auto reads it from the version's card, the MLflow flavor's task or the model's
    # architecture; a task family names it (keywords is an application over sentence embeddings).
    model_task: TaskChoice = "auto"
    # How a token-classification pipeline groups tokens into entities (default: the model card's, else simple).
    aggregation_strategy: Literal["none", "simple", "first", "average", "max"] | None = None

    registry: Literal["local", "mlflow", "neptune"] = "local"
    registry_path: Path = Path("registry")  # REGISTRY=local
    mlflow_tracking_uri: str | None = None  # REGISTRY=mlflow, e.g. http://127.0.0.1:5000
    registry_timeout: float = Field(10.0, gt=0)  # seconds per registry request
    registry_retries: int = Field(2, ge=0)  # retries with backoff on transient errors
    outputs_dir: Path = Path("outputs")
    # auto: neuron on a Neuron host, else the fastest CPU backend that matches the model (measured);
    # or one candidate: a backend (fp32), or backend-precision such as onnx-int8, torchscript-bf16.
    compiler: str = "auto"
    # How the project's model is served, and so how COMPILER=auto times its candidates on the cases:
    # one text per call (latency) or many per call (throughput).
    workload: Literal["requests", "batched"] = "requests"
    # The precisions COMPILER=auto may try (fp32 always stays a candidate); PRECISIONS=fp32 forbids reduced ones.
    precisions: Annotated[list[Literal["fp32", "bf16", "int8"]], NoDecode] = ["fp32", "bf16", "int8"]
    neuron_compiler_args: str = NEURON_DEFAULT_ARGS
    neuron_dynamic_batch: bool = True
    neuron_inline_weights: bool = True  # dynamic batching inlines them whatever this says (as optimum-neuron)
    neuron_data_parallel: bool = False  # replicate a loaded model over every NeuronCore the process sees
    # The instance family compiled for (neuronx-cc --target, unless NEURON_COMPILER_ARGS names one): always
    # passed, so an artifact compiled on a CPU host is the one a Neuron host would compile.
    neuron_target: Literal["inf2", "trn1", "trn1n", "trn2"] = "inf2"

    # Where the versions are: the project (a local registry's folder, MLflow's experiment and project tag;
    # default mlcompile/<PROJECT>) and model; UNCOMPILED_MODEL defaults to UNCOMPILED_WITH_ID's model.
    # UNCOMPILED_WITH_ID is needed unless UNCOMPILED_PATH names a directory to compile.
    uncompiled_project: str
    uncompiled_model: str | None = None
    uncompiled_with_id: str | None = None
    # A Hugging Face model directory to compile instead of a registry version (what save_pretrained or
    # SentenceTransformer.save wrote); `mlcompile import PATH` registers one instead.
    uncompiled_path: Path | None = None
    compiled_project: str
    compiled_model: str
    compiled_lifecycle: Lifecycle = "staging"
    neptune_api_token: SecretStr | None = None

    compile_pipeline_execution_download: bool = False
    compile_pipeline_execution_compile: bool = False
    compile_pipeline_execution_test: bool = False
    compile_pipeline_execution_upload: bool = False

    # Compiled sequence lengths (static-shape buckets), ascending. For keywords the smallest
    # serves candidate words and the largest whole documents. Unset: 32, 128 and the model's maximum
    # (those below it).
    sequence_lengths: Annotated[list[PositiveInt] | None, NoDecode] = None
    batch_size: PositiveInt = 8
    # Dynamic-shape backends (onnx) batch by tokens instead: length-sorted rows while rows x padded length
    # stays within BATCH_TOKENS (at most 64 rows): many short texts share a call, long ones run a few at a time.
    batch_tokens: PositiveInt = 1024
    atol: float = Field(1e-3, ge=0)
    rtol: float = Field(1e-3, ge=0)
    # Tensor tolerances a reduced-precision artifact is validated under; task outcomes stay exact.
    bf16_atol: float = Field(5e-3, ge=0)
    bf16_rtol: float = Field(1e-2, ge=0)
    int8_atol: float = Field(3e-2, ge=0)
    int8_rtol: float = Field(5e-2, ge=0)
    # Hand-written edge cases (JSON: id, text, optional params and note); the generic set suits any text model.
    cases_file: Path = Path("config/cases/generic.json")
    # A regression set (JSON Lines, CSV or Parquet: a `text` column, optional `id` and `params`) validated
    # in batches with aggregate checks; empty: the cases file only.
    regression_set: Path | None = None
    regression_min_agreement: float = Field(1.0, ge=0, le=1)  # task agreement over the set (1: every row)
    regression_invariance_sample: int = Field(16, ge=0)  # rows probed alone against in-batch (0: none)
    # I/N: validate the set's rows with index % N == I - 1 and publish a partial verdict (CI's matrix); the
    # upload merges all N (outputs/validate-shards/) and registers only when every one is there and passed
    regression_shard: str | None = None
    torch_threads: PositiveInt | None = None
    # Loading a reduced-precision artifact on a CPU without a numerics flag its validation had: warn or refuse
    # (read from the environment where it loads, also without a project: mlcompile.machine)
    machine_mismatch: Literal["warn", "refuse"] = "warn"

    # Compile when a version is registered (mlcompile.webhooks): the secret MLflow signs its webhook deliveries
    # with, and where a delivered version is compiled: here (`mlcompile run` in a subprocess) or in CI (a
    # workflow_dispatch of .github/workflows/compile.yaml in WEBHOOK_GITHUB_REPOSITORY at WEBHOOK_GITHUB_REF,
    # with a token that may run workflows; WEBHOOK_GITHUB_API for GitHub Enterprise).
    webhook_secret: SecretStr | None = None
    webhook_dispatch: Literal["local", "github"] = "local"
    webhook_github_repository: str | None = None  # owner/name
    webhook_github_ref: str = "main"
    webhook_github_token: SecretStr | None = None
    webhook_github_api: str = "https://api.github.com"

    @model_validator(mode="before")
    @classmethod
    def _defaults_from_other_settings(cls, values):
        """mlcompile/<PROJECT> for both projects, UNCOMPILED_WITH_ID's model for UNCOMPILED_MODEL: a new
        project's file needs little more than the version to compile and the compiled model's name."""
        if not isinstance(values, dict):
            return values
        given = {key.lower(): key for key in values}
        project = values.get(given.get("project", "project")) or cls.model_fields["project"].default
        for name in ("uncompiled_project", "compiled_project"):
            if not values.get(given.get(name, name)):
                values[name] = f"mlcompile/{project}"
        with_id = values.get(given.get("uncompiled_with_id", "uncompiled_with_id"))
        if not values.get(given.get("uncompiled_model", "uncompiled_model")) and isinstance(with_id, str):
            values["uncompiled_model"] = with_id.rsplit("-", 1)[0] if "-" in with_id else with_id
        return values

    @field_validator("regression_set", "regression_shard", "uncompiled_path", "aggregation_strategy",
                     "sequence_lengths", mode="before")
    @classmethod
    def _empty_is_none(cls, value):
        return None if value in ("", None) else value

    @field_validator("regression_shard")
    @classmethod
    def _shard(cls, value: str | None) -> str | None:
        if value is None:
            return None
        index, _, total = value.partition("/")
        if not (index.isdigit() and total.isdigit() and 1 <= int(index) <= int(total)):
            raise ValueError("must be I/N with 1 <= I <= N, e.g. 2/3 (the second of three shards)")
        return f"{int(index)}/{int(total)}"

    @field_validator("sequence_lengths", "precisions", mode="before")
    @classmethod
    def _split_lists(cls, value):
        return None if value == "" else _comma_list(value)  # empty: unset

    @field_validator("precisions")
    @classmethod
    def _fp32_kept(cls, value: list[str]) -> list[str]:
        return ["fp32", *[p for p in dict.fromkeys(value) if p != "fp32"]]

    @field_validator("compiler")
    @classmethod
    def _known_compiler(cls, value: str) -> str:
        from .compilers import known_candidates

        if value != "auto" and value not in known_candidates():
            raise ValueError(f"unknown compiler; choose auto, {', '.join(known_candidates())}")
        return value

    def tolerance(self, precision: str = "fp32") -> tuple[float, float]:
        """(atol, rtol) of tensors for an artifact of `precision`."""
        if precision == "fp32":
            return self.atol, self.rtol
        return getattr(self, f"{precision}_atol"), getattr(self, f"{precision}_rtol")

    @field_validator("sequence_lengths")
    @classmethod
    def _sorted_unique(cls, value: list[int] | None) -> list[int] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("needs at least one length, e.g. 16,256 (or unset it: 32, 128 and the model's maximum)")
        repeated = sorted({length for length in value if value.count(length) > 1})
        if repeated:
            raise ValueError(f"lists {', '.join(map(str, repeated))} more than once; give each length once")
        return sorted(value)

    @field_validator("uncompiled_model", "compiled_model")
    @classmethod
    def _model_key(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not MODEL_NAME.fullmatch(value):
            raise ValueError("must be a model name of letters, digits, dashes, dots and underscores, starting with "
                             "a letter or digit, e.g. KEYWORDS-COMPILED or user_sentiment")
        return value

    @property
    def selected_stages(self) -> tuple[str, ...]:
        """Stages switched on by COMPILE_PIPELINE_EXECUTION_*; all of them when none is set."""
        chosen = tuple(s for s in STAGES if getattr(self, STAGE_SWITCHES[s].lower()))
        return chosen or STAGES


def config_dir() -> Path:
    return Path(os.environ.get("MLCOMPILE_CONFIG_DIR", "config"))


def _environment_name(environ) -> str:
    if environ.get("MLCOMPILE_ENV"):
        return environ["MLCOMPILE_ENV"]
    return "prod" if str(environ.get("CI", "")).lower() in ("1", "true", "yes") else "dev"


def _lookup(name: str, environ, files: list[Path]) -> tuple[str | None, str]:
    """The value of `name` and where it came from, highest priority first."""
    for key, value in environ.items():
        if key.upper() == name:
            return value, "environment"
    for path in reversed(files):  # later files win
        if path.is_file():
            for key, value in dotenv_values(path).items():
                if key.upper() == name:
                    return value, str(path)
    return None, "default"


def env_files(environ=None) -> list[Path]:
    """The env files in priority order, lowest first."""
    environ = os.environ if environ is None else environ
    base = config_dir()
    env_file = base / f"{_environment_name(environ)}.env"
    project, _ = _lookup("PROJECT", environ, [env_file])
    project = project or Settings.model_fields["project"].default
    return [base / "projects" / f"{project}.env", env_file]


def load_settings(**overrides) -> Settings:
    """Read the settings; raise ConfigError naming every bad variable and where it was read from."""
    environ = os.environ
    problems: list[str] = []
    name = _environment_name(environ)
    if name not in ("dev", "prod"):
        raise ConfigError(f"Invalid settings:\n  MLCOMPILE_ENV={name!r} (environment): must be 'dev' or 'prod'")
    files = env_files(environ)
    project, project_source = _lookup("PROJECT", environ, files[-1:])
    project = project or Settings.model_fields["project"].default
    project_file = config_dir() / "projects" / f"{project}.env"
    if not project_file.is_file():
        known = sorted(p.stem for p in (config_dir() / "projects").glob("*.env"))
        problems.append(
            f"PROJECT={project!r} ({project_source}): no project file {project_file}; "
            f"known projects: {', '.join(known) or 'none'} (is the working directory the repository root?)"
        )
        files = files[-1:]
    settings = None
    try:
        settings = Settings(_env_file=[str(f) for f in files if f.is_file()], **{"mlcompile_env": name, **overrides})
    except ValidationError as exc:
        for error in exc.errors():
            var = str(error["loc"][0]).upper() if error["loc"] else "?"
            value, source = _lookup(var, environ, files)
            if error["type"] == "missing":
                where = ", ".join(["the environment", *(str(f) for f in files)])
                problems.append(f"{var}: not set (looked in {where})")
                continue
            problems.append(f"{_shown(var, value, source)}: {error['msg']}")
    if settings is not None and settings.uncompiled_path is None and settings.uncompiled_with_id is None:
        where = ", ".join(["the environment", *(str(f) for f in files)])
        problems.append(f"UNCOMPILED_WITH_ID: not set (looked in {where}); name the version to compile, e.g. "
                        f"MY-MODEL-1, or set UNCOMPILED_PATH to a model directory")
    if settings is not None and settings.uncompiled_path is not None and not settings.uncompiled_path.is_dir():
        _, source = _lookup("UNCOMPILED_PATH", environ, files)
        problems.append(f"UNCOMPILED_PATH={str(settings.uncompiled_path)!r} ({source}): no such directory; give the "
                        "folder save_pretrained or SentenceTransformer.save wrote (it holds config.json)")
    if settings is not None and not settings.cases_file.is_file():
        _, source = _lookup("CASES_FILE", environ, files)
        problems.append(f"CASES_FILE={str(settings.cases_file)!r} ({source}): file does not exist")
    regression = settings.regression_set if settings is not None else None
    if regression is not None and (not regression.is_file() or regression.suffix not in (".jsonl", ".csv", ".parquet")):
        _, source = _lookup("REGRESSION_SET", environ, files)
        problems.append(f"REGRESSION_SET={str(regression)!r} ({source}): "
                        + ("use JSON Lines, CSV or Parquet (.jsonl, .csv, .parquet)" if regression.is_file()
                           else "file does not exist (empty: validate on the cases file only)"))
    if problems:
        raise ConfigError("Invalid settings:\n  " + "\n  ".join(problems))
    return settings


def _shown(var: str, value: str | None, source: str) -> str:
    shown = "<hidden>" if var.endswith(("TOKEN", "SECRET", "PASSWORD")) else repr(value)
    return f"{var}={shown} ({source})"


def invalid(problems: dict[str, list[str]]) -> ConfigError:
    """One error naming each bad variable, its value and where it was read from, for values that
    can only be judged later (e.g. against the downloaded model)."""
    files = env_files()
    lines = []
    for var, messages in problems.items():
        value, source = _lookup(var, os.environ, files)
        lines.append(f"{_shown(var, value, source)}: {'; '.join(messages)}")
    return ConfigError("Invalid settings:\n  " + "\n  ".join(lines))
