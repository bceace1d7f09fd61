"""docker-compose.yml, deploy/prometheus and deploy/k8s against the code they run.

Each check ties a manifest to its source of truth: variable names and values
to streams/settings.py, worker services to streams/topology.py STAGES,
commands to the Typer app, ports to the environment. Nothing is started.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any, get_origin
from urllib.parse import urlsplit

import click
import pytest
import typer
import yaml
from pydantic import BaseModel
from typer.testing import CliRunner

from api.exposure import refusal
from streams.topology import PROCESSORS, resolve
from streams.cli import app as cli_app
from streams.settings import ServiceSettings, Settings
from tests.paths import ROOT

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
K8S = ROOT / "deploy" / "k8s"
KUSTOMIZATION = K8S / "kustomization.yaml"

# Ports the third-party images listen on without configuration.
IMAGE_PORTS = {"cassandra": {9042}, "qdrant": {6333}}
# Embedding width of known models (MURMUR_LLM__EMBED_DIM must agree).
EMBED_DIMS = {"BAAI/bge-small-en-v1.5": 384}
# The subcommands the stack depends on; a rename in streams/cli.py must fail here.
REQUIRED_COMMANDS = {("worker",), ("api",), ("sink", "qdrant"), ("topics", "create"), ("db", "init")}

_VAR = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")
_HTTP = re.compile(r"http://([\w.-]+):(\d+)(/[\w/-]*)")


# ----------------------------------------------------------------- helpers
def interpolate(value: Any, env: dict[str, str] | None = None) -> str:
    """A compose value as compose resolves it, with ``env`` as the shell."""
    env = env or {}
    return _VAR.sub(lambda m: env.get(m.group(1)) or m.group(2) or "", str(value)).replace("$$", "$")


def is_setting(name: str) -> bool:
    """Whether ``MURMUR_A__B`` names a field path of Settings (pydantic-settings
    silently ignores a misspelt variable, so validation alone proves nothing)."""
    if not name.startswith("MURMUR_") or name != name.upper():
        return False
    model: type[BaseModel] = Settings
    parts = name.removeprefix("MURMUR_").lower().split("__")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        if i == len(parts) - 1:
            return True
        ann = field.annotation
        if get_origin(ann) is dict:
            return i == len(parts) - 2
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return False
        model = ann
    return False


def setting_value(settings: Settings, name: str) -> Any:
    value: Any = settings
    for part in name.removeprefix("MURMUR_").lower().split("__"):
        value = value[part] if isinstance(value, dict) else getattr(value, part)
    return value


def assert_lands(settings: Settings, env: dict[str, str]) -> None:
    """Every variable ends up, unchanged, in the field its name says."""
    for name, raw in env.items():
        got = setting_value(settings, name)
        if isinstance(got, (tuple, list)):
            assert list(got) == json.loads(raw), name
        elif isinstance(got, (int, float)) and not isinstance(got, bool):
            assert got == type(got)(raw), name
        else:
            assert str(got) == raw, name


def image_entrypoint() -> list[str]:
    lines = [ln for ln in DOCKERFILE.read_text().splitlines() if ln.startswith("ENTRYPOINT")]
    return json.loads(lines[-1].split(None, 1)[1])


def argv_list(value: Any) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def murmur_invocations(entrypoint: list[str], command: list[str]) -> list[list[str]]:
    """The ``murmur`` argument lists a container runs: its argv, or each
    ``murmur ...`` of an ``sh -c`` script."""
    argv = entrypoint + command
    if argv[:2] == ["sh", "-c"]:
        steps = [shlex.split(step) for step in " ".join(argv[2:]).split("&&")]
        assert all(s[:1] == ["murmur"] for s in steps), f"non-murmur step in {argv}"
        return [s[1:] for s in steps]
    assert argv[:1] == ["murmur"], argv
    return [argv[1:]]


def subcommand(argv: list[str]) -> tuple[str, ...]:
    out = []
    for token in argv:
        if token.startswith("-"):
            break
        out.append(token)
    return tuple(out)


def option(argv: list[str], name: str) -> str | None:
    for i, token in enumerate(argv):
        if token == name:
            return argv[i + 1]
        if token.startswith(name + "="):
            return token.split("=", 1)[1]
    return None


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname and parts.port, f"{url}: host and port must be explicit"
    return parts.hostname, parts.port


def image_tag(image: str) -> str:
    name, _, tag = image.rpartition(":")
    assert name and "/" not in tag, f"{image}: no tag"
    return tag


def assert_pinned(image: str) -> None:
    tag = image_tag(image)
    assert tag != "latest" and re.search(r"\d+\.\d+", tag), f"{image}: pin a version"


def check_settings(s: Settings, endpoints: dict[str, set[int]], served: dict[str, str]) -> None:
    """Where the environment sends Murmur: names of services that exist, on
    ports they serve; each LLM role at the server of its model."""
    host, port = s.kafka_bootstrap.rsplit(":", 1)
    assert int(port) in endpoints.get(host, set()), s.kafka_bootstrap
    assert s.cassandra_hosts and all(s.cassandra_port in endpoints.get(h, set()) for h in s.cassandra_hosts)
    assert s.qdrant_url, "the Qdrant sink and the API need a Qdrant server"
    host, port = host_port(s.qdrant_url)
    assert port in endpoints.get(host, set()), s.qdrant_url
    assert (s.llm.backend, s.llm.embed_backend) == ("vllm", "vllm")
    for role in (s.llm.fast, s.llm.balanced, s.llm.heavy, s.llm.embed):
        host, port = host_port(role.url)
        assert urlsplit(role.url).path == "/v1", role.url
        assert port in endpoints.get(host, set()), role.url
        assert served.get(host) == role.model, f"{role.url} serves {served.get(host)}, not {role.model}"
    assert s.llm.embed_dim == EMBED_DIMS.get(s.llm.embed.model, s.llm.embed_dim)
    # Prometheus and the other containers reach these from outside.
    assert s.metrics_host == s.api_host == "0.0.0.0"
    assert s.metrics_port and s.api_port


@pytest.fixture
def settings_from(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Settings built from exactly ``env`` (no other MURMUR_ variable, no murmur.toml)."""
    def build(env: dict[str, str]) -> Settings:
        bad = sorted(n for n in env if not is_setting(n))
        assert not bad, f"not fields of streams/settings.py Settings: {bad}"
        for name in list(os.environ):
            if name.upper().startswith("MURMUR_"):
                monkeypatch.delenv(name)
        monkeypatch.chdir(tmp_path)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings = Settings()
        assert_lands(settings, env)
        return settings
    return build


