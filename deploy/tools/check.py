#!/usr/bin/env python3
"""Offline checks of deploy/: run with deploy/tools/.venv/bin/python (see install.sh).

1. Lints deploy/Dockerfile with hadolint and checks what the image must be (multi-stage,
   non-root numeric USER, `serve --config /etc/kubesphere/kubesphere.yaml`).
2. Validates every manifest in deploy/kubernetes/ against the Kubernetes JSON schemas (strict:
   unknown fields are errors) of the oldest and newest supported Kubernetes releases.
3. Lints and renders the Helm chart with Helm's own engine (helm-python-sdk binds Helm 4's Go
   SDK) for several value sets, validates every rendered object the same way, and checks that
   bad values fail with the chart's message.
4. Checks the contract between the objects: probes on /readyz and /healthz, a non-root
   read-only container, the Secret keys and ConfigMap the Deployment names exist, the Service
   and the PodDisruptionBudget select the pods.

With --out DIR it writes, for each scenario, the kubesphere.yaml the pods would read and a JSON
file with the container's args and environment (Secret values resolved), so the Rust test
crates/portcullis/tests/it/deploy.rs can run the real binary with exactly that.
Exit status 0 when everything passes; each failure is printed with the object it concerns.
"""

import argparse
import json
import os
import subprocess
import sys

import helm_python as helm
import kubernetes_validate
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(ROOT, "deploy")
CHART = os.path.join(DEPLOY, "helm", "portcullis")
VENV_BIN = os.path.dirname(sys.executable)
K8S_VERSIONS = ["1.26.0", kubernetes_validate.utils.latest_version()]
CONFIG_PATH = "/etc/kubesphere/kubesphere.yaml"
SERVE_ARGS = ["serve", "--config", CONFIG_PATH]

failures = []


def fail(where, message):
    failures.append(f"{where}: {message}")


def check_dockerfile():
    path = os.path.join(DEPLOY, "Dockerfile")
    lint = subprocess.run(
        [os.path.join(VENV_BIN, "hadolint"), "--failure-threshold", "info", path],
        capture_output=True,
        text=True,
    )
    if lint.returncode != 0:
        fail("deploy/Dockerfile", "hadolint:\n" + (lint.stdout + lint.stderr).strip())
    lines = [l.strip() for l in open(path, encoding="utf-8") if l.strip() and not l.lstrip().startswith("#")]
    froms = [l for l in lines if l.upper().startswith("FROM ")]
    if len(froms) < 2:
        fail("deploy/Dockerfile", "must be multi-stage (a builder stage and a small final stage)")
    final = lines[lines.index(froms[-1]):]
    users = [l.split(None, 1)[1] for l in final if l.upper().startswith("USER ")]
    if not users or users[-1].split(":")[0] in ("0", "root") or not users[-1].split(":")[0].isdigit():
        fail("deploy/Dockerfile", f"the final stage must run as a numeric non-root USER, found {users}")
    cmd = [l for l in final if l.upper().startswith("CMD ")]
    if not cmd or json.loads(cmd[-1][4:]) != SERVE_ARGS:
        fail("deploy/Dockerfile", f"CMD must be {SERVE_ARGS}")
    print(f"Dockerfile: hadolint clean, {len(froms)} stages, USER {users[-1] if users else '?'}")


def validate(where, obj):
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            fail(where, f"Kubernetes {version} schema: {path}: {e.message}")
        except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as e:
            fail(where, f"Kubernetes {version}: {e}")


def by_kind(objs, kind):
    return [o for o in objs if o.get("kind") == kind]


def container_env(container, secrets):
    env = {}
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
            continue
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref is None:
            continue
        data = secrets.get(ref["name"])
        if data is None:
            env[e["name"]] = None  # an existing Secret, not part of this rendering
        elif ref["key"] in data:
            env[e["name"]] = data[ref["key"]]
        elif not ref.get("optional"):
            env[e["name"]] = KeyError(f"Secret {ref['name']} has no key {ref['key']}")
    return env


