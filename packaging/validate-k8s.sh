#!/usr/bin/env bash
# Validates packaging/kubernetes/ and the Helm chart packaging/helm/tern/ offline
# (packaging/validate_k8s.py says what is checked). Needs only PyPI: the pinned tools go into a
# virtual environment under target/. With TERN_BIN (or a built target/debug/tern), every
# ConfigMap's configuration is also checked with `tern check-config`.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${TERN_K8S_VENV:-target/k8s-venv}
# kubernetes-validate ships the Kubernetes schemas; helm-python-sdk ships Helm's Go SDK.
tools=(kubernetes-validate==1.37.0 helm-python-sdk==0.2.2 PyYAML==6.0.4)
if ! "$venv/bin/python" -c 'import kubernetes_validate, helm_python, yaml' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "${tools[@]}"
fi
tern=${TERN_BIN:-target/debug/tern}
args=()
if [ -x "$tern" ]; then
    args+=(--tern "$tern")
else
    echo "NOTICE: no tern binary at $tern: configurations not checked with check-config"
fi
exec "$venv/bin/python" packaging/validate_k8s.py "${args[@]}"
