"""Offline checks of the Kubernetes manifests and the Helm chart (docs/fleet.md, "Kubernetes").

Run by packaging/validate-k8s.sh, which installs the pinned tools. Every object of
packaging/kubernetes/ and every object the chart renders (with several sets of values) is
validated against the Kubernetes schemas that kubernetes-validate ships for KUBE_VERSION, strict
(unknown fields refused); the PodMonitor against the vendored subset of its CRD. The chart is
linted by Helm's own linter (helm-python-sdk, Helm's Go SDK), its DaemonSet's pod must equal the
plain manifest's so the two cannot drift, and both must name tern's version (Cargo.toml). With
--tern, every ConfigMap's turnserver.conf is rendered by the init container's script and must
pass `tern check-config`.
"""

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml

KUBE_VERSION = "1.33.0"
ROOT = Path(__file__).resolve().parent
PLAIN = ROOT / "kubernetes"
CHART = ROOT / "helm" / "tern"
CRD_SCHEMAS = {("monitoring.coreos.com/v1", "PodMonitor"): PLAIN / "schemas" / "podmonitor-v1.json"}
SECRET = {"auth": {"staticAuthSecret": "a-test-secret"}}
VALUE_SETS = {
    "defaults": SECRET,
    "own secret, public node address, PodMonitor, node selector": {
        "auth": {"existingSecret": "my-turn-secret"},
        "externalIp": "none",
        "podMonitor": {"enabled": True, "interval": "15s"},
        "nodeSelector": {"tern.example.org/turn": "true"},
        "tolerations": [{"key": "turn", "operator": "Exists", "effect": "NoSchedule"}],
        "config": {
            "realm": "turn.example.org",
            "listeningPort": 3478,
            "tlsListeningPort": 5350,
            "minPort": 40000,
            "maxPort": 49999,
            "metricsPort": 9641,
            "extra": "total-quota=5000\nalternate-server-mode=full\n",
        },
    },
    "TLS from a certificate Secret": dict(SECRET, tls={"secretName": "turn-example-org-tls"}),
}
# Values the chart must refuse (values.schema.json), and why.
REFUSED = {
    "a privileged port (the pod has no capabilities)": dict(SECRET, config={
        "realm": "turn.example.org", "listeningPort": 3478, "tlsListeningPort": 443,
        "minPort": 49152, "maxPort": 65535, "metricsPort": 9641}),
    "an unknown value (a typo)": dict(SECRET, externalIP="none"),
}

failures = []


def fail(where, why):
    failures.append(f"{where}: {why}")


def validate(where, doc):
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in CRD_SCHEMAS:
        schema = json.loads(CRD_SCHEMAS[key].read_text())
        for e in jsonschema.Draft7Validator(schema).iter_errors(doc):
            fail(where, f"{doc['kind']}: {e.message} at {list(e.absolute_path)}")
        return
    try:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        fail(where, f"{doc.get('kind')}: {e.message} at {list(e.path)}")
    except kubernetes_validate.SchemaNotFoundError as e:
        fail(where, f"no schema for {key}: {e}")


def documents(where, text):
    return [d for d in yaml.safe_load_all(text) if d is not None]


def check_config(where, doc, tern):
    conf = doc.get("data", {}).get("turnserver.conf")
    if conf is None or tern is None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        base, secret, out = (Path(tmp) / n for n in ("base.conf", "secret", "turnserver.conf"))
        base.write_text(conf)
        secret.write_text("a-test-secret\n")
        env = dict(os.environ, TERN_BASE_CONF=str(base), TERN_SECRET_FILE=str(secret),
                   TERN_CONF=str(out), TERN_BIN=tern, TERN_EXTERNAL_IP="203.0.113.10")
        run = subprocess.run(["sh", str(ROOT / "container" / "tern-k8s-config")], env=env,
                             capture_output=True, text=True, timeout=60)
        if run.returncode != 0:
            fail(where, f"turnserver.conf does not pass check-config:\n{run.stdout}{run.stderr}")


def cargo_version():
    for line in (ROOT.parent / "Cargo.toml").read_text().splitlines():
        if line.startswith("version = "):
            return line.split('"')[1]
    raise SystemExit("no version in Cargo.toml")


def pod(doc):
    """The DaemonSet's pod spec without what the chart adds on purpose."""
    spec = copy.deepcopy(doc["spec"]["template"]["spec"])
    for c in spec.get("initContainers", []) + spec.get("containers", []):
        c.pop("imagePullPolicy", None)
    return spec


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tern", help="the tern binary, to check every ConfigMap's configuration")
    args = ap.parse_args()
    checked = 0
    failed_objects = 0

    plain = {}
    for path in sorted(PLAIN.glob("*.yaml")):
        for doc in documents(path.name, path.read_text()):
            before = len(failures)
            validate(path.name, doc)
            check_config(path.name, doc, args.tern)
            plain[doc["kind"]] = doc
            checked += 1
            failed_objects += len(failures) > before

    report = helm.lint(str(CHART), SECRET, strict=True, kube_version=f"v{KUBE_VERSION}")
    for m in report.get("messages", []):
        if m["severity"] >= 2:
            fail(f"helm lint {m['path']}", m["error"])
    for e in report.get("errors", []):
        fail("helm lint", e)

    chart = helm.Chart.load(str(CHART))
    version = cargo_version()
    if chart.metadata.get("appVersion") != version:
        fail("Chart.yaml", f"appVersion is not tern's version {version}")
    for c in plain["DaemonSet"]["spec"]["template"]["spec"]["initContainers"] + \
            plain["DaemonSet"]["spec"]["template"]["spec"]["containers"]:
        if c["image"] != f"tern:{version}":
            fail("daemonset.yaml", f"{c['name']}: image {c['image']} is not tern:{version}")
    for name, values in VALUE_SETS.items():
        try:
            chart.validate_schema(values)
            rendered = chart.render(values, name="tern", namespace="tern", is_install=True)
        except helm.HelmError as e:
            fail(f"chart ({name})", str(e))
            continue
        for template, text in sorted(rendered.items()):
            if not template.endswith(".yaml"):
                continue
            for doc in documents(template, text):
                where = f"chart ({name}) {template}"
                before = len(failures)
                validate(where, doc)
                check_config(where, doc, args.tern)
                drifted = name == "defaults" and doc["kind"] == "DaemonSet"
                if drifted and pod(doc) != pod(plain["DaemonSet"]):
                    fail(where, "the pod differs from packaging/kubernetes/daemonset.yaml")
                checked += 1
                failed_objects += len(failures) > before

    for name, values in REFUSED.items():
        try:
            chart.validate_schema(values)
            fail(f"chart ({name})", "accepted by values.schema.json")
        except helm.HelmError:
            pass

    # No secret, no release: the chart refuses to render an open relay.
    try:
        chart.render({}, name="tern", namespace="tern", is_install=True)
        fail("chart (no secret)", "rendered without auth.staticAuthSecret or auth.existingSecret")
    except helm.HelmError as e:
        if "open relay" not in str(e):
            fail("chart (no secret)", f"refused for another reason: {e}")

    for f in failures:
        print(f"FAIL {f}")
    print(f"Kubernetes {KUBE_VERSION} objects, chart lint and renders: "
          f"{checked - failed_objects} passed, {failed_objects} failed, {len(failures)} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
