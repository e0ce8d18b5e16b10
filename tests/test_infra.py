"""infra/: every manifest parses and agrees with the code it deploys (no Docker or Kubernetes needed).

What drifts silently between a repository and its deployment files is checked here: job modules
and subcommands that no longer exist, arguments a job no longer takes, config paths and keys,
Dockerfiles that install the project before torch (pulling the CUDA build), Ray versions that
differ between images, GPU groups without GPUs, and credentials written into a manifest.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
INFRA = REPO / "infra"
K8S = INFRA / "k8s"
COMPOSE = INFRA / "compose.yaml"
DOCKERFILE, DOCKERFILE_CUDA = INFRA / "docker" / "Dockerfile", INFRA / "docker" / "Dockerfile.cuda"
TORCH_PIN = "torch==2.13.0"
# Subcommands the architecture promises, which may exist as jobs/<name>.py before jobs/cli.py lists them.
PLANNED_SUBCOMMANDS = ("train", "compare")
CREDENTIAL_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
SECRET_PATTERNS = {
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret access key": re.compile(r"(?i)secret_?access_?key\W{1,4}[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
}
SHELL_SEPARATORS = {";", "&&", "||", "|", "&"}


# ---------------------------------------------------------------- loading


def yaml_files() -> list[Path]:
    return sorted(p for p in INFRA.rglob("*") if p.suffix in (".yaml", ".yml"))


def load_all(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def k8s_docs(kind: str) -> list[tuple[Path, dict]]:
    return [(p, d) for p in sorted(K8S.glob("*.yaml")) for d in load_all(p) if d.get("kind") == kind]


def compose_services() -> dict[str, dict]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def walk(node, key: str):
    """Every value stored under `key` anywhere in a nested YAML document."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            yield from walk(v, key)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item, key)


def instructions(path: Path) -> list[tuple[str, str]]:
    """A Dockerfile as (INSTRUCTION, arguments), continuation lines joined and comments dropped."""
    out, pending = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or not stripped:
            continue
        pending += " " + stripped.rstrip("\\").strip()
        if not stripped.endswith("\\"):
            keyword, _, args = pending.strip().partition(" ")
            out.append((keyword.upper(), args.strip()))
            pending = ""
    return out


# ---------------------------------------------------------------- commands that run jobs


def command_lines(value) -> list[list[str]]:
    """Token lists of the commands in a manifest field: an exec list, a shell string or script."""
    if value is None:
        return []
    if isinstance(value, list):
        tokens = [str(t) for t in value]
        nested = [line for t in tokens if re.search(r"\s", t) for line in command_lines(t)]
        return [tokens] + nested
    lines = []
    for line in str(value).replace("\\\n", " ").splitlines():
        tokens = shlex.split(line, comments=True)
        if tokens:
            lines.append(tokens)
            lines += [sub for t in tokens if re.search(r"\s", t) for sub in command_lines(t)]
    return lines


def invocations(tokens: list[str]) -> list[tuple[str, list[str]]]:
    """(job, argv) for each `python -m jobs.<job>` or `imgenhance <subcommand>` in a token list."""
    found = []
    for i, token in enumerate(tokens):
        if token == "-m" and i + 1 < len(tokens) and tokens[i + 1].startswith("jobs."):
            job, start = tokens[i + 1], i + 2
        elif Path(token).name == "imgenhance" and i + 1 < len(tokens):
            job, start = f"imgenhance {tokens[i + 1]}", i + 2
        else:
            continue
        argv = []
        for arg in tokens[start:]:
            if arg in SHELL_SEPARATORS:
                break
            argv.append(arg)
        found.append((job, argv))
    return found


