"""The Kubernetes manifests (deploy/k8s), checked offline without a cluster or kustomize:
every object listed by kustomization.yaml validated against the Kubernetes OpenAPI
schemas that `kubernetes-validate` bundles (strict: an unknown or misspelt field fails),
then the values that schemas cannot see: each container's command gets past our own
programs' argument parsers, each FOOTFALL_* variable is a setting of that program and
loads with its settings class, probes and Services point at the ports those settings
give, and a collector pod's shard comes out of its ordinal as N shards of N replicas."""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import re
import subprocess
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, get_type_hints

import kubernetes_validate
import pytest
import yaml
from pydantic import BaseModel

from footfall_alerts.cli import main as alerts_main
from footfall_alerts.config import AlertsSettings
from footfall_collector.cli import main as collector_main
from footfall_collector.config import CollectorSettings
from footfall_contract.shards import parse_shard
from footfall_runtime.settings import load_settings
from footfall_web.cli import main as web_main
from footfall_web.config import WebSettings

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
SERVER = REPO / "deploy" / "server"
SITES = REPO / "deploy" / "sites"
# The oldest Kubernetes the manifests are meant for (persistentVolumeClaimRetentionPolicy
# is on by default from 1.27), and the newest the validator knows.
KUBE_VERSIONS = ("1.29", kubernetes_validate.latest_version())

Obj = dict[str, Any]


def kustomization() -> Obj:
    data = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert isinstance(data, dict)
    return data