def check_contract(scenario, objs, external_ok=(), out=None):
    """Checks the objects of one rendering against each other; writes the run contract."""
    where = lambda o: f"{scenario}: {o['kind']} {o['metadata']['name']}"
    deployments = by_kind(objs, "Deployment")
    if len(deployments) != 1:
        fail(scenario, f"expected one Deployment, found {len(deployments)}")
        return
    d = deployments[0]
    pod = d["spec"]["template"]
    labels = pod["metadata"].get("labels", {})
    selector = d["spec"]["selector"]["matchLabels"]
    if any(labels.get(k) != v for k, v in selector.items()):
        fail(where(d), "the selector does not match the pod labels")
    spec = pod["spec"]
    psc = spec.get("securityContext", {})
    if not psc.get("runAsNonRoot") or psc.get("runAsUser", 0) == 0:
        fail(where(d), "the pod must run as a non-root user (runAsNonRoot, runAsUser != 0)")
    if spec.get("automountServiceAccountToken") is not False:
        fail(where(d), "no service account token is needed: automountServiceAccountToken: false")
    (c,) = [c for c in spec["containers"] if c["name"] == "portcullis"]
    csc = c.get("securityContext", {})
    for key, want in (("readOnlyRootFilesystem", True), ("allowPrivilegeEscalation", False), ("runAsNonRoot", True)):
        if csc.get(key) is not want:
            fail(where(d), f"container securityContext.{key} must be {want}")
    if "ALL" not in csc.get("capabilities", {}).get("drop", []):
        fail(where(d), "the container must drop ALL capabilities")
    if c.get("args") != SERVE_ARGS:
        fail(where(d), f"args must be {SERVE_ARGS}, found {c.get('args')}")
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        got = c.get(probe, {}).get("httpGet", {})
        if got.get("path") != path or got.get("port") not in ("http", 9090):
            fail(where(d), f"{probe} must GET {path} on the http port, found {got}")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    if ports.get("http") != 9090:
        fail(where(d), "the container must expose port 9090 named http")
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    config_mount = mounts.get(os.path.dirname(CONFIG_PATH))
    if not config_mount or "subPath" in config_mount:
        fail(where(d), "the config must be mounted as a directory at /etc/kubesphere (no subPath, so edits reach the pod)")
        return
    cm_name = volumes[config_mount["name"]]["configMap"]["name"]
    configmaps = {o["metadata"]["name"]: o for o in by_kind(objs, "ConfigMap")}
    config_text = None
    if cm_name in configmaps:
        config_text = configmaps[cm_name].get("data", {}).get("kubesphere.yaml")
        if config_text is None:
            fail(where(configmaps[cm_name]), "has no key kubesphere.yaml")
    elif cm_name not in external_ok:
        fail(where(d), f"mounts ConfigMap {cm_name}, which is not rendered")
    secrets = {
        o["metadata"]["name"]: {**o.get("stringData", {}), **o.get("data", {})} for o in by_kind(objs, "Secret")
    }
    env = container_env(c, secrets)
    for name, value in env.items():
        if isinstance(value, KeyError):
            fail(where(d), f"env {name}: {value.args[0]}")
    if "PORTCULLIS_JWT_SECRET" not in env:
        fail(where(d), "PORTCULLIS_JWT_SECRET must come from the Secret")
    for svc in by_kind(objs, "Service"):
        sel = svc["spec"]["selector"]
        if any(labels.get(k) != v for k, v in sel.items()):
            fail(where(svc), "the selector does not match the pods")
        if any(p.get("targetPort") not in ("http", 9090) for p in svc["spec"]["ports"]):
            fail(where(svc), "must target the http port")
    pdbs = by_kind(objs, "PodDisruptionBudget")
    if not pdbs:
        fail(scenario, "no PodDisruptionBudget")
    for pdb in pdbs:
        if any(labels.get(k) != v for k, v in pdb["spec"]["selector"]["matchLabels"].items()):
            fail(where(pdb), "the selector does not match the pods")
    if out and config_text is not None:
        with open(os.path.join(out, f"{scenario}.kubesphere.yaml"), "w", encoding="utf-8") as f:
            f.write(config_text)
        contract = {
            "args": c["args"],
            "env": {k: v for k, v in env.items() if isinstance(v, str)},
            "replicas": d["spec"].get("replicas", 1),
        }
        with open(os.path.join(out, f"{scenario}.run.json"), "w", encoding="utf-8") as f:
            json.dump(contract, f, indent=2)


