"""`mlcompile`: run pipeline stages (wraps pytest), seed demo models, inspect the registry.

Exit codes are in mlcompile.errors.EXIT_CODES (and `mlcompile --help`); `run` returns pytest's
code unchanged, which the pipeline plugin sets to mlcompile's own code for its failures."""

from __future__ import annotations

import argparse
import json
import os
import sys

from .errors import ConfigError, MlcompileError, exit_code_table
from .settings import STAGES, TASK_CHOICES, load_settings


def _run(args) -> int:
    import pytest

    settings = load_settings()  # fail fast, before pytest starts
    stages_ = args.stage or list(settings.selected_stages)
    pytest_args = ["pipeline_tests", "-m", " or ".join(stages_), "-p", "no:cacheprovider"]
    for name in args.rebuild:
        pytest_args += ["--rebuild", name]
    if args.workers:
        pytest_args += ["-n", args.workers, "--dist", "loadgroup"]  # the regression set's checks on one worker
    return int(pytest.main(pytest_args + args.pytest_args))


def _seed(args) -> int:
    from transformers.utils import logging as hf_logging

    from .demo import seed
    from .demo.models import DEMOS
    from .registry import location

    hf_logging.disable_progress_bar()  # per-tensor load/save bars say nothing useful here

    if args.project:
        os.environ["PROJECT"] = args.project
    settings = load_settings()
    if args.if_missing and (settings.uncompiled_path or settings.project not in DEMOS):
        print(f"nothing to seed: project {settings.project!r} compiles "
              f"{settings.uncompiled_path or settings.uncompiled_with_id}, not a demo model")
        return 0
    if args.if_missing and _uncompiled_exists(settings):
        print(f"nothing to seed: {settings.uncompiled_with_id} is in project {settings.uncompiled_project!r} "
              f"of the {settings.registry} registry at {location(settings)}")
        return 0
    version, created = seed(settings)
    what = "registered" if created else "already registered (same content)"
    print(f"{what}: {version.version_id} in project {version.project!r} of the {settings.registry} registry "
          f"at {location(settings)}")
    return 0


def _import(args) -> int:
    from transformers.utils import logging as hf_logging

    from .registry import location
    from .sources.directory import import_directory

    hf_logging.disable_progress_bar()
    settings = load_settings()
    version, created = import_directory(settings, args.path, args.task)
    what = "registered" if created else "already registered (the same files)"
    print(f"{what}: {version.version_id} ({version.card['task']}, {version.card['architecture']}) in project "
          f"{version.project!r} of the {settings.registry} registry at {location(settings)}; compile it with "
          f"UNCOMPILED_WITH_ID={version.version_id} mlcompile run")
    return 0


def _uncompiled_exists(settings) -> bool:
    from .errors import RegistryError
    from .registry import open_registry

    try:
        open_registry(settings).get_version(settings.uncompiled_project, settings.uncompiled_with_id)
    except RegistryError:
        return False
    return True


def _bench(args) -> int:
    from . import bench, overhead

    if args.overhead:
        overhead.run(load_settings())
        return 0
    if args.growth:
        from . import growth

        growth.run(load_settings(), [int(size) for size in args.sizes.split(",")])
        return 0
    chosen = [name for name in (args.variants or "").split(",") if name]
    bench.run(load_settings(), chosen or None, repeat=args.repeat, corpus_size=args.corpus_size)
    return 0


def _list(args) -> int:
    from .registry import open_registry

    settings = load_settings()
    registry = open_registry(settings)
    for project, model in ((settings.uncompiled_project, settings.uncompiled_model),
                           (settings.compiled_project, settings.compiled_model)):
        if model is None:  # UNCOMPILED_PATH: no registered uncompiled model
            continue
        for version in registry.list_versions(project, model):
            line = {"version": version.version_id, "lifecycle": version.lifecycle, "created_at": version.created_at}
            line.update({k: version.metadata[k] for k in ("uncompiled_version", "compiler") if k in version.metadata})
            print(json.dumps(line))
    return 0


def _predict(args) -> int:
    from .pyfunc import load

    model = load(args.model)
    try:
        params = json.loads(args.params) if args.params else None
    except ValueError as exc:
        raise ConfigError(f"--params {args.params!r} is not JSON: {exc}") from None
    hidden = () if args.tensors else model.task.tensor_checks
    for text, prediction in zip(args.texts, model.predict(args.texts, params), strict=True):
        print(json.dumps({"text": text, **{k: v for k, v in prediction.items() if k not in hidden}}))
    return 0


def _settings(args) -> int:
    from typing import get_args

    from pydantic import SecretStr

    settings = load_settings()
    fields = type(settings).model_fields
    for key, value in settings.model_dump().items():
        annotation = fields[key].annotation
        secret = SecretStr in (annotation, *get_args(annotation))  # NEPTUNE_API_TOKEN, WEBHOOK_SECRET, ...
        print(f"{key.upper()}={('<set>' if value else '<not set>') if secret else value}")
    return 0


def _webhook_serve(args) -> int:
    import logging

    from . import webhooks

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    webhooks.serve(load_settings(), args.host, args.port, args.project)
    return 0


