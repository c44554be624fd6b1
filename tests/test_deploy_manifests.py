"""docker/ and docker/k8s/ hold the production wiring, and no Docker engine or cluster runs
here: these tests read the files and check that every role starts a real entry point of
this project with options it accepts, and sets only environment variables that
gochat_site/settings.py reads."""
from __future__ import annotations

import ast
import importlib
import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
IMAGE = "gochat:latest"
ROLES = {"gateway", "logic", "task-bridge", "worker", "beat", "flower", "grpc"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "Job"}
# Read by libraries, not by settings.py (docs/configuration.md says which).
LIBRARY_ENV = {"PROMETHEUS_MULTIPROC_DIR", "FLOWER_BASIC_AUTH"}


# --- helpers ----------------------------------------------------------------------------


def settings_env_names() -> set[str]:
    """Every variable name settings.py reads: env_*("NAME", ...) and os.environ lookups."""
    tree = ast.parse((ROOT / "gochat_site" / "settings.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            is_env_helper = isinstance(func, ast.Name) and func.id.startswith("env_")
            is_environ_get = (
                isinstance(func, ast.Attribute) and func.attr == "get" and ast.unparse(func.value) == "os.environ"
            )
            if is_env_helper or is_environ_get:
                names.add(node.args[0].value)
        if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            if isinstance(node.slice, ast.Constant):
                names.add(node.slice.value)
    return names


SETTINGS_ENV = settings_env_names()


def unwrap_shell(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """`sh -c 'export A=...; exec cmd args'` -> (cmd args, {A: expression}); else as is."""
    if len(argv) == 3 and argv[0] in {"sh", "/bin/sh"} and argv[1] == "-c":
        script = argv[2]
        exports = dict(re.findall(r"export (\w+)=([^;]+);", script))
        assert "exec " in script, f"a shell wrapper must exec the role's process: {script!r}"
        return shlex.split(script.split("exec ", 1)[1]), exports
    return argv, {}


def check_entry_point(argv: list[str]) -> str:
    """Assert argv starts a real entry point of this project with valid options; return
    a role name for it."""
    if argv[:2] == ["python", "manage.py"]:
        from django.core.management import get_commands, load_command_class

        name, options = argv[2], argv[3:]
        commands = get_commands()
        assert name in commands, f"Django knows no management command {name!r}"
        parser = load_command_class(commands[name], name).create_parser("manage.py", name)
        parser.parse_args(options)  # CommandError on an unknown option or bad value
        return {"run_logic": "logic", "run_task_bridge": "task-bridge", "run_grpc": "grpc"}.get(name, name)
    if argv[0] == "daphne":
        from daphne.cli import CommandLineInterface

        parsed = CommandLineInterface().parser.parse_args(argv[1:])
        module_name, _, attr = parsed.application.partition(":")
        assert getattr(importlib.import_module(module_name), attr) is not None
        assert parsed.application == "gochat_site.asgi:application"
        return "gateway"
    if argv[0] == "celery":
        from celery import Celery
        from celery.app.utils import find_app
        from celery.bin.base import CLIContext
        from celery.bin.celery import celery as celery_cli

        assert argv[1] == "-A", f"celery commands name the app first: {argv}"
        app = find_app(argv[2])
        assert isinstance(app, Celery) and app.main == "gochat_site"
        subcommand, rest = argv[3], argv[4:]
        context = celery_cli.make_context("celery", ["-A", argv[2], subcommand, *rest])
        # What the celery group's callback would set before running a subcommand.
        context.obj = CLIContext(app=app, no_color=True, workdir=None, quiet=True)
        command = celery_cli.get_command(context, subcommand)
        assert command is not None, f"celery has no subcommand {subcommand!r}"
        command.make_context(subcommand, list(rest), parent=context)  # rejects bad options
        return subcommand
    raise AssertionError(f"not an entry point of this project: {argv}")


def compose() -> dict:
    return yaml.safe_load((DOCKER / "docker-compose.yml").read_text())


def project_services() -> dict[str, dict]:
    return {name: svc for name, svc in compose()["services"].items() if svc.get("image") == IMAGE}


def k8s_documents(folder: str = "k8s") -> list[dict]:
    """Every document `kubectl apply -f docker/<folder>/` would apply."""
    docs = []
    for path in sorted((DOCKER / folder).glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def k8s_containers(*, init: bool = False) -> list[tuple[dict, dict]]:
    """(workload, container) for every container (or initContainer) of the project's image."""
    pairs = []
    for doc in k8s_documents():
        if doc["kind"] in WORKLOAD_KINDS:
            key = "initContainers" if init else "containers"
            for container in doc["spec"]["template"]["spec"].get(key, []):
                if container["image"] == IMAGE:
                    pairs.append((doc, container))
    return pairs


def component(doc: dict) -> str:
    return doc["metadata"]["labels"]["app.kubernetes.io/component"]


def long_running_workloads() -> dict[str, dict]:
    return {component(d): d for d in k8s_documents() if d["kind"] in {"Deployment", "StatefulSet"}}


def env_of(container: dict) -> dict[str, object]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


# --- the settings parser itself ---------------------------------------------------------


def test_settings_names_are_parsed_from_settings_py():
    assert {"DATABASE_URL", "REDIS_URL", "GATEWAY_ID", "KAFKA_BOOTSTRAP_SERVERS", "TEST_DATABASE_NAME"} <= SETTINGS_ENV
    assert "DJANGO_SETTINGS_MODULE" not in SETTINGS_ENV


def test_entry_point_check_rejects_what_is_not_there():
    with pytest.raises(AssertionError):
        check_entry_point(["python", "manage.py", "run_nothing"])
    with pytest.raises(Exception):
        check_entry_point(["python", "manage.py", "run_grpc", "--no-such-option"])
    with pytest.raises(Exception):
        check_entry_point(["celery", "-A", "gochat_site", "wrker"])
    with pytest.raises(Exception):
        check_entry_point(["celery", "-A", "gochat_site", "worker", "--concurency", "4"])
    with pytest.raises(Exception):
        check_entry_point(["celery", "-A", "no_such_module", "worker"])
    with pytest.raises(Exception):
        check_entry_point(["daphne", "gochat_site.nowhere:application"])


# --- docker compose ---------------------------------------------------------------------


def service_argv(svc: dict) -> list[str]:
    return unwrap_shell(svc["command"])[0]


@pytest.mark.parametrize("name", sorted(project_services()))
def test_compose_service_runs_a_real_entry_point(name):
    check_entry_point(service_argv(project_services()[name]))


@pytest.mark.parametrize("name", sorted(project_services()))
def test_compose_service_sets_only_settings_variables(name):
    unknown = set(project_services()[name].get("environment", {})) - SETTINGS_ENV - LIBRARY_ENV
    assert not unknown, f"{name} sets variables settings.py never reads: {sorted(unknown)}"


def test_compose_runs_every_role_and_two_gateways():
    services = project_services()
    roles = {check_entry_point(service_argv(svc)) for svc in services.values()}
    assert ROLES | {"migrate"} <= roles
    gateway_ids = [
        svc["environment"]["GATEWAY_ID"] for svc in services.values() if service_argv(svc)[0] == "daphne"
    ]
    assert sorted(gateway_ids) == ["gw-1", "gw-2"]


def test_compose_snowflake_worker_ids_do_not_collide():
    ids = [svc["environment"].get("SNOWFLAKE_WORKER_ID") for svc in project_services().values()]
    ids = [int(i) for i in ids if i is not None]
    assert len(ids) == len(set(ids)) and all(0 <= i < 1024 for i in ids)


def test_compose_infrastructure_kafka_in_kraft_mode_and_topics():
    from django.conf import settings

    services = compose()["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "zookeeper" not in services

    script = services["kafka-init"]["command"][0]
    gateway_ids = [svc["environment"]["GATEWAY_ID"] for svc in project_services().values() if "GATEWAY_ID" in svc.get("environment", {})]
    assert "for gw in " + " ".join(gateway_ids) + ";" in script
    downstream = settings.KAFKA_DOWNSTREAM_TOPIC.format(gateway_id="$$gw")
    for topic in (settings.KAFKA_UPSTREAM_TOPIC, settings.KAFKA_TASK_TOPIC, settings.KAFKA_TASK_DLQ_TOPIC, downstream):
        assert f"--topic {topic} " in script


def test_compose_roles_wait_for_migrations_and_topics():
    for name, svc in project_services().items():
        if name == "migrate":
            continue
        depends = svc["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["kafka-init"]["condition"] == "service_completed_successfully", name


def test_compose_health_checks():
    services = compose()["services"]
    for name in ("postgres", "redis", "kafka", "gateway-1", "gateway-2", "grpc", "worker", "flower"):
        assert services[name]["healthcheck"]["test"], name
    gateway_probe = " ".join(services["gateway-1"]["healthcheck"]["test"])
    assert "/healthz" in gateway_probe
    assert "grpc_health" in " ".join(services["grpc"]["healthcheck"]["test"])
    for name in ("logic", "task-bridge"):
        env = services[name]["environment"]
        probe = " ".join(services[name]["healthcheck"]["test"])
        assert f"127.0.0.1:{env['HEALTH_PORT']}/healthz" in probe, name
    beat = services["beat"]
    assert beat["healthcheck"]["test"][1:4] == ["python", "-m", "gochat_site.heartbeat"]
    assert beat["healthcheck"]["test"][4] == beat["environment"]["BEAT_HEARTBEAT_FILE"]


def test_compose_flower_has_basic_auth_and_no_default_password():
    flower = compose()["services"]["flower"]
    # Interpolated from the operator's environment or docker/.env, never a literal.
    assert flower["environment"]["FLOWER_BASIC_AUTH"] in {"${FLOWER_BASIC_AUTH:-}", "${FLOWER_BASIC_AUTH}"}
    script = flower["command"][2]
    assert script.startswith('test -n "$$FLOWER_BASIC_AUTH" || ')
    assert ".env" in (ROOT / ".gitignore").read_text()


def test_compose_monitoring_profile_scrapes_every_role():
    services = compose()["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"], "optional: only with --profile monitoring"
    mounts = " ".join(services["prometheus"]["volumes"] + services["grafana"]["volumes"])
    for path in ("./prometheus/prometheus.yml", "./prometheus/alerts.yml", "./grafana/provisioning", "./grafana/dashboards"):
        assert path in mounts
        assert (DOCKER / path).exists(), path
    config = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    assert "/etc/prometheus/alerts.yml" in config["rule_files"]
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    project = project_services()
    for name, svc in project.items():
        role = check_entry_point(service_argv(svc))
        if role in {"migrate", "beat"}:
            continue
        env = svc.get("environment", {})
        port = {"gateway": 8000, "flower": 5555}.get(role) or int(env.get("HEALTH_PORT") or env["METRICS_PORT"])
        assert f"{name}:{port}" in targets, f"prometheus.yml does not scrape {name}:{port}"
        if role not in {"gateway", "flower"}:  # those publish their port already
            assert str(port) in svc.get("expose", []), f"{name} does not expose {port}"
        if "HEALTH_PORT" in env:
            assert env["HEALTH_HOST"] == "0.0.0.0", f"{name}: Prometheus scrapes it from another container"
    assert not targets - {f"{n}:{p}" for n in project for p in (8000, 5555, 9100, 9101)}, "targets of no service"


# --- Dockerfile -------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_non_root_and_starts_a_gateway():
    lines = [line.strip() for line in (DOCKER / "Dockerfile").read_text().splitlines()]
    stages = [line for line in lines if line.startswith("FROM ")]
    assert len(stages) >= 2
    assert any("--from=build" in line for line in lines if line.startswith("COPY"))
    final_stage = lines[lines.index(stages[-1]):]
    users = [line.split()[1] for line in final_stage if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    cmd = next(line for line in reversed(final_stage) if line.startswith("CMD "))
    assert check_entry_point(yaml.safe_load(cmd[4:])) == "gateway"


# --- Kubernetes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "workload,container", k8s_containers(), ids=[c["name"] for _, c in k8s_containers()]
)
def test_k8s_container_runs_a_real_entry_point_with_known_settings(workload, container):
    argv, exports = unwrap_shell(container["command"] + container.get("args", []))
    check_entry_point(argv)
    env_names = {e["name"] for e in container.get("env", [])} | set(exports)
    assert env_names <= SETTINGS_ENV | LIBRARY_ENV, sorted(env_names - SETTINGS_ENV - LIBRARY_ENV)
    pod_security = workload["spec"]["template"]["spec"]["securityContext"]
    assert pod_security["runAsNonRoot"] is True and pod_security["runAsUser"] != 0


def test_k8s_applied_folder_holds_no_secret():
    # `kubectl apply -f docker/k8s/` would overwrite the real Secret with placeholders.
    assert not [d["metadata"]["name"] for d in k8s_documents() if d["kind"] == "Secret"]
    assert not (DOCKER / "k8s" / "secret.example.yaml").exists()


def test_k8s_config_holds_only_settings_and_every_reference_exists():
    docs = k8s_documents()
    config_maps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    examples = {d["metadata"]["name"]: d for d in k8s_documents("k8s-examples") if d["kind"] == "Secret"}
    for cm in config_maps.values():
        assert set(cm["data"]) <= SETTINGS_ENV, sorted(set(cm["data"]) - SETTINGS_ENV)
        # Production secrets sit in a Secret, never in the ConfigMap.
        assert not {"SECRET_KEY", "DATABASE_URL", "GRPC_SERVICE_TOKEN", "FLOWER_BASIC_AUTH"} & set(cm["data"])
    for secret in examples.values():
        assert set(secret["stringData"]) <= SETTINGS_ENV | LIBRARY_ENV
        assert all("replace-me" in value for value in secret["stringData"].values()), "examples hold placeholders only"
    assert {"SECRET_KEY", "DATABASE_URL", "GRPC_SERVICE_TOKEN"} <= set(examples["gochat-secrets"]["stringData"])
    for _, container in k8s_containers() + k8s_containers(init=True):
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                assert source["configMapRef"]["name"] in config_maps
            if "secretRef" in source:
                assert source["secretRef"]["name"] in examples, "every Secret used has an example"
        for entry in container.get("env", []):
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["key"] in examples[ref["name"]]["stringData"], entry


def test_k8s_allowed_hosts_is_narrowed():
    config = next(d for d in k8s_documents() if d["kind"] == "ConfigMap")
    assert config["data"]["ALLOWED_HOSTS"] not in {"*", ""}


def test_k8s_migrations_job_is_versioned_and_roles_wait_for_it():
    jobs = [d for d in k8s_documents() if d["kind"] == "Job" and component(d) == "migrate"]
    assert len(jobs) == 1
    job = jobs[0]
    # A Job's template is immutable: each release needs its own name (docs/deploy.md).
    assert re.fullmatch(r"gochat-migrate-[a-z0-9.-]+", job["metadata"]["name"])
    assert job["metadata"]["labels"]["app.kubernetes.io/version"] in job["metadata"]["name"]
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "manage.py", "migrate", "--noinput"]
    waiting = {component(w): c for w, c in k8s_containers(init=True)}
    for name, workload in long_running_workloads().items():
        if name == "flower":  # reads no table
            continue
        init = waiting.get(name)
        assert init is not None, f"{name} does not wait for the migrations"
        check_entry_point(init["command"])
        assert init["command"][2] == "wait_for_migrations"
        main = workload["spec"]["template"]["spec"]["containers"][0]
        assert init["envFrom"] == main["envFrom"], f"{name}: the wait must see the same database"


def test_k8s_pod_disruption_budgets_cover_every_replicated_role():
    docs = k8s_documents()
    budgets = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    for name in ("gateway", "logic", "grpc", "worker", "task-bridge", "beat"):
        workload = long_running_workloads()[name]
        labels = workload["spec"]["template"]["metadata"]["labels"]
        matching = [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(matching) == 1, f"{name}: {len(matching)} PodDisruptionBudgets"
        spec = matching[0]["spec"]
        replicas = workload["spec"]["replicas"]
        if "minAvailable" in spec:
            # minAvailable >= replicas blocks every node drain for good.
            assert spec["minAvailable"] < replicas, name
        else:
            assert 1 <= spec["maxUnavailable"] <= max(1, replicas - 1), name


def _probe_port(container: dict, probe: dict) -> int:
    port = probe["httpGet"]["port"]
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in container["ports"] if p["name"] == port)


def test_k8s_every_role_has_liveness_and_consumers_probe_their_health_port():
    for name, workload in long_running_workloads().items():
        container = workload["spec"]["template"]["spec"]["containers"][0]
        assert "livenessProbe" in container, f"{name} has no liveness probe"
    for name in ("logic", "task-bridge"):
        container = long_running_workloads()[name]["spec"]["template"]["spec"]["containers"][0]
        env = env_of(container)
        assert env["HEALTH_HOST"] == "0.0.0.0", "a probe from the kubelet reaches the pod IP"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert _probe_port(container, container[probe]) == int(env["HEALTH_PORT"]), (name, probe)
    gateway = long_running_workloads()["gateway"]["spec"]["template"]["spec"]["containers"][0]
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_k8s_beat_liveness_reads_the_file_its_scheduler_touches():
    from django.conf import settings

    assert settings.CELERY_BEAT_SCHEDULER == "gochat_site.beat:HeartbeatScheduler"
    container = long_running_workloads()["beat"]["spec"]["template"]["spec"]["containers"][0]
    env = env_of(container)
    command = container["livenessProbe"]["exec"]["command"]
    assert command[:3] == ["python", "-m", "gochat_site.heartbeat"]
    heartbeat_file, max_age = command[3], float(command[4])
    assert heartbeat_file == env["BEAT_HEARTBEAT_FILE"]
    assert any(heartbeat_file.startswith(m["mountPath"] + "/") for m in container["volumeMounts"])
    # A few scheduler ticks may pass before the probe gives up on it.
    assert max_age >= 2 * float(env["CELERY_BEAT_MAX_LOOP_INTERVAL"])


def test_k8s_scrape_annotations_point_at_each_roles_metrics_port():
    for name, workload in long_running_workloads().items():
        template = workload["spec"]["template"]
        container = template["spec"]["containers"][0]
        annotations = template["metadata"].get("annotations", {})
        if name == "beat":  # runs no task and serves nothing: its liveness is the heartbeat
            assert "prometheus.io/scrape" not in annotations
            continue
        assert annotations.get("prometheus.io/scrape") == "true", name
        assert annotations["prometheus.io/path"] == "/metrics"
        port = int(annotations["prometheus.io/port"])
        env = env_of(container)
        served = {"gateway": 8000, "flower": 5555}.get(name) or int(env.get("HEALTH_PORT") or env["METRICS_PORT"])
        assert port == served, name
        assert port in {p["containerPort"] for p in container.get("ports", [])}, name
    worker = long_running_workloads()["worker"]["spec"]["template"]["spec"]
    env = env_of(worker["containers"][0])
    assert any(m["mountPath"] == env["PROMETHEUS_MULTIPROC_DIR"] for m in worker["containers"][0]["volumeMounts"])


def test_k8s_flower_basic_auth_comes_from_a_secret():
    container = long_running_workloads()["flower"]["spec"]["template"]["spec"]["containers"][0]
    entry = next(e for e in container["env"] if e["name"] == "FLOWER_BASIC_AUTH")
    assert "value" not in entry and entry["valueFrom"]["secretKeyRef"]["name"]


def test_k8s_has_a_workload_per_role_and_services_that_select_pods():
    docs = k8s_documents()
    roles = {check_entry_point(unwrap_shell(c["command"])[0]) for _, c in k8s_containers()}
    assert ROLES | {"migrate"} <= roles
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in docs if d["kind"] in WORKLOAD_KINDS]
    services = [d for d in docs if d["kind"] == "Service"]
    assert services
    for service in services:
        selector = service["spec"]["selector"]
        assert any(selector.items() <= labels.items() for labels in pod_labels), service["metadata"]["name"]
    by_name = {d["metadata"]["name"]: d for d in docs if d["kind"] == "StatefulSet"}
    for statefulset in by_name.values():
        assert statefulset["spec"]["serviceName"] in {s["metadata"]["name"] for s in services}


def test_k8s_gateways_have_stable_ids_and_an_autoscaler():
    docs = k8s_documents()
    gateway = next(
        d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["labels"]["app.kubernetes.io/component"] == "gateway"
    )
    container = gateway["spec"]["template"]["spec"]["containers"][0]
    gateway_id = next(e for e in container["env"] if e["name"] == "GATEWAY_ID")
    assert gateway_id["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    hpa = next(d for d in docs if d["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": gateway["metadata"]["name"]}
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def test_k8s_snowflake_worker_id_ranges_do_not_overlap():
    docs = k8s_documents()
    hpa_max = {d["spec"]["scaleTargetRef"]["name"]: d["spec"]["maxReplicas"] for d in docs if d["kind"] == "HorizontalPodAutoscaler"}
    ranges = []
    for workload, container in k8s_containers():
        _, exports = unwrap_shell(container["command"])
        fixed = {e["name"]: e.get("value") for e in container.get("env", [])}.get("SNOWFLAKE_WORKER_ID")
        if "SNOWFLAKE_WORKER_ID" in exports:
            assert workload["kind"] == "StatefulSet", "the ordinal is only stable in a StatefulSet"
            base = int(re.match(r"\$\(\((\d+) \+ \$\{HOSTNAME##\*-\}\)\)", exports["SNOWFLAKE_WORKER_ID"]).group(1))
            most = hpa_max.get(workload["metadata"]["name"], workload["spec"]["replicas"])
            ranges.append((base, base + most - 1, workload["metadata"]["name"]))
        elif fixed is not None:
            assert workload["spec"]["replicas"] == 1, "a fixed worker id allows one replica"
            ranges.append((int(fixed), int(fixed), workload["metadata"]["name"]))
    ranges.sort()
    assert len(ranges) >= 3
    for (_, end, name), (start, _, other) in zip(ranges, ranges[1:]):
        assert end < start, f"{name} and {other} may draw the same snowflake worker id"
    assert ranges[-1][1] < 1024