def test_the_checks_themselves_catch_mistakes() -> None:
    assert is_setting("MURMUR_LLM__FAST__URL") and is_setting("MURMUR_CASSANDRA_HOSTS")
    assert is_setting("MURMUR_LLM__FALLBACK__HEAVY")
    for typo in ("MURMUR_KAFKA_BOOTSTRAPP", "MURMUR_LLM__FAST__URLS", "MURMUR_API_PORT__X",
                 "MURMUR_LLM_BACKEND", "murmur_api_port", "KAFKA_BOOTSTRAP"):
        assert not is_setting(typo), typo
    assert interpolate("${M:-a/b}") == interpolate("${M-a/b}") == "a/b"
    assert interpolate("${M:-a/b}", {"M": "c"}) == "c" and interpolate("$$x") == "$x"
    assert murmur_invocations(["sh", "-c"], ["murmur topics create && murmur db init"]) == [
        ["topics", "create"], ["db", "init"]]
    with pytest.raises(AssertionError):
        assert_pinned("qdrant/qdrant:latest")
    with pytest.raises(AssertionError):
        assert_pinned("qdrant/qdrant")


# ----------------------------------------------------------------- compose
@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict[str, dict]:
    return compose["services"]


def service_env(svc: dict) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    # A variable without a value is passed through from the shell: unset here.
    return {k: interpolate(v) for k, v in env.items() if v is not None}