def check_manifests(out):
    folder = os.path.join(DEPLOY, "kubernetes")
    objs = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".yaml") or name == "kustomization.yaml":
            continue
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            for obj in yaml.safe_load_all(f):
                if obj:
                    validate(f"deploy/kubernetes/{name}: {obj.get('kind')} {obj.get('metadata', {}).get('name')}", obj)
                    objs.append(obj)
    with open(os.path.join(folder, "kustomization.yaml"), encoding="utf-8") as f:
        listed = set(yaml.safe_load(f)["resources"])
    files = {n for n in os.listdir(folder) if n.endswith(".yaml") and n != "kustomization.yaml"}
    if listed != files:
        fail("deploy/kubernetes/kustomization.yaml", f"resources {sorted(listed)} differ from the files {sorted(files)}")
    check_contract("manifests", objs, out=out)
    print(f"deploy/kubernetes: {len(objs)} objects valid for Kubernetes {', '.join(K8S_VERSIONS)}")


SCENARIOS = {
    # PostgreSQL, two replicas: the default shape.
    "helm-postgres": {"secrets": {"jwtSecret": "chart-test-secret-0123456789", "database": "postgres://portcullis:pw@postgresql:5432/portcullis", "adminPassword": "Chart-Admin-Passw0rd"}},
    # One replica on SQLite with a persistent volume.
    "helm-sqlite": {"replicaCount": 1, "persistence": {"enabled": True}, "secrets": {"jwtSecret": "chart-test-secret-0123456789"}},
    # Next to KubeSphere: its own ConfigMap and an existing Secret.
    "helm-existing": {"replicaCount": 3, "secrets": {"existingSecret": "portcullis-secrets"}, "config": {"existingConfigMap": "kubesphere-config"}},
}

BAD_VALUES = [
    ({}, "secrets.jwtSecret is required"),
    ({"secrets": {"jwtSecret": "x"}}, "replicaCount > 1 needs a shared PostgreSQL database"),
]


def check_chart(out):
    lint = helm.lint(CHART, SCENARIOS["helm-postgres"], strict=True)
    for m in lint.get("messages", []):
        # Severity 1 is INFO (such as "icon is recommended"); anything above is a finding.
        if m.get("severity", 0) > 1:
            fail(f"helm lint {m.get('path')}", m.get("error"))
    for e in lint.get("errors", []):
        fail("helm lint", str(e))
    with helm.Chart.load(CHART) as chart:
        for scenario, values in SCENARIOS.items():
            try:
                rendered = chart.render(values, name="portcullis", namespace="kubesphere-system", is_install=True)
            except helm.HelmError as e:
                fail(scenario, f"helm template failed: {e}")
                continue
            objs = []
            for template, text in sorted(rendered.items()):
                if template.endswith("NOTES.txt"):
                    continue
                for obj in yaml.safe_load_all(text):
                    if obj:
                        validate(f"{scenario}: {template}: {obj.get('kind')} {obj['metadata']['name']}", obj)
                        objs.append(obj)
            check_contract(scenario, objs, external_ok=("kubesphere-config",), out=out)
            print(f"helm {scenario}: {len(objs)} objects ({', '.join(sorted(o['kind'] for o in objs))})")
        for values, message in BAD_VALUES:
            try:
                chart.render(values, name="portcullis", namespace="kubesphere-system", is_install=True)
                fail("helm", f"values {values} rendered, but should fail with {message!r}")
            except helm.HelmError as e:
                if message not in str(e):
                    fail("helm", f"values {values} failed with {e!s}, expected {message!r}")
    print(f"helm: chart linted and rendered with Helm SDK {helm.helm_sdk_version()}; bad values refused")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write each scenario's kubesphere.yaml and run contract here")
    args = parser.parse_args()
    if args.out:
        os.makedirs(args.out, exist_ok=True)
    check_dockerfile()
    check_manifests(args.out)
    check_chart(args.out)
    if failures:
        for f in failures:
            print(f"FAIL {f}", file=sys.stderr)
        print(f"deploy checks: {len(failures)} failure(s)", file=sys.stderr)
        return 1
    print("deploy checks: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
