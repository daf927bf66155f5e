"""MLflow's model registry (a server you run yourself, e.g. `make mlflow-server`).

A model (`KEYWORDS-COMPILED`) is an MLflow registered model tagged with its project; a version
(`KEYWORDS-COMPILED-3`) is MLflow model version 3, made from a LoggedModel (`models:/m-...`) that holds
the version's files (for compiled versions an MLflow pyfunc model: see mlcompile.pyfunc) and was
produced by a run in the experiment named after the project. The run also holds `model_card.json` and
`files.json` (sha256 per file, checked after every download), the datasets the version was validated
on as its inputs, and the version's details as parameters, metrics (also on the LoggedModel, each
linked to its dataset) and its note. Versions registered before LoggedModels (source: the run's
`files/` folder) still download and load. Metadata, the
fingerprint and the link to the version it was made from are version tags; lifecycles are aliases
(`staging`, `production`, `archived`), since MLflow deprecated stages.
HTTP timeouts and retries (with backoff) come from REGISTRY_TIMEOUT and REGISTRY_RETRIES.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ..artifacts import hash_tree
from ..errors import RegistryError
from . import LIFECYCLES, MODEL_CARD, Dataset, VersionDetails, VersionInfo, copy_verified, split_version_id

CHECKSUMS = "files.json"
PROJECT_TAG = "mlcompile.project"
FINGERPRINT_TAG = "fingerprint"
MODEL_TYPE = "mlcompile-compiled"  # the LoggedModel's type: search and compare compiled models by it
UNCOMPILED_TYPE = "mlcompile-uncompiled"  # a trained version mlcompile registered (`mlcompile seed`, `import`)
DATASET_SOURCE_TYPE = "mlcompile"  # where a validation dataset comes from: a file or a registry version
BATCH = 100  # parameters per log_batch call (MLflow's limit)
NOTE_TAG = "mlflow.note.content"  # a run's or a logged model's description in MLflow's pages


def redacted(uri: str) -> str:
    """The tracking URI without any user:password part."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)) if parts.netloc else uri


def logged_model_id(version) -> str | None:
    """MLflow 3's LoggedModel behind a version: its source is `models:/m-<id>` (the server leaves
    `model_id` empty)."""
    if getattr(version, "model_id", None):
        return version.model_id
    source = str(getattr(version, "source", "") or "")
    found = source.removeprefix("models:/")
    return found if source.startswith("models:/m-") and "/" not in found else None


def _dataset(found) -> Dataset:
    """A run's dataset input as mlcompile's Dataset."""
    dataset = found.dataset
    context = next((tag.value for tag in found.tags if tag.key == "mlflow.data.context"), "")
    return Dataset(dataset.name, dataset.digest, json.loads(dataset.source).get("uri", dataset.source),
                   json.loads(dataset.profile or "{}").get("num_rows", 0), context)