def compose_invocations(svc: dict) -> list[list[str]]:
    entrypoint = argv_list(svc["entrypoint"]) if "entrypoint" in svc else image_entrypoint()
    return murmur_invocations(entrypoint, argv_list(svc.get("command")))


def murmur_services(services: dict[str, dict]) -> dict[str, dict]:
    return {n: s for n, s in services.items() if interpolate(s.get("image", "")).startswith("murmur:")}


def one_shot(svc: dict) -> bool:
    return str(svc.get("restart", "no")) == "no"


def murmur_processes(services: dict[str, dict]) -> dict[str, list[str]]:
    """Long-running Murmur services -> the argv of their one process."""
    out = {}
    for name, svc in murmur_services(services).items():
        if not one_shot(svc):
            (out[name],) = compose_invocations(svc)
    return out


def healthcheck_url(svc: dict) -> tuple[str, int, str]:
    m = _HTTP.search(" ".join(argv_list(svc["healthcheck"]["test"])))
    assert m, f"healthcheck without an HTTP URL: {svc['healthcheck']}"
    return m.group(1), int(m.group(2)), m.group(3)


def compose_served(services: dict[str, dict]) -> tuple[dict[str, set[int]], dict[str, str]]:
    """Ports each service listens on and the model each vLLM serves."""
    endpoints: dict[str, set[int]] = {name: set() for name in services}
    served: dict[str, str] = {}
    for name, svc in services.items():
        image = interpolate(svc.get("image", ""))
        repo = image.split(":")[0].split("/")[-1]
        endpoints[name] |= IMAGE_PORTS.get(repo, set())
        if repo == "kafka":
            # What the broker tells clients inside the network to connect to.
            for listener in service_env(svc)["KAFKA_ADVERTISED_LISTENERS"].split(","):
                if listener.startswith("PLAINTEXT://"):
                    host, port = host_port(listener.replace("PLAINTEXT://", "http://", 1))
                    endpoints[host].add(port)
        if repo == "vllm-openai":
            argv = argv_list(svc["command"])
            endpoints[name].add(int(option(argv, "--port")))
            served[name] = interpolate(argv[0])
    return endpoints, served


def test_compose_images_are_pinned_and_agree_with_the_project(services: dict[str, dict]) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name, svc in services.items():
        assert "image" in svc, f"{name}: no image"
        image = interpolate(svc["image"])
        assert_pinned(image)
        if "build" in svc:
            assert (ROOT / svc["build"]["context"] / svc["build"]["dockerfile"]).resolve() == DOCKERFILE
            assert image == f"murmur:{version}", f"{name}: tag the image with the project version"
    tags = {interpolate(s["image"]).rsplit(":", 1)[0]: image_tag(interpolate(s["image"])) for s in services.values()}
    # The same versions `murmur services up` runs locally.
    assert tags["apache/kafka"] == ServiceSettings().kafka_version
    assert tags["cassandra"] == ServiceSettings().cassandra_version
    assert all("build" in s for s in murmur_services(services).values())


def test_compose_long_running_services_have_healthchecks(services: dict[str, dict]) -> None:
    for name, svc in services.items():
        if one_shot(svc):
            assert "healthcheck" not in svc, f"{name} exits; nothing can wait for it to be healthy"
            continue
        test = argv_list(svc.get("healthcheck", {}).get("test"))
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name}: no healthcheck"


def test_compose_depends_on_conditions_name_existing_services(services: dict[str, dict]) -> None:
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: depends_on as a list waits for nothing"
        for target, spec in deps.items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = spec.get("condition")
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target}, which has no healthcheck"
            else:
                assert condition == "service_completed_successfully", f"{name} -> {target}: {condition}"
                assert one_shot(services[target]), f"{name} waits for {target} to exit, but it restarts"
    for name in murmur_processes(services):
        deps = services[name].get("depends_on", {})
        assert deps.get("murmur-init", {}).get("condition") == "service_completed_successfully", name
        assert deps.get("kafka", {}).get("condition") == "service_healthy", name