def load_manifests() -> list[Obj]:
    """What `kubectl apply -k deploy/k8s` applies, less kustomize's rewriting (the
    namespace and image tag are checked to need none)."""
    objects: list[Obj] = []
    for name in kustomization()["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            if doc:
                objects.append(doc)
    return objects


MANIFESTS = load_manifests()


def find(kind: str, name: str) -> Obj:
    [obj] = [o for o in MANIFESTS if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


def container(workload: Obj) -> Obj:
    [only] = workload["spec"]["template"]["spec"]["containers"]
    assert isinstance(only, dict)
    return only


def port_named(c: Obj, name: str | int) -> int:
    if isinstance(name, int):
        return name
    [port] = [p["containerPort"] for p in c["ports"] if p["name"] == name]
    return int(port)


def literal_env(c: Obj) -> dict[str, str]:
    return {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}


def env_file(path: Path) -> dict[str, str]:
    """NAME=value lines as `kubectl create secret --from-env-file` reads them (kubectl
    keeps quotes as part of the value: docs/deployment.md says to drop them)."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", line.strip())
        if m:
            out[m[1]] = m[2]
    return out


def is_setting(cls: type[BaseModel], variable: str) -> bool:
    """Whether FOOTFALL_A__B names a field path a.b of the settings class (top-level
    unknown FOOTFALL_* variables are otherwise ignored without a word)."""
    node: Any = cls
    for part in variable.removeprefix("FOOTFALL_").lower().split("__"):
        if isinstance(node, type) and issubclass(node, BaseModel):
            types = {name: f.annotation for name, f in node.model_fields.items()}
        elif isinstance(node, type) and dataclasses.is_dataclass(node):  # MqttSettings
            hints = get_type_hints(node)
            types = {f.name: hints[f.name] for f in dataclasses.fields(node)}
        else:
            return False
        if part not in types:
            return False
        node = types[part]
    return True


def parsed(main: Callable[[list[str]], int], argv: list[str]) -> argparse.Namespace:
    """The namespace the program's own parser makes of argv (unknown options and bad
    values exit as argparse does); the chosen command itself is not run."""
    seen: list[argparse.Namespace] = []
    original = argparse.ArgumentParser.parse_args

    def parse_args(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> Any:
        ns = original(self, *args, **kwargs)
        ns.func = lambda _ns: 0
        seen.append(ns)
        return ns

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(argparse.ArgumentParser, "parse_args", parse_args)
        assert main(argv) == 0
    [ns] = seen
    return ns


def as_paths(value: Any) -> list[Path]:
    return [Path(v) for v in (value if isinstance(value, list) else [value])]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for key in list(os.environ):
        if key.startswith("FOOTFALL_"):
            monkeypatch.delenv(key)
    yield monkeypatch


# -- the files and the schemas ------------------------------------------------------------


def test_kustomization_lists_every_manifest_in_one_namespace() -> None:
    k = kustomization()
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(k["resources"]) == files
    assert k["namespace"] == "footfall"
    assert find("Namespace", "footfall")
    for obj in MANIFESTS:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "footfall", obj["metadata"]["name"]
    kinds = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in MANIFESTS)
    assert kinds == sorted(
        [
            "Namespace/footfall",
            "Service/mosquitto",
            "EndpointSlice/mosquitto-external",
            "Service/influxdb",
            "EndpointSlice/influxdb-external",
            "Service/footfall-collector",
            "StatefulSet/footfall-collector",
            "Service/footfall-alerts",
            "StatefulSet/footfall-alerts",
            "Service/footfall-web",
            "Deployment/footfall-web",
            "PodDisruptionBudget/footfall-web",
        ]
    )


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_every_object_matches_the_kubernetes_schema(version: str) -> None:
    for obj in MANIFESTS:
        kubernetes_validate.validate(obj, version, strict=True)


def test_the_validator_refuses_what_kubernetes_would() -> None:
    """The check above has teeth: a misspelt field and a wrong type each fail."""
    bad = copy.deepcopy(find("StatefulSet", "footfall-collector"))
    container(bad)["readinessProbe"]["httpGett"] = container(bad)["readinessProbe"].pop("httpGet")
    with pytest.raises(kubernetes_validate.ValidationError, match="httpGett"):
        kubernetes_validate.validate(bad, KUBE_VERSIONS[-1], strict=True)
    bad = copy.deepcopy(find("StatefulSet", "footfall-collector"))
    bad["spec"]["replicas"] = "2"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBE_VERSIONS[-1], strict=True)


def test_one_image_built_from_the_server_dockerfile() -> None:
    """Every pod runs the image of deploy/server/Dockerfile.collector, which installs the
    program its command starts (a console script of footfall[collector])."""
    images = kustomization()["images"]
    assert [i["name"] for i in images] == ["footfall"] and images[0]["newTag"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    for obj in MANIFESTS:
        if obj["kind"] in ("StatefulSet", "Deployment"):
            c = container(obj)
            name = obj["metadata"]["name"]
            assert c["image"] == "footfall", name
            assert name in scripts
            # The program itself, or the shard's shell handing over to it.
            assert c["command"][0] == name or f"exec {name} " in c["command"][-1], name
    dockerfile = (SERVER / "Dockerfile.collector").read_text()
    assert "FROM python:3.11-slim" in dockerfile and "pip install '.[collector]'" in dockerfile


def test_pods_run_unprivileged_with_limits_and_probes() -> None:
    for obj in MANIFESTS:
        if obj["kind"] not in ("StatefulSet", "Deployment"):
            continue
        name = obj["metadata"]["name"]
        pod = obj["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        c = container(obj)
        assert c["securityContext"]["allowPrivilegeEscalation"] is False, name
        assert c["securityContext"]["capabilities"]["drop"] == ["ALL"], name
        res = c["resources"]
        assert set(res["requests"]) == set(res["limits"]) == {"cpu", "memory"}, name
        # Readiness is /healthz (503 while a dependency is away); liveness must not be, or
        # an outage of the broker or InfluxDB restarts the pods in a loop.
        assert c["readinessProbe"]["httpGet"]["path"] == "/healthz", name
        assert "httpGet" not in c["livenessProbe"], name
        assert port_named(c, c["livenessProbe"]["tcpSocket"]["port"]) == port_named(
            c, c["readinessProbe"]["httpGet"]["port"]
        )
        assert int(pod["terminationGracePeriodSeconds"]) >= 15, name
        # Every pod reads the same site folder, from the ConfigMap.
        [sites] = [v for v in pod["volumes"] if "configMap" in v]
        assert sites["configMap"]["name"] == "footfall-sites"
        [mount] = [m for m in c["volumeMounts"] if m["name"] == sites["name"]]
        assert mount["mountPath"] == "/etc/footfall/sites" and mount["readOnly"] is True
        assert "subPath" not in mount  # else an updated ConfigMap never reaches the pod


# -- each program: command line, settings, ports -------------------------------------------

Settings = CollectorSettings | AlertsSettings | WebSettings
PROGRAMS: dict[str, tuple[str, str, Callable[[list[str]], int], type[Settings]]] = {
    # workload, its main(), settings class, the env file its Secret is made from
    "collector": ("StatefulSet", "footfall-collector", collector_main, CollectorSettings),
    "alerts": ("StatefulSet", "footfall-alerts", alerts_main, AlertsSettings),
    "web": ("Deployment", "footfall-web", web_main, WebSettings),
}


@pytest.mark.parametrize("program", PROGRAMS)
def test_environment_is_real_settings_of_the_program(
    program: str, clean_env: pytest.MonkeyPatch
) -> None:
    kind, name, _main, cls = PROGRAMS[program]
    c = container(find(kind, name))
    env = literal_env(c)
    [secret] = c["envFrom"]
    assert secret["secretRef"]["name"] == name  # from deploy/server/{program}.env
    secret_env = {k: v.strip("'") for k, v in env_file(SERVER / f"{program}.env.example").items()}
    for variable in env:  # (the env files are tests/deploy/test_compose.py's)
        if variable.startswith("FOOTFALL_"):
            assert is_setting(cls, variable), f"{name}: {variable} is no setting of {cls}"
    assert "FOOTFALL_CLIENT_ID" not in env  # each shard's own session, from its shard
    for key, value in (secret_env | env).items():  # `env` wins over `envFrom`
        clean_env.setenv(key, value)
    settings = load_settings(cls)
    assert settings.http.host == "0.0.0.0"
    assert (
        settings.http.port
        == port_named(c, "http")
        == port_named(c, c["readinessProbe"]["httpGet"]["port"])
    )
    [svc] = [o for o in MANIFESTS if o["kind"] == "Service" and o["metadata"]["name"] == name]
    assert svc["spec"]["selector"] == find(kind, name)["spec"]["selector"]["matchLabels"]
    assert {p["targetPort"] for p in svc["spec"]["ports"]} == {"http"}
    # The broker and the database by their Services' names and ports.
    mqtt, influx = settings.mqtt, settings.influx
    assert (mqtt.host, mqtt.port) == ("mosquitto", _service_port("mosquitto"))
    assert influx.url == f"http://influxdb:{_service_port('influxdb')}"
    assert not influx.create_database


def _service_port(name: str) -> int:
    [port] = find("Service", name)["spec"]["ports"]
    return int(port["port"])


@pytest.mark.parametrize("program", ["alerts", "web"])
def test_command_parses_with_the_programs_own_parser(program: str) -> None:
    kind, name, main, _cls = PROGRAMS[program]
    command = container(find(kind, name))["command"]
    assert command[0] == name
    ns = parsed(main, command[1:])
    assert ns.command == "run"
    assert as_paths(ns.sites_dir) == [Path("/etc/footfall/sites")]
    assert getattr(ns, "shard", None) is None  # one process for every site


def test_alerts_state_on_a_volume_claim_of_one_replica(clean_env: pytest.MonkeyPatch) -> None:
    sts = find("StatefulSet", "footfall-alerts")
    assert sts["spec"]["replicas"] == 1  # two engines would notify every alert twice
    [claim] = sts["spec"]["volumeClaimTemplates"]
    [mount] = [m for m in container(sts)["volumeMounts"] if m["name"] == claim["metadata"]["name"]]
    for key, value in literal_env(container(sts)).items():
        clean_env.setenv(key, value)
    assert Path(mount["mountPath"]) == load_settings(AlertsSettings).state_dir
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert sts["spec"]["template"]["spec"]["securityContext"]["fsGroup"]
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"


def test_web_calls_the_alerts_service(clean_env: pytest.MonkeyPatch) -> None:
    web = find("Deployment", "footfall-web")
    assert web["spec"]["replicas"] == 2
    for key, value in literal_env(container(web)).items():
        clean_env.setenv(key, value)
    url = load_settings(WebSettings).alerts.url_for("iso-omena")
    [port] = find("Service", "footfall-alerts")["spec"]["ports"]
    assert url == f"http://footfall-alerts:{port['port']}"


def test_external_services_have_endpoints_for_their_ports() -> None:
    for name in ("mosquitto", "influxdb"):
        svc = find("Service", name)
        assert "selector" not in svc["spec"]  # not pods: the existing server
        slices = [
            o
            for o in MANIFESTS
            if o["kind"] == "EndpointSlice"
            and o["metadata"]["labels"]["kubernetes.io/service-name"] == name
        ]
        assert len(slices) == 1, name
        assert {(p["name"], p["port"]) for p in slices[0]["ports"]} == {
            (p["name"], p["targetPort"]) for p in svc["spec"]["ports"]
        }
        assert slices[0]["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"]


# -- the collector's shards ------------------------------------------------------------------


def _start_shard(tmp_path: Path, pod: str, env: dict[str, str]) -> tuple[int, list[str], str]:
    """The collector container's command as the pod runs it, with a stand-in
    `footfall-collector` first on PATH that records its arguments."""
    c = container(find("StatefulSet", "footfall-collector"))
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    stub = bindir / "footfall-collector"
    stub.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$ARGV_OUT"\n')
    stub.chmod(0o755)
    out = tmp_path / f"{pod}.argv"
    run_env = env | {"POD_NAME": pod, "PATH": f"{bindir}:/usr/bin:/bin", "ARGV_OUT": str(out)}
    proc = subprocess.run(
        [*c["command"], *c.get("args", [])], env=run_env, capture_output=True, text=True
    )
    argv = out.read_text().splitlines() if out.exists() else []
    return proc.returncode, argv, proc.stderr


def test_collector_shard_comes_from_the_pod_ordinal(tmp_path: Path) -> None:
    sts = find("StatefulSet", "footfall-collector")
    spec = sts["spec"]
    assert spec["podManagementPolicy"] == "Parallel"
    assert "volumeClaimTemplates" not in spec  # its state is the session and InfluxDB
    c = container(sts)
    [pod_name] = [e for e in c["env"] if e["name"] == "POD_NAME"]
    assert pod_name["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    env = literal_env(c)
    replicas = spec["replicas"]
    assert int(env["SHARDS"]) == replicas >= 2
    name = sts["metadata"]["name"]
    shards = []
    for ordinal in range(replicas):
        rc, argv, err = _start_shard(tmp_path, f"{name}-{ordinal}", env)
        assert rc == 0, err
        ns = parsed(collector_main, argv)
        assert ns.command == "run" and ns.log_format == "json"
        assert as_paths(ns.sites_dir) == [Path("/etc/footfall/sites")]
        shards.append(parse_shard(str(ns.shard)))
    assert [(s.index, s.count) for s in shards] == [(k, replicas) for k in range(1, replicas + 1)]
    # `kubectl scale` alone: the extra pod's shard is refused, the others are untouched.
    rc, argv, _ = _start_shard(tmp_path, f"{name}-{replicas}", env)
    try:
        extra = str(parsed(collector_main, argv).shard)
    except SystemExit as exc:  # refused by the parser itself
        assert exc.code == 2
    else:
        with pytest.raises(ValueError, match="at most N"):
            parse_shard(extra)
    # A pod name without an ordinal starts nothing.
    rc, argv, err = _start_shard(tmp_path, "footfall-collector", env)
    assert rc == 2 and argv == [] and "no shard in pod name" in err


def test_site_folder_fits_in_a_configmap() -> None:
    """`kubectl create configmap footfall-sites --from-file=deploy/sites/` takes every
    file as a key: names of [-._a-zA-Z0-9], 1 MiB in all."""
    files = [p for p in SITES.iterdir() if p.is_file()]
    assert any(p.name.endswith(".alerts.yaml") for p in files)
    for p in files:
        assert re.fullmatch(r"[-._a-zA-Z0-9]+", p.name), p.name
    assert sum(p.stat().st_size for p in files) < 1024 * 1024


def test_deployment_guide_names_what_the_manifests_need() -> None:
    guide = (REPO / "docs" / "deployment.md").read_text()
    section = guide[guide.index("## Kubernetes") :]
    section = section[: section.index("\n## ", 1)]
    assert "kubectl apply -k deploy/k8s" in section
    assert "create configmap footfall-sites" in section
    for program in PROGRAMS:
        assert f"create secret generic footfall-{program}" in section, program
        assert f"{program}.env" in section
    assert "force" in section and "StatefulSet" in section