def manifest_commands() -> list[tuple[str, list[str]]]:
    """(where, tokens) of every command in compose, the Kubernetes manifests and the launcher config."""
    out = []
    for name, service in compose_services().items():
        for field in ("entrypoint", "command"):
            out += [(f"compose {name}.{field}", t) for t in command_lines(service.get(field))]
    for path in sorted(K8S.glob("*.yaml")):
        for doc in load_all(path):
            out += [(f"{path.name} entrypoint", t) for t in command_lines(doc.get("spec", {}).get("entrypoint"))]
            for container in walk(doc, "containers"):
                for c in container:
                    for field in ("command", "args"):
                        out += [(f"{path.name} {c['name']}.{field}", t) for t in command_lines(c.get(field))]
    launcher = yaml.safe_load((INFRA / "ray" / "cluster.yaml").read_text())
    for key, value in launcher.items():
        if key.endswith("_commands"):
            out += [(f"cluster.yaml {key}", t) for cmd in value for t in command_lines(cmd)]
    return out


def job_invocations() -> list[tuple[str, str, list[str]]]:
    return [(where, job, argv) for where, tokens in manifest_commands() for job, argv in invocations(tokens)]


def job_module(job: str):
    """The module behind `jobs.<name>` or `imgenhance <subcommand>`, or a reason it has none."""
    if job.startswith("jobs."):
        name = job.split(".", 1)[1]
        assert (REPO / "jobs" / f"{name}.py").is_file(), f"{job}: no jobs/{name}.py"
        return importlib.import_module(job)
    from jobs.cli import COMMANDS

    sub = job.split()[1]
    if sub in COMMANDS:
        return COMMANDS[sub]
    assert sub in PLANNED_SUBCOMMANDS and (REPO / "jobs" / f"{sub}.py").is_file(), (
        f"`{job}`: {sub!r} is not an imgenhance subcommand ({sorted(COMMANDS)}) nor a planned one with jobs/{sub}.py")
    return importlib.import_module(f"jobs.{sub}")


def parse_job_args(job: str, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=job)
    job_module(job).add_arguments(parser)
    try:
        return parser.parse_args(argv)
    except SystemExit:
        pytest.fail(f"`{job} {shlex.join(argv)}`: arguments the job does not accept (see its stderr above)")


# ---------------------------------------------------------------- every file


def test_every_yaml_parses_into_mappings():
    files = yaml_files()
    assert {COMPOSE, K8S / "raycluster.yaml", K8S / "rayjob-enhance.yaml", K8S / "rayjob-train.yaml",
            K8S / "cronjob-enhance.yaml", INFRA / "ray" / "cluster.yaml"} <= set(files)
    for path in files:
        docs = load_all(path)
        assert docs, f"{path}: no YAML document"
        assert all(isinstance(d, dict) for d in docs), f"{path}: a document is not a mapping"


def test_kubernetes_manifests_have_kind_name_and_api_version():
    for path in sorted(K8S.glob("*.yaml")):
        for doc in load_all(path):
            assert doc.get("apiVersion") and doc.get("kind"), f"{path.name}: apiVersion/kind missing"
            assert doc.get("metadata", {}).get("name"), f"{path.name}: {doc['kind']} without metadata.name"


def test_raycluster_file_is_multi_document_with_its_configmap():
    kinds = [d["kind"] for d in load_all(K8S / "raycluster.yaml")]
    assert kinds == ["ConfigMap", "RayCluster"]


def test_no_secrets_in_any_infra_file():
    # The patterns themselves catch real-looking keys (built here so no scanner flags this file).
    assert SECRET_PATTERNS["AWS access key id"].search("AKIA" + "Q" * 16)
    assert SECRET_PATTERNS["AWS secret access key"].search("aws_secret_access_key = " + "a1B2/c3D4+" * 4)
    files = [p for p in INFRA.rglob("*") if p.is_file()] + [REPO / ".dockerignore"]
    for path in files:
        text = path.read_text(errors="replace")
        for what, pattern in SECRET_PATTERNS.items():
            assert not pattern.search(text), f"{path.relative_to(REPO)}: looks like a real {what}"


# ---------------------------------------------------------------- Dockerfiles