def test_compose_has_one_scalable_worker_service_per_processor(services: dict[str, dict], settings_from) -> None:
    workers = {}
    for name, argv in murmur_processes(services).items():
        svc = services[name]
        if subcommand(argv) != ("worker",):
            continue
        processor = option(argv, "--processors")
        assert resolve(processor) == [processor], f"{name}: one processor per service, got {processor}"
        assert name == f"worker-{processor}"
        assert "container_name" not in svc and "ports" not in svc, f"{name} could not be scaled"
        workers[processor] = name
    assert set(workers) == set(PROCESSORS), "a processor without its worker service (or the reverse)"
    assert "container_name" not in services["qdrant-sink"]
    # The groups the checkpointer snapshots and the monitor watches are the deployed ones.
    for name in murmur_processes(services):
        assert set(settings_from(service_env(services[name])).processor_groups) == set(workers), name


def test_compose_environment_is_real_settings(services: dict[str, dict], settings_from) -> None:
    endpoints, served = compose_served(services)
    envs = {name: service_env(svc) for name, svc in murmur_services(services).items()}
    assert len(envs) >= len(PROCESSORS) + 3
    for env in envs.values():
        check_settings(settings_from(env), endpoints, served)
    # Any MURMUR_ variable elsewhere (third-party services) would be a mistake too.
    for name, svc in services.items():
        assert all(is_setting(k) for k in service_env(svc) if k.startswith("MURMUR_")), name


def test_compose_model_is_one_variable(compose: dict, services: dict[str, dict], settings_from) -> None:
    env = compose["x-murmur-env"]
    chat = {env[f"MURMUR_LLM__{r}__MODEL"] for r in ("FAST", "BALANCED", "HEAVY")}
    assert chat == {argv_list(services["vllm"]["command"])[0]}
    assert env["MURMUR_LLM__EMBED__MODEL"] == argv_list(services["vllm-embed"]["command"])[0]
    for raw in (*chat, env["MURMUR_LLM__EMBED__MODEL"]):
        assert _VAR.fullmatch(raw), f"{raw}: take the model from one variable"
    # Setting the variable moves Murmur and vLLM together.
    shell = {_VAR.fullmatch(next(iter(chat))).group(1): "org/other-model"}
    s = settings_from({k: interpolate(v, shell) for k, v in env.items()})
    assert s.llm.fast.model == s.llm.heavy.model == interpolate(argv_list(services["vllm"]["command"])[0], shell)
    assert s.llm.fast.model == "org/other-model"


def test_compose_ports_agree_with_the_environment(services: dict[str, dict], settings_from) -> None:
    api = services["api"]
    s = settings_from(service_env(api))
    (argv,) = compose_invocations(api)
    assert subcommand(argv) == ("api",) and option(argv, "--host") == "0.0.0.0"
    assert healthcheck_url(api)[1:] == (s.api_port, "/health")
    assert any(str(p).rsplit(":", 1)[-1] == str(s.api_port) for p in api["ports"])
    for name, argv in murmur_processes(services).items():
        svc = services[name]
        if subcommand(argv) in (("worker",), ("sink", "qdrant")):
            assert healthcheck_url(svc)[1:] == (settings_from(service_env(svc)).metrics_port, "/metrics"), name
    for name in ("vllm", "vllm-embed"):
        svc = services[name]
        assert healthcheck_url(svc)[1:] == (int(option(argv_list(svc["command"]), "--port")), "/health")


def test_prometheus_scrapes_every_replica_of_every_murmur_process(services: dict[str, dict], settings_from) -> None:
    prom = yaml.safe_load(PROMETHEUS.read_text())
    s = settings_from(service_env(services["api"]))
    scraped: dict[str, int] = {}
    for job in prom["scrape_configs"]:
        assert "static_configs" not in job, f"{job['job_name']}: DNS discovery finds every replica"
        for sd in job["dns_sd_configs"]:
            assert sd["type"] == "A"
            for name in sd["names"]:
                assert name in services, f"{job['job_name']} scrapes unknown {name}"
                scraped[name] = sd["port"]
    for name, argv in murmur_processes(services).items():
        want = {("worker",): s.metrics_port, ("sink", "qdrant"): s.metrics_port, ("api",): s.api_port}
        if subcommand(argv) in want:
            assert scraped.get(name) == want[subcommand(argv)], f"{name} not scraped on its metrics port"
    for name in ("vllm", "vllm-embed"):
        assert scraped[name] == int(option(argv_list(services[name]["command"]), "--port"))
    mounts = [v.split(":")[0] for v in services["prometheus"]["volumes"] if v.startswith("./")]
    assert (ROOT / "deploy" / "prometheus" / "prometheus.yml") in [(ROOT / m).resolve() for m in mounts]


