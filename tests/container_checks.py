"""Checks of the container and CI files that need no Docker engine, as functions returning the problems
they find, so a test can run each on the repository (none) and on a broken copy (the problem, named).
The linters themselves (hadolint, actionlint, check-jsonschema's compose schema) run through `make lint`."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
import subprocess
from configparser import ConfigParser
from pathlib import Path

import yaml

PIPELINE_SERVICES = {"compile": None, "compile-download-model": "download", "compile-compile-model": "compile",
                     "compile-validate-model": "validate", "compile-upload-model": "upload"}
TEST_SERVICES = {"compile-unit": "unit", "compile-integration": "integration", "compile-functional": "functional"}
SERVICES = {*PIPELINE_SERVICES, *TEST_SERVICES, "compile-seed", "mlflow"}
ENV_FILES = {"docker-compose.dev.yaml": "config/dev.env", "docker-compose.ci.yaml": "config/prod.env"}
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "KEY")


def dockerfile_stages(repo: Path) -> dict[str, dict]:
    """Each stage of the Dockerfile: its FROM image and its ENTRYPOINT (inherited from a stage it builds on)."""
    stages: dict[str, dict] = {}
    current = None
    for line in (repo / "Dockerfile").read_text().splitlines():
        if found := re.match(r"FROM\s+(\S+)\s+AS\s+(\S+)", line):
            image, current = found.groups()
            stages[current] = {"from": image, "entrypoint": stages.get(image, {}).get("entrypoint")}
        elif current and (found := re.match(r"ENTRYPOINT\s+(\[.*\])", line)):
            stages[current]["entrypoint"] = yaml.safe_load(found.group(1))
    return stages


def _merge(base, override):
    """Compose's merge of one file over another, as far as these files use it: mappings merge key by key,
    anything else (command, entrypoint, lists) is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{key: _merge(base.get(key), value) for key, value in override.items()}}
    return override


def compose_services(repo: Path, *overrides: str) -> dict[str, dict]:
    merged: dict = {}
    for name in ("docker-compose.yaml", *overrides):
        merged = _merge(merged, yaml.safe_load((repo / name).read_text()) or {})
    return merged.get("services", {})


def _argparse_error(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            parser.parse_args(argv)
        except SystemExit:
            return stderr.getvalue().strip().splitlines()[-1]
    return None


def _markers(repo: Path) -> set[str]:
    ini = ConfigParser()
    ini.read(repo / "pytest.ini")
    return {line.split(":")[0].strip() for line in ini["pytest"]["markers"].splitlines() if line.strip()}


def command_problem(argv: list[str], repo: Path) -> str | None:
    """Why `argv` (entrypoint + command) is not a command of this project, or None if it is one."""
    program = Path(argv[0]).name if argv else ""
    if program == "mlcompile":
        from mlcompile.cli import command_line

        return _argparse_error(command_line(), argv[1:])
    if program == "python" and argv[1:3] == ["-m", "pytest"]:
        marker = argv[argv.index("-m", 3) + 1] if "-m" in argv[3:] else None
        if marker is not None and marker not in _markers(repo):
            return f"-m {marker}: not a marker in pytest.ini (markers: {', '.join(sorted(_markers(repo)))})"
        return None
    if program == "mlflow":
        import click
        from mlflow.cli import cli

        command = cli.get_command(click.Context(cli), argv[1]) if len(argv) > 1 else None
        if command is None:
            return f"no mlflow command {' '.join(argv[1:2])!r}"
        try:
            command.make_context(argv[1], list(argv[2:]))
        except click.ClickException as exc:
            return exc.format_message()
        return None
    return f"{program!r} is neither mlcompile, pytest nor mlflow"


def compose_problems(repo: Path) -> list[str]:
    """The services users know, each running an existing command, stages handing over through one outputs
    volume, build targets that are Dockerfile stages, env files that exist, no secret values."""
    problems = []
    stages = dockerfile_stages(repo)
    for overrides in ([], ["docker-compose.dev.yaml"], ["docker-compose.ci.yaml"],
                      ["docker-compose.ci.yaml", "docker-compose.neuron.yaml"]):
        where = " + ".join(["docker-compose.yaml", *overrides])
        services = compose_services(repo, *overrides)
        problems += [f"{where}: no service {name!r}" for name in sorted(SERVICES - set(services))]
        for name, service in services.items():
            target = service.get("build", {}).get("target")
            if target not in stages:
                problems.append(f"{where}: {name} builds target {target!r}, not a Dockerfile stage "
                                f"({', '.join(stages)})")
                continue
            entrypoint = service.get("entrypoint") or stages[target]["entrypoint"] or []
            argv = [*entrypoint, *service.get("command", [])]
            if problem := command_problem(argv, repo):
                problems.append(f"{where}: {name} runs {shlex.join(argv)}: {problem}")
            if name in PIPELINE_SERVICES or name == "compile-seed":
                if "outputs:/app/outputs" not in service.get("volumes", []):
                    problems.append(f"{where}: {name} does not mount the shared outputs volume at /app/outputs")
            if (stage := PIPELINE_SERVICES.get(name)) and argv[-2:] != ["--stage", stage]:
                problems.append(f"{where}: {name} should run only the {stage} stage, runs {shlex.join(argv)}")
            if (level := TEST_SERVICES.get(name)) and argv[-2:] != ["-m", level]:
                problems.append(f"{where}: {name} should run the {level} tests, runs {shlex.join(argv)}")
            for key, value in (service.get("environment") or {}).items():
                if any(word in key for word in SECRET_WORDS) and value is not None and not str(value).startswith("${"):
                    problems.append(f"{where}: {name} sets {key} to a literal value; pass it from the environment")
            expected_env = ENV_FILES.get(overrides[0]) if overrides else None
            if expected_env and name != "mlflow" and expected_env not in service.get("env_file", []):
                problems.append(f"{where}: {name} does not read {expected_env}")
        for name, service in services.items():
            problems += [f"{where}: {name} reads {path}, which does not exist"
                         for path in service.get("env_file", []) if not (repo / path).is_file()]
    return problems


def readme_make_targets(text: str) -> set[str]:
    """The make targets the README's code names, <project> as keywords and alternatives a|b|c expanded
    (`make projects.unit|integration|functional/<project>` is three targets)."""
    fenced = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
    code = "\n".join([*re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S)), *fenced])
    targets = set()
    for word in re.findall(r"(?:^|\s)make ([a-z][\w.\\|<>/-]*)", code, flags=re.M):
        options = word.replace("\\|", "|").replace("<project>", "keywords").split("|")
        prefix = options[0].rsplit(".", 1)[0] + "." if len(options) > 1 and "." in options[0] else ""
        suffix = "/" + options[-1].split("/", 1)[1] if len(options) > 1 and "/" in options[-1] else ""
        targets |= {prefix + option.removeprefix(prefix).removesuffix(suffix) + suffix for option in options}
    return targets


def make_target_problems(repo: Path, targets: set[str]) -> list[str]:
    problems = []
    for target in sorted(targets):
        done = subprocess.run(["make", "-n", "-C", str(repo), "VENV=/nonexistent-venv", target, "COMPONENT=compile",
                               "TASK=validate-model"], capture_output=True, text=True, timeout=60)
        if f"No rule to make target '{target}'" in done.stderr:
            problems.append(f"the README names `make {target}`, which the Makefile does not have")
    return problems