def _webhook_create(args) -> int:
    from . import webhooks
    from .registry import location

    settings = load_settings()
    webhook, created = webhooks.create_webhook(settings, args.url, args.name)
    print(f"{'created' if created else 'updated'} webhook {webhook.name!r} (id {webhook.webhook_id}) in MLflow at "
          f"{location(settings)}: {webhooks.EVENT} -> {webhook.url}, signed with WEBHOOK_SECRET; receive it with "
          f"`mlcompile webhook serve`")
    return 0


def _webhook_delete(args) -> int:
    from . import webhooks
    from .registry import location

    settings = load_settings()
    deleted = webhooks.delete_webhook(settings, args.name)
    print(f"deleted {deleted} webhook(s) named {args.name!r} in MLflow at {location(settings)}")
    return 0


def command_line() -> argparse.ArgumentParser:
    """The `mlcompile` command line (compose services' commands are checked against it too)."""
    parser = argparse.ArgumentParser(prog="mlcompile", description=__doc__.split("\n\n")[0],
                                     epilog="exit codes:\n" + exit_code_table(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run pipeline stages as pytest (default: COMPILE_PIPELINE_EXECUTION_* or all)")
    run.add_argument("--stage", action="append", choices=STAGES, help="a stage to run (repeatable)")
    run.add_argument("--rebuild", action="append", default=[], choices=STAGES[:3], help="ignore a reusable artifact")
    run.add_argument("-n", "--workers", help="pytest-xdist workers, e.g. 2 or auto")
    run.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    run.set_defaults(func=_run)
    seed = sub.add_parser("seed", help="register the project's demo uncompiled model")
    seed.add_argument("project", nargs="?", help="project name (default: PROJECT)")
    seed.add_argument("--if-missing", action="store_true", help="do nothing when UNCOMPILED_WITH_ID is in the "
                                                               "registry already (make run, compose's compile-seed)")
    seed.set_defaults(func=_seed)
    imports = sub.add_parser("import", help="register a Hugging Face model directory (save_pretrained or "
                                            "SentenceTransformer.save) as the next version of UNCOMPILED_MODEL, "
                                            "with a model card derived from its config")
    imports.add_argument("path", help="the model directory (it holds config.json)")
    imports.add_argument("--task", default="auto", choices=TASK_CHOICES,
                         help="what the model does (default: from its architecture)")
    imports.set_defaults(func=_import)
    bench = sub.add_parser("bench", help="every variant against the uncompiled pipeline: throughput, latency, "
                                         "load time, size, memory, identical outputs")
    bench.add_argument("--variants", help="comma-separated variants (default: all; the uncompiled pipeline "
                                          "always runs)")
    bench.add_argument("--repeat", type=int, default=3, help="measured passes per variant, interleaved")
    bench.add_argument("--corpus-size", type=int, help="use the first N documents of the corpus and of the agreement set "
                       "(default: all)")
    bench.add_argument("--overhead", action="store_true", help="instead: the pytest pipeline cold and warm against "
                                                              "the same steps as a plain script")
    bench.add_argument("--growth", action="store_true", help="instead: the validate stage (-n 1 and -n 2) against the "
                                                             "plain pipelines as the regression set grows")
    bench.add_argument("--sizes", default="100,1000,10000", help="rows of the grown regression set (--growth)")
    bench.set_defaults(func=_bench)
    predict = sub.add_parser("predict", help="predict with a compiled version: outputs/compile, a registered "
                                             "version's directory or files, or an MLflow models:/ URI")
    predict.add_argument("model", help="e.g. models:/KEYWORDS-COMPILED@staging (MLFLOW_TRACKING_URI names the server)")
    predict.add_argument("texts", nargs="+", help="texts to predict, one JSON line each")
    predict.add_argument("--params", help='the task\'s parameters as JSON, e.g. \'{"top_n": 5}\' (default: the card\'s)')
    predict.add_argument("--tensors", action="store_true", help="also print the tensors validation compares")
    predict.set_defaults(func=_predict)
    sub.add_parser("list", help="list the project's uncompiled and compiled versions").set_defaults(func=_list)
    sub.add_parser("settings", help="print the resolved settings (secrets hidden)").set_defaults(func=_settings)
    webhook = sub.add_parser("webhook", help="compile when a version is registered: MLflow registry webhooks")
    hooks = webhook.add_subparsers(dest="webhook_command", required=True)
    serve = hooks.add_parser("serve", help="receive MLflow's signed model_version.created deliveries and compile "
                                           "each new version of a served project's UNCOMPILED_MODEL (WEBHOOK_DISPATCH)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port to listen on (default: 8765)")
    serve.add_argument("--project", action="append", help="a project to serve (repeatable; default: PROJECT)")
    serve.set_defaults(func=_webhook_serve)
    create = hooks.add_parser("create", help="create (or update, by name) the MLflow webhook posting "
                                             "model_version.created to the receiver, signed with WEBHOOK_SECRET")
    create.add_argument("--url", required=True, help="the receiver's URL, e.g. http://127.0.0.1:8765/")
    create.add_argument("--name", default="mlcompile", help="the webhook's name in MLflow (default: mlcompile)")
    create.set_defaults(func=_webhook_create)
    delete = hooks.add_parser("delete", help="delete the MLflow webhook of that name")
    delete.add_argument("--name", default="mlcompile", help="the webhook's name in MLflow (default: mlcompile)")
    delete.set_defaults(func=_webhook_delete)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = command_line().parse_args(argv)
    try:
        return args.func(args)
    except MlcompileError as exc:
        print(f"mlcompile: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
