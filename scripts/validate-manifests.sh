#!/usr/bin/env bash
# Validates the Kubernetes manifests in deploy/kubernetes/ against the Kubernetes API
# schemas, offline: kubernetes-validate (from PyPI, pinned below) carries the schemas of
# every Kubernetes version it knows, so nothing beyond the package index is fetched.
#
#   scripts/validate-manifests.sh
#
# Installs kubernetes-validate into a virtual environment under target/ on first use
# (needs python3 with venv). Validates strictly (unknown fields are errors) against the
# oldest and the newest Kubernetes version the manifests are meant for. A resource with no
# schema (a misspelt kind or apiVersion) is an error, not the tool's warning. The
# kustomization is not a Kubernetes resource: tests/manifests.rs of the cluster example
# checks that it lists the resources.
set -euo pipefail
cd "$(dirname "$0")/.."

validator_version=1.37.0
kubernetes_versions=(1.30.0 1.37.0)
venv=${KUBERNETES_VALIDATE_VENV:-target/kubernetes-validate}

if ! "$venv/bin/kubernetes-validate" --version 2>/dev/null | grep -q "$validator_version"; then
  echo "installing kubernetes-validate $validator_version into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "kubernetes-validate==$validator_version"
fi

manifests=()
for file in deploy/kubernetes/*.yaml; do
  [[ "$(basename "$file")" == kustomization.yaml ]] || manifests+=("$file")
done

status=0
for version in "${kubernetes_versions[@]}"; do
  if ! output=$("$venv/bin/kubernetes-validate" --strict -k "$version" "${manifests[@]}" 2>&1); then
    status=1
  fi
  printf '%s\n' "$output"
  if grep -q '^WARN' <<<"$output"; then
    echo "error: a warning above (Kubernetes $version) is treated as a failure" >&2
    status=1
  fi
done
if [[ $status -eq 0 ]]; then
  echo "${#manifests[@]} manifests valid against Kubernetes ${kubernetes_versions[*]}"
fi
exit $status
