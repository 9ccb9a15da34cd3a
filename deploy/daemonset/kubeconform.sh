#!/usr/bin/env bash
# Validates every manifest under deploy/daemonset, and what kustomize renders from each
# kustomization, with kubeconform in strict mode (unknown fields and duplicate keys fail).
# `make kubeconform` installs kubeconform and kustomize and generates the schemas offline;
# to use other schemas, set KUBECONFORM_SCHEMAS to a kubeconform -schema-location template.
set -euo pipefail
cd "$(dirname "$0")"
: "${KUBECONFORM:?run through make kubeconform, or set KUBECONFORM to the kubeconform binary}"
: "${KUSTOMIZE:?run through make kubeconform, or set KUSTOMIZE to the kustomize binary}"
: "${KUBECONFORM_SCHEMAS:?run through make kubeconform, or set KUBECONFORM_SCHEMAS to a schema-location template}"
args=(-strict -summary -kubernetes-version "${K8S_VERSION:-1.30.0}" -schema-location "$KUBECONFORM_SCHEMAS")
# Kustomization files are kustomize's input, not Kubernetes objects; their output is checked below.
find . -name '*.yaml' ! -name kustomization.yaml -print0 | sort -z | xargs -0 "$KUBECONFORM" "${args[@]}"
for k in $(find . -name kustomization.yaml -printf '%h\n' | sort); do
	echo "kustomize build $k:"
	"$KUSTOMIZE" build "$k" | "$KUBECONFORM" "${args[@]}" -
done