def test_dockerfile_installs_the_project_and_runs_murmur() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    # The locked versions, hash-checked, then the project without resolving again.
    assert re.search(r"^RUN pip install --no-deps --require-hashes -r requirements\.lock && pip install --no-deps \. && pip check", text, re.M)
    assert image_entrypoint() == ["murmur"]
    for name in re.findall(r"\b(MURMUR_\w+)=", text):
        assert is_setting(name), name
    # Every package pyproject.toml installs must be in the build context.
    allowed = {ln[1:].strip("/") for ln in DOCKERIGNORE.read_text().splitlines() if ln.startswith("!")}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]:
        assert pattern.rstrip("*") in allowed, f".dockerignore leaves out {pattern}"
    assert {"pyproject.toml", "requirements.lock", pyproject["project"]["readme"]} <= allowed


# ----------------------------------------------------------------- murmur CLI
def k8s_invocations(docs: list[dict]) -> list[list[str]]:
    out = []
    for _, container in k8s_containers(docs, init=True):
        if container["image"].startswith("murmur:"):
            entrypoint = argv_list(container["command"]) if "command" in container else image_entrypoint()
            out += murmur_invocations(entrypoint, argv_list(container.get("args")))
    return out


def test_every_murmur_command_used_exists(services: dict[str, dict], k8s_docs: list[dict]) -> None:
    used = [argv for svc in murmur_services(services).values() for argv in compose_invocations(svc)]
    used += k8s_invocations(k8s_docs)
    assert REQUIRED_COMMANDS <= {subcommand(a) for a in used}
    root = typer.main.get_command(cli_app)
    runner = CliRunner()
    for argv in used:
        path = subcommand(argv)
        result = runner.invoke(cli_app, [*path, "--help"])
        assert result.exit_code == 0, f"murmur {' '.join(path)}: {result.output}"
        cmd: click.Command = root
        for part in path:
            cmd = cmd.commands[part]  # type: ignore[attr-defined]
        opts = {o for p in cmd.params for o in p.opts}
        for token in argv[len(path):]:
            if token.startswith("--"):
                assert token.split("=", 1)[0] in opts, f"murmur {' '.join(path)} has no {token}"


# ----------------------------------------------------------------- kubernetes
@pytest.fixture(scope="module")
def k8s_docs() -> list[dict]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path != KUSTOMIZATION:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def k8s_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def workloads(docs: list[dict]) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "Job")}


def k8s_containers(docs: list[dict], init: bool = False):
    for name, w in workloads(docs).items():
        spec = w["spec"]["template"]["spec"]
        for c in spec["containers"] + (spec.get("initContainers", []) if init else []):
            yield name, c


def configmap(docs: list[dict]) -> dict[str, str]:
    return k8s_kind(docs, "ConfigMap")["murmur-env"]["data"]


def container_env(docs: list[dict], container: dict) -> dict[str, str]:
    """The environment a container sees: its envFrom ConfigMaps, then its own
    values; ``configMapKeyRef`` resolved, secrets left out."""
    maps = k8s_kind(docs, "ConfigMap")
    env: dict[str, str] = {}
    for src in container.get("envFrom", []):
        env |= maps[src["configMapRef"]["name"]]["data"]
    for e in container.get("env", []):
        ref = e.get("valueFrom", {}).get("configMapKeyRef")
        if "value" in e:
            env[e["name"]] = str(e["value"])
        elif ref:
            env[e["name"]] = maps[ref["name"]]["data"][ref["key"]]
    return env