def test_dockerignore_keeps_local_state_out_of_the_image():
    entries = {line.strip().strip("/") for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert {".venv", "out", "mlruns", "mlflow.db", ".git"} <= entries


def _runs(path: Path) -> list[str]:
    return [args for keyword, args in instructions(path) if keyword == "RUN"]


def _first(runs: list[str], predicate) -> int:
    return next((i for i, run in enumerate(runs) if predicate(run)), -1)


def _shell_commands(run: str) -> list[list[str]]:
    """The simple commands of a RUN line (split at ;, &&, || and |, quotes respected)."""
    lexer = shlex.shlex(run, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands = [[]]
    for token in lexer:
        if token in SHELL_SEPARATORS:
            commands.append([])
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def _pip_installs(run: str) -> list[list[str]]:
    return [c for c in _shell_commands(run) if "pip" in c and "install" in c]


def _installs_project(run: str) -> bool:
    return any("." in c for c in _pip_installs(run))


def _installs_torch(run: str) -> bool:
    return any(TORCH_PIN in c for c in _pip_installs(run))


@pytest.mark.parametrize("path", [DOCKERFILE, DOCKERFILE_CUDA], ids=lambda p: p.name)
def test_dockerfile_installs_pinned_torch_before_the_project(path):
    runs = _runs(path)
    torch_at, project_at = _first(runs, _installs_torch), _first(runs, _installs_project)
    assert torch_at >= 0, f"{path.name}: no `pip install {TORCH_PIN}`"
    assert project_at >= 0, f"{path.name}: the project (`pip install .`) is not installed"
    assert torch_at < project_at, f"{path.name}: the project is installed before torch (pulls another torch build)"
    copies = [args for keyword, args in instructions(path) if keyword == "COPY"]
    assert any(args.split()[0] == "." for args in copies), f"{path.name}: the source is never copied in"


def test_cpu_image_uses_python_311_slim_the_cpu_torch_index_and_wget():
    froms = [args for keyword, args in instructions(DOCKERFILE) if keyword == "FROM"]
    assert froms and froms[0].startswith("python:3.11-slim")
    torch_run = next(run for run in _runs(DOCKERFILE) if _installs_torch(run))
    assert "--index-url https://download.pytorch.org/whl/cpu" in torch_run
    # KubeRay's default readiness/liveness probes run wget inside Ray pods; slim images lack it.
    assert any("wget" in run and "install" in run for run in _runs(DOCKERFILE))


def test_cuda_image_has_a_cuda_base_python_311_and_no_cpu_torch():
    froms = [args for keyword, args in instructions(DOCKERFILE_CUDA) if keyword == "FROM"]
    assert froms and re.search(r"gpu|cuda", froms[-1]), froms
    assert re.search(r"py311|python3\.11", DOCKERFILE_CUDA.read_text()), "the CUDA image must run Python 3.11"
    torch_run = next(run for run in _runs(DOCKERFILE_CUDA) if _installs_torch(run))
    assert "whl/cpu" not in torch_run


def _program(args: str) -> str:
    """The program an ENTRYPOINT/CMD starts, exec (JSON) or shell form."""
    return json.loads(args)[0] if args.startswith("[") else args.split()[0]


@pytest.mark.parametrize("path", [DOCKERFILE, DOCKERFILE_CUDA], ids=lambda p: p.name)
def test_dockerfile_runs_the_console_script_as_a_non_root_user(path):
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    steps = instructions(path)
    run_as = [args for keyword, args in steps if keyword in ("ENTRYPOINT", "CMD")]
    assert run_as, f"{path.name}: no ENTRYPOINT or CMD"
    assert any(_program(args) in scripts for args in run_as), f"{path.name}: does not start {sorted(scripts)}"
    users = [args for keyword, args in steps if keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), f"{path.name}: runs as root"


def _ray_pins(path: Path) -> set[str]:
    return set(re.findall(r"ray\[[a-z,]+\]==([\d.]+)", path.read_text()))


def test_every_node_runs_the_same_ray():
    pins = _ray_pins(DOCKERFILE) | _ray_pins(DOCKERFILE_CUDA) | _ray_pins(INFRA / "ray" / "cluster.yaml")
    base = re.search(r"rayproject/ray:([\d.]+)-", DOCKERFILE_CUDA.read_text())
    if base:
        pins.add(base.group(1))
    for _, doc in k8s_docs("RayCluster") + k8s_docs("RayJob"):
        spec = doc["spec"].get("rayClusterSpec", doc["spec"])
        pins.add(str(spec["rayVersion"]))
    assert len(pins) == 1, f"Ray versions differ between images/manifests: {sorted(pins)}"


# ---------------------------------------------------------------- compose


def test_compose_has_the_stack_services_with_healthchecks():
    services = compose_services()
    for name in ("s3", "mlflow", "ray-head", "ray-worker"):
        assert name in services, f"compose service {name!r} missing"
        assert services[name].get("healthcheck", {}).get("test"), f"{name}: no healthcheck"


def test_compose_images_and_builds_exist():
    services = compose_services()
    built = {s["image"] for s in services.values() if "build" in s and "image" in s}
    for name, service in services.items():
        if "build" in service:
            build = service["build"]
            context = (COMPOSE.parent / build["context"]).resolve()
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), f"{name}: Dockerfile missing"
        else:
            image = service.get("image", "")
            assert image in built or re.fullmatch(r"[\w./-]+:[\w.-]+", image) and not image.endswith(":latest"), (
                f"{name}: image {image!r} is neither built here nor pinned to a tag")


def test_compose_dependencies_and_env_files_exist():
    services = compose_services()
    for name, service in services.items():
        for dep in service.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown service {dep!r}"
        env_files = service.get("env_file", [])
        for entry in [env_files] if isinstance(env_files, str) else env_files:
            path = entry["path"] if isinstance(entry, dict) else entry
            default = re.fullmatch(r"\$\{\w+:-(.+)\}", path)
            assert (COMPOSE.parent / (default.group(1) if default else path)).is_file(), f"{name}: {path} missing"


def test_compose_wiring():
    services = compose_services()
    assert "--address=ray-head:6379" in services["ray-worker"]["command"]
    assert "--head" in services["ray-head"]["command"] and "--dashboard-host=0.0.0.0" in services["ray-head"]["command"]
    mlflow = services["mlflow"]
    assert "--workers 1" in mlflow["command"] and "sqlite:" in mlflow["command"]
    assert str(mlflow["environment"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"]).lower() == "false"
    for name in ("ray-head", "ray-worker"):
        assert services[name]["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    for name in ("enhance", "train"):
        assert services[name]["environment"]["RAY_ADDRESS"] == "http://ray-head:8265"


def _env_file_values(service: dict) -> dict[str, str]:
    path = re.sub(r"\$\{\w+:-(.+)\}", r"\1", service["env_file"])
    pairs = [line.split("=", 1) for line in (COMPOSE.parent / path).read_text().splitlines()
             if "=" in line and not line.lstrip().startswith("#")]
    return {k.strip(): v.strip() for k, v in pairs}


def test_compose_credentials_come_from_an_env_file_with_fake_values():
    services = compose_services()
    for name, service in services.items():
        env = service.get("environment", {})
        env = dict(e.split("=", 1) for e in env) if isinstance(env, list) else env
        for var in CREDENTIAL_VARS:
            assert var not in env or re.fullmatch(r"\$\{\w+(:?-[^}]*)?\}", str(env[var])), (
                f"compose {name}: {var} written into compose.yaml")
    # Every service that touches S3 itself gets endpoint and keys, and the committed keys are fake.
    for name in ("s3-init", "ray-head", "ray-worker"):
        values = _env_file_values(services[name])
        assert {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(values), name
        assert re.search(r"(?i)local|dev|fake|example", values["AWS_SECRET_ACCESS_KEY"]), (
            "the committed env file must hold obviously fake keys")


# ---------------------------------------------------------------- Kubernetes


def _cluster_specs() -> list[tuple[str, dict]]:
    out = [(f"{p.name} RayCluster", d["spec"]) for p, d in k8s_docs("RayCluster")]
    out += [(f"{p.name} RayJob", d["spec"]["rayClusterSpec"]) for p, d in k8s_docs("RayJob") if "rayClusterSpec" in d["spec"]]
    return out


def _containers(group: dict) -> list[dict]:
    return group["template"]["spec"]["containers"]


def _groups(spec: dict) -> list[tuple[str, dict]]:
    return [("head", spec["headGroupSpec"])] + [(g["groupName"], g) for g in spec.get("workerGroupSpecs", [])]


def test_raycluster_has_head_cpu_and_gpu_worker_groups():
    (path, doc), = k8s_docs("RayCluster")
    assert doc["apiVersion"] == "ray.io/v1"
    spec = doc["spec"]
    assert _containers(spec["headGroupSpec"])
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    assert set(groups) == {"cpu-workers", "gpu-workers"}
    gpu = _containers(groups["gpu-workers"])[0]
    assert str(gpu["resources"]["limits"].get("nvidia.com/gpu")) == "1"
    assert re.search(r"cuda|gpu", gpu["image"]), "the GPU group must run the CUDA image"
    pod = groups["gpu-workers"]["template"]["spec"]
    assert pod.get("tolerations") and any("nvidia.com/gpu" in str(t.get("key")) for t in pod["tolerations"])
    assert pod.get("nodeSelector"), "GPU workers need a nodeSelector for GPU nodes"
    cpu = _containers(groups["cpu-workers"])[0]
    assert "nvidia.com/gpu" not in str(cpu["resources"]), "CPU workers must not hold GPUs"
    for name, group in groups.items():
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], name


def test_every_ray_pod_is_complete():
    """Head and workers of every cluster: resources, string rayStartParams, env and credentials."""
    specs = _cluster_specs()
    assert len(specs) == 3
    for where, spec in specs:
        for group_name, group in _groups(spec):
            label = f"{where} {group_name}"
            # KubeRay takes rayStartParams as map[string]string: a bare 0 or true is rejected.
            assert all(isinstance(v, str) for v in group.get("rayStartParams", {}).values()), label
            for c in _containers(group):
                assert c["resources"].get("requests") and c["resources"].get("limits"), f"{label}: resources"
                assert any("configMapRef" in e for e in c.get("envFrom", [])), f"{label}: endpoints ConfigMap"
                refs = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in c.get("env", [])}
                assert refs.get("AWS_ACCESS_KEY_ID") and refs.get("AWS_SECRET_ACCESS_KEY"), f"{label}: S3 keys"
                assert "/dev/shm" in str(c.get("volumeMounts")), f"{label}: object store needs /dev/shm"


def test_kubernetes_credentials_only_through_secret_refs():
    checked = 0
    for path in sorted(K8S.glob("*.yaml")):
        for doc in load_all(path):
            for env in walk(doc, "env"):
                for entry in env:
                    if entry["name"] in CREDENTIAL_VARS:
                        assert "value" not in entry and entry["valueFrom"]["secretKeyRef"]["name"], (
                            f"{path.name}: {entry['name']} must come from a Secret")
                        checked += 1
            if doc["kind"] == "ConfigMap":
                assert not set(doc.get("data", {})) & set(CREDENTIAL_VARS), f"{path.name}: keys in a ConfigMap"
            if doc["kind"] == "Secret":
                assert not (doc.get("data") or doc.get("stringData")), f"{path.name}: Secret with values"
    assert checked >= 6


def test_rayjobs_manage_their_cluster_lifecycle():
    jobs = k8s_docs("RayJob")
    assert {p.name for p, _ in jobs} == {"rayjob-enhance.yaml", "rayjob-train.yaml"}
    for path, doc in jobs:
        spec = doc["spec"]
        assert doc["apiVersion"] == "ray.io/v1"
        assert spec.get("entrypoint"), path.name
        assert "rayClusterSpec" in spec or "clusterSelector" in spec, path.name
        assert spec["shutdownAfterJobFinishes"] is True, path.name
        assert isinstance(spec["ttlSecondsAfterFinished"], int) and spec["ttlSecondsAfterFinished"] >= 0
        assert spec["submissionMode"] in ("K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode")


def test_train_rayjob_runs_on_a_gpu_group():
    (_, doc), = [(p, d) for p, d in k8s_docs("RayJob") if p.name == "rayjob-train.yaml"]
    groups = doc["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    assert any("nvidia.com/gpu" in str(_containers(g)[0]["resources"]["limits"]) for g in groups)
    assert "scaling.use_gpu=true" in doc["spec"]["entrypoint"]


def test_cronjob_schedules_without_overlap_against_the_raycluster():
    (path, doc), = k8s_docs("CronJob")
    assert doc["apiVersion"] == "batch/v1"
    spec = doc["spec"]
    assert len(spec["schedule"].split()) == 5, "schedule must be a 5-field cron expression"
    assert spec["concurrencyPolicy"] == "Forbid"
    (_, cluster), = k8s_docs("RayCluster")
    head_svc = f"{cluster['metadata']['name']}-head-svc"
    container = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    addresses = [e["value"] for e in container.get("env", []) if e["name"] == "RAY_ADDRESS"]
    assert addresses and head_svc in addresses[0], f"the CronJob must submit to {head_svc}"


# ---------------------------------------------------------------- Ray cluster launcher


def test_cluster_launcher_has_head_cpu_and_gpu_node_types():
    config = yaml.safe_load((INFRA / "ray" / "cluster.yaml").read_text())
    types = config["available_node_types"]
    assert config["head_node_type"] in types
    assert any(t.get("resources", {}).get("GPU") for t in types.values()), "no GPU node type"
    assert config["file_mounts"] and set(config["rsync_exclude"]) >= {".venv", "out", "mlruns", "mlflow.db"}
    setup = config["head_setup_commands"]
    torch_at = _first(setup, lambda c: TORCH_PIN in c)
    project_at = _first(setup, lambda c: "-e ~/imgenhance" in c)
    assert 0 <= torch_at < project_at, "head nodes must install torch before the project"


# ---------------------------------------------------------------- jobs named by manifests


def test_manifests_run_the_expected_jobs():
    found = job_invocations()
    expected = [("rayjob-enhance.yaml entrypoint", "jobs.enhance"), ("rayjob-train.yaml entrypoint", "jobs.train"),
                ("cronjob-enhance.yaml submit.", "jobs.enhance"), ("compose enhance.", "imgenhance run"),
                ("compose train.", "jobs.train")]
    for where, job in expected:
        assert any(w.startswith(where) and j == job for w, j, _ in found), f"{where}: does not run {job}"


def test_every_config_path_named_by_a_command_exists():
    named = []
    for where, tokens in manifest_commands():
        for i, token in enumerate(tokens):
            value = tokens[i + 1] if token == "--config" and i + 1 < len(tokens) else token.partition("=")[2]
            if (token == "--config" or token.startswith("--config=")) and value.startswith("conf/"):
                named.append(value)
                assert (REPO / value).is_file(), f"{where}: {value} does not exist"
            if token.endswith(".py") and not token.startswith(("/", "-")):
                assert (REPO / token).is_file(), f"{where}: script {token} does not exist"
    assert "conf/train/ffdnet_gray.yaml" in named


def test_every_job_command_parses_and_its_config_loads(monkeypatch):
    """Each job command names an existing job, passes arguments it accepts, and the config it
    names (train/enhance) validates with its --set overrides."""
    from pipeline.config import load_enhance_config
    from pipeline.train.config import load_train_config

    monkeypatch.chdir(REPO)
    loaded = 0
    for where, job, argv in job_invocations():
        args = parse_job_args(job, argv)
        if job in ("jobs.train", "imgenhance train"):
            storage = [f"storage_path={args.storage}"] if args.storage else []
            load_train_config(args.config, list(args.overrides) + storage)
            loaded += 1
        elif job in ("jobs.enhance", "imgenhance run"):
            load_enhance_config(args.config, list(args.overrides))
            loaded += 1
    assert loaded >= 4
