#!/usr/bin/env bash
# Validates every manifest under deploy/ with kubeconform in strict mode.
# kubeconform has no built-in schemas; it downloads them unless KUBECONFORM_SCHEMAS points
# at a local copy of the kubernetes-json-schema layout, e.g.
#   KUBECONFORM_SCHEMAS='/srv/schemas/{{.NormalizedKubernetesVersion}}-standalone-strict/{{.ResourceKind}}{{.KindSuffix}}.json'
# CRDs (ServiceMonitor) are skipped: their schemas are not part of Kubernetes.
# Offline, `go test ./deploy/...` validates the same manifests strictly against the API types.
set -euo pipefail
cd "$(dirname "$0")/.."
kc=${KUBECONFORM:-$(command -v kubeconform || echo "$(go env GOPATH)/bin/kubeconform")}
args=(-strict -summary -skip ServiceMonitor,Kustomization)
if [[ -n "${KUBECONFORM_SCHEMAS:-}" ]]; then
	args+=(-schema-location "$KUBECONFORM_SCHEMAS")
fi
find . -name '*.yaml' ! -name kustomization.yaml -print0 | xargs -0 "$kc" "${args[@]}"