class MlflowRegistry:
    kind = "mlflow"

    def __init__(self, tracking_uri: str | None, timeout: float = 10.0, retries: int = 2):
        if not tracking_uri:
            raise RegistryError("REGISTRY=mlflow needs MLFLOW_TRACKING_URI, e.g. http://127.0.0.1:5000 "
                                "(start a server with `make mlflow-server`)")
        # mlflow reads these at each request: bounded waits on a server that is down
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(int(max(1, timeout)))
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(retries)
        os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = "1"
        os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_JITTER"] = "0.5"
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per file in the run's log
        from mlflow import MlflowClient

        self.uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def __repr__(self) -> str:
        return f"MlflowRegistry({redacted(self.uri)!r})"

    def describe(self) -> dict:
        return {"kind": self.kind, "tracking_uri": redacted(self.uri)}

    def _call(self, what: str, fn, missing=None):
        """Run a client call; MLflow and connection errors become one clear RegistryError."""
        from mlflow.exceptions import MlflowException

        try:
            return fn()
        except MlflowException as exc:
            if missing is not None and exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise RegistryError(missing() if callable(missing) else missing) from None
            message = str(exc.message).splitlines()[0] if exc.message else type(exc).__name__
            if "Max retries exceeded" in message or "Connection" in message or "API request" in message:
                raise RegistryError(f"MLflow server at {redacted(self.uri)} cannot be reached ({what}); is it "
                                    f"running? (`make mlflow-server`): {message[:300]}") from None
            raise RegistryError(f"MLflow at {redacted(self.uri)}: {what} failed: {message[:500]}") from None
        except OSError as exc:
            raise RegistryError(f"MLflow server at {redacted(self.uri)} cannot be reached ({what}): {exc}") from None

    # reading -----------------------------------------------------------
    def _model(self, project: str, model: str):
        registered = self._call(
            f"get model {model}", lambda: self.client.get_registered_model(model),
            missing=f"model {model} not found in the MLflow registry at {redacted(self.uri)}; register it first, "
                    f"e.g. `mlcompile seed <project>` for the demo models",
        )
        if registered.tags.get(PROJECT_TAG) != project:
            raise RegistryError(f"model {model} in MLflow belongs to project {registered.tags.get(PROJECT_TAG)!r}, "
                                f"not {project!r}")
        return registered

    def _info(self, project: str, model: str, mv) -> VersionInfo:
        with tempfile.TemporaryDirectory(prefix="mlcompile-mlflow-") as tmp:
            for name in (MODEL_CARD, CHECKSUMS):
                self._call(f"download {name} of {model}-{mv.version}",
                           lambda name=name: self.client.download_artifacts(mv.run_id, name, tmp))
            try:
                card = json.loads((Path(tmp) / MODEL_CARD).read_text())
                files = json.loads((Path(tmp) / CHECKSUMS).read_text())
            except ValueError as exc:
                raise RegistryError(f"{model}-{mv.version}: model card or checksums do not parse: {exc}") from None
        lifecycle = next((alias for alias in mv.aliases if alias in LIFECYCLES), "none")
        metadata = {k: v for k, v in mv.tags.items()}
        run = self._call(f"get the run of {model}-{mv.version}", lambda: self.client.get_run(mv.run_id))
        details = VersionDetails(mv.description or "", dict(run.data.params), dict(run.data.metrics),
                                 datasets=tuple(_dataset(found) for found in run.inputs.dataset_inputs),
                                 metric_datasets=self._metric_datasets(mv))
        return VersionInfo(project, model, f"{model}-{mv.version}", lifecycle, card, metadata, files,
                           time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mv.creation_timestamp / 1000)), details)

    def _metric_datasets(self, mv) -> dict[str, str]:
        """Per metric of the version's LoggedModel, the dataset it was measured on."""
        model_id = logged_model_id(mv)
        if not model_id:  # registered from a run's files (before LoggedModels)
            return {}
        logged = self._call(f"get logged model {model_id}", lambda: self.client.get_logged_model(model_id))
        return {metric.key: metric.dataset_name for metric in logged.metrics or [] if metric.dataset_name}

    def _model_version(self, project: str, version_id: str):
        model, number = split_version_id(version_id)
        self._model(project, model)

        def missing() -> str:  # listed only on a miss: it downloads every version's card
            known = ", ".join(v.version_id for v in self.list_versions(project, model)) or "none"
            return (f"model version {version_id} not found in project {project!r} of the MLflow registry at "
                    f"{redacted(self.uri)} (known versions of {model}: {known})")

        return self._call(f"get {version_id}", lambda: self.client.get_model_version(model, str(number)), missing)

    # versions MLflow's own flavors logged (mlcompile.sources.mlflow_flavors) ----------------
    def is_mlcompile_model(self, model: str) -> bool:
        """Whether `model` is one mlcompile registered (tagged with its project), not a user's own."""
        registered = self._call(f"get model {model}", lambda: self.client.get_registered_model(model),
                                missing=f"model {model} not found in the MLflow registry at {redacted(self.uri)}")
        return PROJECT_TAG in registered.tags

    def model_version(self, model: str, number: int):
        """MLflow's record of a version (name, source, run, tags)."""

        def missing() -> str:
            known = ", ".join(f"{model}-{mv.version}" for mv in self._versions(model)) or "none"
            return (f"model version {model}-{number} not found in the MLflow registry at {redacted(self.uri)} "
                    f"(known versions of {model}: {known})")

        return self._call(f"get {model}-{number}", lambda: self.client.get_model_version(model, str(number)), missing)

    def download_model(self, model: str, number: int, dest: Path) -> None:
        """The version's model files (what `models:/<model>/<number>` holds) into dest."""
        import mlflow.artifacts

        dest.mkdir(parents=True, exist_ok=True)
        self._call(f"download models:/{model}/{number}", lambda: mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{model}/{number}", dst_path=str(dest), tracking_uri=self.uri, registry_uri=self.uri))

    # mlcompile's versions ------------------------------------------------
    def get_version(self, project: str, version_id: str) -> VersionInfo:
        return self._info(project, split_version_id(version_id)[0], self._model_version(project, version_id))

    def _versions(self, model: str, extra: str = "") -> list:
        found = self._call(f"search versions of {model}",
                           lambda: self.client.search_model_versions(f"name='{model}'{extra}"))
        return sorted(found, key=lambda mv: int(mv.version))

    def list_versions(self, project: str, model: str) -> list[VersionInfo]:
        try:
            self._model(project, model)
        except RegistryError:
            return []
        return [self._info(project, model, mv) for mv in self._versions(model)]

    def find_version(self, project: str, model: str, fingerprint: str) -> VersionInfo | None:
        try:
            self._model(project, model)
        except RegistryError:
            return None
        found = self._versions(model, f" and tags.{FINGERPRINT_TAG}='{fingerprint}'")
        return self._info(project, model, found[0]) if found else None

    def download(self, project: str, version_id: str, dest: Path) -> VersionInfo:
        mv = self._model_version(project, version_id)
        version = self._info(project, split_version_id(version_id)[0], mv)
        with tempfile.TemporaryDirectory(prefix="mlcompile-mlflow-") as tmp:
            copy_verified(self._download_files(version_id, mv, Path(tmp)), version, dest)
        return version

    def _download_files(self, version_id: str, mv, tmp: Path) -> Path:
        """The version's files: its LoggedModel's artifacts, or (registered from a run's `files/`, the
        layout before LoggedModels) that folder of its run."""
        model_id = logged_model_id(mv)
        if model_id:
            import mlflow.artifacts

            logged = self._call(f"get the logged model of {version_id}", lambda: self.client.get_logged_model(model_id))
            return Path(self._call(f"download files of {version_id}", lambda: mlflow.artifacts.download_artifacts(
                artifact_uri=logged.artifact_location, dst_path=str(tmp), tracking_uri=self.uri)))
        self._call(f"download files of {version_id}", lambda: self.client.download_artifacts(mv.run_id, "files", str(tmp)))
        return tmp / "files"

    # writing -----------------------------------------------------------
    def register(
        self, project: str, model: str, files: Path, card: dict, metadata: dict, fingerprint: str,
        details: VersionDetails | None = None,
    ) -> tuple[VersionInfo, bool]:
        """A run that produced a LoggedModel holding the files (an MLflow model when they have an MLmodel),
        the datasets the details name as the run's inputs, the details as parameters (the run's and the
        model's), metrics (linked to the model and to their dataset) and note, and a model version made
        from that LoggedModel, so MLflow shows its `model_id`, metrics and parameters on the version."""
        details = details or VersionDetails()
        split_version_id(f"{model}-1")  # validates the model key
        existing = self.find_version(project, model, fingerprint)
        if existing is not None:
            return existing, False
        experiment_id = self._experiment_id(project)
        run_tags = {"mlflow.runName": model}
        if details.description:
            run_tags[NOTE_TAG] = details.description  # the run page's description
        run = self._call("create run", lambda: self.client.create_run(experiment_id, tags=run_tags))
        run_id = run.info.run_id
        params = {key: str(value)[:6000] for key, value in details.params.items()}
        logged = None
        try:
            logged = self._call(f"create a logged model for {model}", lambda: self.client.create_logged_model(
                experiment_id, name=model, source_run_id=run_id, params=params or None,
                model_type=MODEL_TYPE if card.get("compiled") else UNCOMPILED_TYPE,
                tags={PROJECT_TAG: project, FINGERPRINT_TAG: fingerprint,
                      **({NOTE_TAG: details.description} if details.description else {})}))
            model_id = logged.model_id
            self._call("upload files", lambda: self.client.log_model_artifacts(model_id, str(files)))
            self._call("upload card", lambda: self.client.log_dict(run_id, card, MODEL_CARD))
            self._call("upload checksums", lambda: self.client.log_dict(run_id, hash_tree(files), CHECKSUMS))
            self._log_validation(run_id, model_id, details)
            self._call("finish the logged model", lambda: self.client.finalize_logged_model(model_id, "READY"))
            self._ensure_model(project, model, details.model_description)
            tags = {**{k: str(v) for k, v in metadata.items()}, **self._lineage_tags(metadata),
                    FINGERPRINT_TAG: fingerprint}
            mv = self._call(f"create a version of {model}", lambda: self.client.create_model_version(
                model, source=f"models:/{model_id}", run_id=run_id, tags=tags, description=details.description,
                model_id=model_id))
        except BaseException:
            # Nothing was registered: the run and the logged model keep the partial upload, marked failed.
            if logged is not None:
                self._call("mark the logged model failed",
                           lambda: self.client.finalize_logged_model(logged.model_id, "FAILED"))
            self._call("mark run failed", lambda: self.client.set_terminated(run_id, status="FAILED"))
            raise
        self._call("finish run", lambda: self.client.set_terminated(run_id))
        return self._info(project, model, mv), True

    def _log_validation(self, run_id: str, model_id: str, details: VersionDetails) -> None:
        """The datasets as the run's inputs, the parameters, and each metric on the run and the logged
        model, linked to the dataset it was measured on."""
        from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param

        inputs = [DatasetInput(Dataset(d.name, d.digest, DATASET_SOURCE_TYPE, json.dumps({"uri": d.source}),
                                       profile=json.dumps({"num_rows": d.rows})),
                               [InputTag("mlflow.data.context", d.context)]) for d in details.datasets]
        if inputs:
            self._call("log datasets", lambda: self.client.log_inputs(run_id, datasets=inputs))
        now = int(time.time() * 1000)

        def metric(key: str, value: float) -> Metric:
            dataset = details.dataset_of(key)
            return Metric(key, float(value), now, 0, model_id=model_id, dataset_name=dataset and dataset.name,
                          dataset_digest=dataset and dataset.digest)

        metrics = [metric(key, value) for key, value in details.metrics.items()]
        params = [Param(key, str(value)[:6000]) for key, value in details.params.items()]
        for start in range(0, max(len(metrics), len(params), 1), BATCH):  # MLflow takes 1000 metrics, 100 params a call
            self._call("log parameters and metrics", lambda start=start: self.client.log_batch(
                run_id, metrics=metrics[start:start + BATCH], params=params[start:start + BATCH]))

    def _experiment_id(self, project: str) -> str:
        """The project's experiment, created if missing; another job creating it at the same moment (CI's
        matrix registering into one server) is not an error."""
        from mlflow.exceptions import MlflowException

        experiment = self._call(f"get experiment {project}", lambda: self.client.get_experiment_by_name(project))
        if experiment:
            return experiment.experiment_id

        def create() -> str:
            try:
                return self.client.create_experiment(project)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                return self.client.get_experiment_by_name(project).experiment_id

        return self._call(f"create experiment {project}", create)

    def _lineage_tags(self, metadata: dict) -> dict:
        """The version it was made from, as model name, number and, when it is in this server, its URI
        (and the LoggedModel behind it, where MLflow has one)."""
        source = metadata.get("uncompiled_version")
        try:
            model, number = split_version_id(source or "")
        except RegistryError:  # not a registry version (a directory on disk): its source URI says what it was
            return {}
        from mlflow.exceptions import MlflowException

        tags = {"uncompiled_model": model, "uncompiled_model_version": str(number)}
        try:
            found = self.client.get_model_version(model, str(number))
        except MlflowException:  # elsewhere (another registry): name and number say what it was
            return tags
        tags["uncompiled_model_uri"] = f"models:/{model}/{number}"
        if logged_model_id(found):
            tags["uncompiled_logged_model_id"] = logged_model_id(found)
        return tags

    def _ensure_model(self, project: str, model: str, description: str = "") -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(model, tags={PROJECT_TAG: project}, description=description or None)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            if description and not self.client.get_registered_model(model).description:
                self.client.update_registered_model(model, description=description)
        self._model(project, model)

    def set_lifecycle(self, project: str, version_id: str, lifecycle: str) -> VersionInfo:
        if lifecycle not in LIFECYCLES:
            raise RegistryError(f"lifecycle {lifecycle!r} is not one of {', '.join(LIFECYCLES)}")
        version = self.get_version(project, version_id)
        model, number = split_version_id(version_id)
        for alias in LIFECYCLES[1:]:
            if alias != lifecycle and version.lifecycle == alias:
                self._call(f"remove alias {alias}",
                           lambda alias=alias: self.client.delete_registered_model_alias(model, alias))
        if lifecycle != "none":
            self._call(f"set alias {lifecycle}",
                       lambda: self.client.set_registered_model_alias(model, lifecycle, str(number)))
        return self.get_version(project, version_id)
