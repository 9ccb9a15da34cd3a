//go:build tools

// Package crds pins the Prometheus Operator API types whose CRDs controller-gen generates
// for kubeconform: the same generator and markers the operator builds its CRDs from.
package crds

import _ "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