def selected(docs: list[dict], service: dict) -> list[dict]:
    """The workloads whose pods a Service sends traffic to."""
    selector = service["spec"]["selector"].items()
    return [w for w in workloads(docs).values()
            if w["kind"] != "Job" and selector <= w["spec"]["template"]["metadata"]["labels"].items()]


def k8s_served(docs: list[dict]) -> tuple[dict[str, set[int]], dict[str, str]]:
    """Ports of each Service and the model behind each vLLM Service."""
    endpoints, served = {}, {}
    for name, svc in k8s_kind(docs, "Service").items():
        endpoints[name] = {p["port"] for p in svc["spec"]["ports"]}
        for w in selected(docs, svc):
            for c in w["spec"]["template"]["spec"]["containers"]:
                if c["image"].startswith("vllm/"):
                    env = container_env(docs, c)
                    served[name] = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], c["args"][0])
    return endpoints, served


def test_kustomization_lists_every_manifest(k8s_docs: list[dict]) -> None:
    kz = yaml.safe_load(KUSTOMIZATION.read_text())
    files = {p.name for p in K8S.glob("*.y*ml")} - {KUSTOMIZATION.name}
    assert sorted(kz["resources"]) == sorted(files)
    assert kz["namespace"] in k8s_kind(k8s_docs, "Namespace")
    deployments = k8s_kind(k8s_docs, "Deployment")
    assert all(r["name"] in deployments for r in kz.get("replicas", []))


