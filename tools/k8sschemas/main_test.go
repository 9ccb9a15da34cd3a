package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestConvertInlinesAndTightens(t *testing.T) {
	defs := map[string]any{
		"Spec": map[string]any{
			"type": "object",
			"properties": map[string]any{
				"port":  map[string]any{"x-kubernetes-int-or-string": true, "type": "string", "description": "d"},
				"owner": map[string]any{"allOf": []any{map[string]any{"$ref": "#/components/schemas/Spec"}}},
				"note":  map[string]any{"type": "string", "nullable": true, "format": "byte"},
				"raw":   map[string]any{"type": "object", "properties": map[string]any{"a": map[string]any{"type": "string"}}, "x-kubernetes-preserve-unknown-fields": true},
				"tags":  map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}},
			},
		},
	}
	got := convert(defs["Spec"].(map[string]any), defs, map[string]bool{"Spec": true})
	want := `{"additionalProperties":false,"properties":{` +
		`"note":{"type":["string","null"]},` +
		`"owner":{},` +
		`"port":{"anyOf":[{"type":"integer"},{"type":"string"}]},` +
		`"raw":{"properties":{"a":{"type":"string"}},"type":"object"},` +
		`"tags":{"additionalProperties":{"type":"string"},"type":"object"}},"type":"object"}`
	b, _ := json.Marshal(got)
	if string(b) != want {
		t.Fatalf("convert:\n got %s\nwant %s", b, want)
	}
}

func TestFileNamesFollowKubeconformLayout(t *testing.T) {
	for g, want := range map[gvk]string{
		{"", "v1", "Service"}:                              "service-v1.json",
		{"apps", "v1", "DaemonSet"}:                        "daemonset-apps-v1.json",
		{"rbac.authorization.k8s.io", "v1", "ClusterRole"}: "clusterrole-rbac-v1.json",
		{"monitoring.coreos.com", "v1", "ServiceMonitor"}:  "servicemonitor-monitoring-v1.json",
	} {
		if got := g.fileName(); got != want {
			t.Errorf("%v: %s, want %s", g, got, want)
		}
	}
}

func TestWriteCRDConvertsEveryVersion(t *testing.T) {
	dir := t.TempDir()
	crd := filepath.Join(dir, "crd.yaml")
	os.WriteFile(crd, []byte(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
spec:
  group: example.com
  names: {kind: Widget}
  versions:
  - name: v1
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
  - name: v2
    schema:
      openAPIV3Schema: {type: object}
`), 0o644)
	n, err := writeCRD(dir, crd)
	if err != nil || n != 2 {
		t.Fatalf("writeCRD = %d, %v; want 2 schemas", n, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "widget-example-v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"additionalProperties":false,"properties":{"spec":{"additionalProperties":false,"properties":{"size":{"type":"integer"}},"type":"object"}},"type":"object"}`
	if string(b) != want {
		t.Fatalf("widget v1 schema:\n got %s\nwant %s", b, want)
	}
	if _, err := writeCRD(dir, filepath.Join(dir, "widget-example-v1.json")); err == nil {
		t.Fatal("a file without a CustomResourceDefinition was accepted")
	}
}
