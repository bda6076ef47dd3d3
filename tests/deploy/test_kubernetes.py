"""The Kustomize overlays in deploy/kubernetes build, and what they build is what
docs/operations.md promises: probes, a locked-down pod, replicas per store, a disruption
budget and a network policy for the pods, secrets only by name, documented settings only.

``kubectl kustomize`` builds each overlay offline. ``scripts/test`` installs Debian's
``kubernetes-client`` (kubectl 1.20, whose kustomize is the oldest the files are written for);
without kubectl these tests skip, and fail when ``CI=true``. ``BURNLINK_TEST_KUBECTL`` names
another kubectl.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.tools import DEPLOY, documented_settings, require_tool

KUSTOMIZE = DEPLOY / "kubernetes"
OVERLAYS = ("sqlite", "redis", "postgres")
SECRET = "burnlink-secrets"
PORT = 8000
LABELS = {"app.kubernetes.io/name": "burnlink"}
# The store and audit-store ports each overlay's pods must reach.
STORE_PORTS = {"sqlite": set[int](), "redis": {6379, 5432}, "postgres": {5432}}

Object = dict[str, Any]


def _kubectl() -> str:
    return require_tool(
        "kubectl", "BURNLINK_TEST_KUBECTL", "apt-get install kubernetes-client (scripts/test does)"
    )


@pytest.fixture(scope="module")
def built() -> dict[str, list[Object]]:
    """Each overlay, built by ``kubectl kustomize``, as a list of objects."""
    kubectl = _kubectl()
    objects: dict[str, list[Object]] = {}
    for overlay in OVERLAYS:
        result = subprocess.run(  # noqa: S603 - fixed argv
            [kubectl, "kustomize", str(KUSTOMIZE / "overlays" / overlay)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert result.returncode == 0, f"{overlay}: {result.stderr}"
        objects[overlay] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return objects


def _one(objects: list[Object], kind: str, name: str = "burnlink") -> Object:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _pod(objects: list[Object]) -> Object:
    spec: Object = _one(objects, "Deployment")["spec"]["template"]["spec"]
    return spec


def _container(objects: list[Object]) -> Object:
    containers: list[Object] = _pod(objects)["containers"]
    assert [c["name"] for c in containers] == ["burnlink"]
    return containers[0]


def _settings(objects: list[Object]) -> dict[str, str]:
    """The container's environment: its ConfigMap's data, then its own ``env``."""
    container = _container(objects)
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        data = _one(objects, "ConfigMap", source["configMapRef"]["name"])["data"]
        environment.update({str(k): str(v) for k, v in data.items()})
    for variable in container.get("env", []):
        assert "value" in variable, f"{variable['name']}: only plain values, files for secrets"
        environment[variable["name"]] = str(variable["value"])
    return environment


def _mounts(objects: list[Object]) -> dict[str, Object]:
    """Mount path -> the volume mounted there."""
    volumes = {v["name"]: v for v in _pod(objects)["volumes"]}
    return {m["mountPath"]: volumes[m["name"]] for m in _container(objects)["volumeMounts"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_probes_ask_healthz_and_readyz_on_the_server_port(
    built: dict[str, list[Object]], overlay: str
) -> None:
    container = _container(built[overlay])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}

    assert ports == {"http": PORT}
    assert _settings(built[overlay])["BURNLINK_PORT"] == str(PORT)
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_pod_runs_unprivileged_on_a_read_only_root(
    built: dict[str, list[Object]], overlay: str
) -> None:
    pod = _pod(built[overlay])
    container = _container(built[overlay])
    context = container["securityContext"]

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert context["runAsNonRoot"] is True
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context.get("privileged", False) is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    # A Service named burnlink would inject BURNLINK_PORT=tcp://..., which the server refuses.
    assert pod["enableServiceLinks"] is False


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_writable_paths_are_volumes(
    built: dict[str, list[Object]], overlay: str
) -> None:
    """With a read-only root, every path the server writes is a volume of its own."""
    mounts = _mounts(built[overlay])
    settings = _settings(built[overlay])

    assert "/tmp" in mounts  # noqa: S108 - the pod's own /tmp, an emptyDir
    assert settings["BURNLINK_KEY_DIR"] in mounts
    store = settings.get("BURNLINK_STORE", "")
    if store.startswith("sqlite://"):
        assert str(Path(store.removeprefix("sqlite://")).parent) in mounts


def test_kubernetes_sqlite_overlay_is_one_pod_on_a_volume(built: dict[str, list[Object]]) -> None:
    objects = built["sqlite"]
    deployment = _one(objects, "Deployment")
    settings = _settings(objects)
    data = _mounts(objects)["/data"]
    claim = _one(objects, "PersistentVolumeClaim", data["persistentVolumeClaim"]["claimName"])

    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert settings["BURNLINK_STORE"] == "sqlite:///data/burnlink.db"
    assert settings["BURNLINK_KEY_DIR"] == "/data"
    assert "BURNLINK_STORE_FILE" not in settings


@pytest.mark.parametrize("overlay", ["redis", "postgres"])
def test_kubernetes_shared_store_overlays_run_several_pods(
    built: dict[str, list[Object]], overlay: str
) -> None:
    objects = built[overlay]
    deployment = _one(objects, "Deployment")
    settings = _settings(objects)

    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert "BURNLINK_STORE" not in settings
    assert settings["BURNLINK_STORE_FILE"].startswith("/run/secrets/burnlink/")
    # Several pods must sign and chain with the same keys, so none may generate its own.
    assert {"BURNLINK_AUDIT_KEY_FILE", "BURNLINK_SIGNING_KEY_FILE"} <= settings.keys()
    assert _one(objects, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    if overlay == "redis":  # one audit chain for all pods, not an audit.db each
        assert settings["BURNLINK_AUDIT_STORE_FILE"].startswith("/run/secrets/burnlink/")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_pods_are_selected_by_service_budget_and_policies(
    built: dict[str, list[Object]], overlay: str
) -> None:
    objects = built[overlay]
    deployment = _one(objects, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = _one(objects, "Service")
    budget = _one(objects, "PodDisruptionBudget")
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]

    assert LABELS.items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"] == LABELS
    assert service["spec"]["selector"] == LABELS
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert budget["spec"]["selector"]["matchLabels"] == LABELS
    assert len(budget["spec"].keys() & {"minAvailable", "maxUnavailable"}) == 1
    assert policies
    for spread in deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]:
        assert spread["labelSelector"]["matchLabels"] == LABELS
    for policy in policies:
        assert policy["spec"]["podSelector"]["matchLabels"] == LABELS


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_network_policy_admits_the_server_port_and_reaches_the_store(
    built: dict[str, list[Object]], overlay: str
) -> None:
    policies = [o["spec"] for o in built[overlay] if o["kind"] == "NetworkPolicy"]
    ingress = [rule for p in policies for rule in p.get("ingress", [])]
    egress_ports = {
        port["port"] for p in policies for rule in p.get("egress", []) for port in rule["ports"]
    }

    assert any(set(p["policyTypes"]) == {"Ingress", "Egress"} for p in policies)
    assert [port["port"] for rule in ingress for port in rule["ports"]] == [PORT]
    assert {53, 443} | STORE_PORTS[overlay] <= egress_ports


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_secret_is_mounted_by_name_and_never_built(
    built: dict[str, list[Object]], overlay: str
) -> None:
    objects = built[overlay]
    secrets = [v["secret"] for v in _mounts(objects).values() if "secret" in v]

    assert [s["secretName"] for s in secrets] == [SECRET]
    assert not [o for o in objects if o["kind"] == "Secret"]
    for path in KUSTOMIZE.rglob("*.yaml"):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert "secretGenerator" not in document, path


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_file_settings_point_into_the_mounted_secret(
    built: dict[str, list[Object]], overlay: str
) -> None:
    mounts = _mounts(built[overlay])
    (secret_path,) = [path for path, volume in mounts.items() if "secret" in volume]
    files = {k: v for k, v in _settings(built[overlay]).items() if k.endswith("_FILE")}

    assert files
    for name, path in files.items():
        assert Path(path).parent == Path(secret_path), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_settings_are_documented(built: dict[str, list[Object]], overlay: str) -> None:
    undocumented = _settings(built[overlay]).keys() - documented_settings()

    assert not undocumented


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_settings_pass_config_check(
    built: dict[str, list[Object]], overlay: str, tmp_path: Path
) -> None:
    """``burnlink config check`` accepts the pod's environment, with each volume a folder of
    ``tmp_path`` and the Secret's files holding valid values."""
    objects = built[overlay]
    folders = {path: tmp_path / volume["name"] for path, volume in _mounts(objects).items()}
    for folder in folders.values():
        folder.mkdir()
    secret = next(folders[p] for p, v in _mounts(objects).items() if "secret" in v)
    (secret / "audit-key").write_text("ab" * 32 + "\n")
    (secret / "signing-key").write_text("cd" * 32 + "\n")
    (secret / "store").write_text(
        "redis://redis:6379/0\n" if overlay == "redis" else "postgresql://burnlink@db/burnlink\n"
    )
    (secret / "audit-store").write_text("postgresql://burnlink@db/burnlink\n")

    def local(value: str) -> str:
        for path, folder in folders.items():
            if value == path or value.startswith(f"{path}/"):
                return str(folder) + value.removeprefix(path)
            if value.startswith(f"sqlite://{path}/"):
                return f"sqlite://{folder}" + value.removeprefix(f"sqlite://{path}")
        return value

    environment = {k: v for k, v in os.environ.items() if not k.startswith("BURNLINK_")}
    environment.update({k: local(v) for k, v in _settings(objects).items()})
    result = subprocess.run(
        [sys.executable, "-m", "burnlink", "config", "check"],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert "BURNLINK_HOST = 0.0.0.0" in result.stdout