def test_k8s_workloads_have_probes_matching_selectors_and_pinned_images(
        k8s_docs: list[dict], services: dict[str, dict]) -> None:
    compose_images = {interpolate(s["image"]) for s in services.values()}
    for name, w in workloads(k8s_docs).items():
        template = w["spec"]["template"]
        if w["kind"] != "Job":
            selector = w["spec"]["selector"]["matchLabels"]
            assert selector.items() <= template["metadata"]["labels"].items(), f"{name}: selector misses its pods"
        for c in template["spec"]["containers"] + template["spec"].get("initContainers", []):
            assert_pinned(c["image"])
            assert c["image"] in compose_images, f"{name}: {c['image']} differs from docker-compose.yml"
        if w["kind"] == "Job":
            continue
        for c in template["spec"]["containers"]:
            assert "readinessProbe" in c and "livenessProbe" in c, f"{name}/{c['name']}: probes"
            named = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                action = c.get(probe, {}).get("httpGet") or c.get(probe, {}).get("tcpSocket")
                if action:
                    port = action["port"]
                    assert port in named or port in named.values(), f"{name}: {probe} on unknown port {port}"
            if c["image"].startswith("vllm/"):
                assert int(c["resources"]["limits"]["nvidia.com/gpu"]) >= 1, f"{name}: vLLM needs a GPU"
        annotations = template["metadata"].get("annotations", {})
        if annotations.get("prometheus.io/scrape") == "true":
            ports = {p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
            assert int(annotations["prometheus.io/port"]) in ports, f"{name}: scraped on a port it does not open"
    assert {"kafka", "cassandra", "qdrant"} <= set(k8s_kind(k8s_docs, "StatefulSet"))


def test_k8s_services_select_one_workload_and_its_ports(k8s_docs: list[dict]) -> None:
    statefulsets = k8s_kind(k8s_docs, "StatefulSet")
    services = k8s_kind(k8s_docs, "Service")
    for s in statefulsets.values():
        assert s["spec"]["serviceName"] in services
    for name, svc in services.items():
        matched = selected(k8s_docs, svc)
        assert len(matched) == 1, f"Service {name} selects {len(matched)} workloads"
        ports = {p.get("name"): p["containerPort"] for c in matched[0]["spec"]["template"]["spec"]["containers"]
                 for p in c.get("ports", [])}
        for p in svc["spec"]["ports"]:
            target = p.get("targetPort", p["port"])
            assert target in ports or target in ports.values(), f"Service {name}: nothing on {target}"


def test_k8s_has_one_deployment_per_processor(k8s_docs: list[dict], settings_from) -> None:
    s = settings_from(configmap(k8s_docs))
    workers = {}
    for name, d in k8s_kind(k8s_docs, "Deployment").items():
        spec = d["spec"]["template"]["spec"]
        for c in spec["containers"]:
            if not c["image"].startswith("murmur:"):
                continue
            (argv,) = murmur_invocations(argv_list(c.get("command")) or image_entrypoint(), argv_list(c.get("args")))
            if subcommand(argv) != ("worker",):
                continue
            processor = option(argv, "--processors")
            assert resolve(processor) == [processor] and name == f"worker-{processor}"
            assert d["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(s.metrics_port)
            assert {p["containerPort"] for p in c["ports"]} == {s.metrics_port}
            workers[processor] = name
    assert set(workers) == set(PROCESSORS), "a processor without its Deployment (or the reverse)"
    assert set(s.processor_groups) == set(workers)


def test_k8s_environment_is_real_settings(k8s_docs: list[dict], settings_from) -> None:
    data = configmap(k8s_docs)
    assert all(is_setting(k) for k in data), sorted(k for k in data if not is_setting(k))
    endpoints, served = k8s_served(k8s_docs)
    checked = 0
    for name, c in k8s_containers(k8s_docs, init=True):
        env = container_env(k8s_docs, c)
        for e in c.get("env", []):
            if e["name"].startswith("MURMUR_"):
                assert is_setting(e["name"]), f"{name}: {e['name']}"
        if c["image"].startswith("murmur:"):
            assert c.get("envFrom") == [{"configMapRef": {"name": "murmur-env"}}], name
            check_settings(settings_from(env), endpoints, served)
            checked += 1
    assert checked >= len(PROCESSORS) + 3
    # One chat model for every role: the vLLM Deployment serves the key they share.
    assert len({data[f"MURMUR_LLM__{r}__MODEL"] for r in ("FAST", "BALANCED", "HEAVY")}) == 1


def api_refusal(s: Settings) -> str | None:
    return refusal(s.api_host, s.api_published_host, bool(s.api_key_sha256) or s.api_require_key,
                   s.api_allow_anonymous)


def test_compose_publishes_the_api_on_loopback_unless_a_key_is_set(services: dict[str, dict], settings_from) -> None:
    api = services["api"]
    (port,) = api["ports"]
    assert interpolate(port) == "127.0.0.1:8080:8080"
    assert api_refusal(settings_from(service_env(api))) is None
    # Published on every interface: the API refuses to start until a key is required.
    shell = {"MURMUR_API_BIND": "0.0.0.0"}
    assert interpolate(port, shell) == "0.0.0.0:8080:8080"
    wide = {k: interpolate(v, shell) for k, v in api["environment"].items() if v is not None}
    assert "0.0.0.0" in api_refusal(settings_from(wide))
    assert api_refusal(settings_from({**wide, "MURMUR_API_KEY_SHA256": "ab" * 32})) is None


def test_k8s_api_and_init(k8s_docs: list[dict], settings_from) -> None:
    s = settings_from(configmap(k8s_docs))
    api = k8s_kind(k8s_docs, "Deployment")["api"]["spec"]["template"]
    (c,) = api["spec"]["containers"]
    named = {p["name"]: p["containerPort"] for p in c["ports"]}
    probe = c["readinessProbe"]["httpGet"]
    assert probe["path"] == "/health" and named[probe["port"]] == s.api_port
    assert api["metadata"]["annotations"]["prometheus.io/port"] == str(s.api_port)
    (argv,) = murmur_invocations(image_entrypoint(), argv_list(c["args"]))
    assert option(argv, "--host") == "0.0.0.0"
    # Reachable from the cluster: the key's secret is required, never optional.
    key_ref = {e["name"]: e for e in c["env"]}["MURMUR_API_KEY_SHA256"]["valueFrom"]["secretKeyRef"]
    assert key_ref.get("optional", False) is False
    job = k8s_kind(k8s_docs, "Job")["murmur-init"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")
    steps = [subcommand(a) for a in k8s_invocations([job])]
    assert steps == [("topics", "create"), ("db", "init")]
