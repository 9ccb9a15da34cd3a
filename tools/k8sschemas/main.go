// Command k8sschemas writes the JSON schemas kubeconform validates against, offline:
// Kubernetes' own OpenAPI v3 documents (as shipped, embedded, by kubectl-validate) and the
// openAPIV3Schema of any CRD files given, converted to kubeconform's
// {kind}{-group}-{version}.json layout in a "-standalone-strict" directory: references
// inlined, and additionalProperties:false on every object whose fields are known, which is
// what makes kubeconform's -strict reject unknown fields.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/kubectl-validate/pkg/openapiclient"
	"sigs.k8s.io/yaml"
)

func main() {
	out := flag.String("out", "", "directory to write the schemas into (required)")
	k8s := flag.String("kubernetes-version", "1.30.0", "Kubernetes version whose built-in schemas to write")
	flag.Parse()
	if *out == "" {
		fail(errors.New("-out is required"))
	}
	dir := filepath.Join(*out, "v"+*k8s+"-standalone-strict")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fail(err)
	}
	n, err := writeBuiltins(dir, *k8s)
	if err != nil {
		fail(err)
	}
	for _, crd := range flag.Args() {
		m, err := writeCRD(dir, crd)
		if err != nil {
			fail(fmt.Errorf("%s: %w", crd, err))
		}
		n += m
	}
	fmt.Printf("k8sschemas: %d schemas in %s\n", n, dir)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "k8sschemas:", err)
	os.Exit(1)
}

func writeBuiltins(dir, version string) (int, error) {
	minor := strings.Join(strings.SplitN(version, ".", 3)[:2], ".")
	paths, err := openapiclient.NewHardcodedBuiltins(minor).Paths()
	if err != nil {
		return 0, err
	}
	names := make([]string, 0, len(paths))
	for p := range paths {
		names = append(names, p)
	}
	sort.Strings(names)
	written := map[string]bool{}
	for _, p := range names {
		raw, err := paths[p].Schema("application/json")
		if err != nil {
			return len(written), fmt.Errorf("%s: %w", p, err)
		}
		var doc struct {
			Components struct {
				Schemas map[string]any `json:"schemas"`
			} `json:"components"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			return len(written), fmt.Errorf("%s: %w", p, err)
		}
		defs := doc.Components.Schemas
		for _, name := range sortedKeys(defs) {
			def, _ := defs[name].(map[string]any)
			for _, gvk := range groupVersionKinds(def) {
				if written[gvk.fileName()] {
					continue
				}
				schema := convert(def, defs, map[string]bool{name: true})
				if err := writeSchema(dir, gvk, schema); err != nil {
					return len(written), err
				}
				written[gvk.fileName()] = true
			}
		}
	}
	return len(written), nil
}

type gvk struct{ group, version, kind string }

func groupVersionKinds(def map[string]any) []gvk {
	list, _ := def["x-kubernetes-group-version-kind"].([]any)
	var out []gvk
	for _, e := range list {
		m, _ := e.(map[string]any)
		g, _ := m["group"].(string)
		v, _ := m["version"].(string)
		k, _ := m["kind"].(string)
		if v != "" && k != "" {
			out = append(out, gvk{g, v, k})
		}
	}
	return out
}

// fileName follows kubeconform's registry: lower-case kind, then the first label of the
// group, then the version.
func (g gvk) fileName() string {
	suffix := "-" + strings.ToLower(g.version)
	if g.group != "" {
		suffix = "-" + strings.ToLower(strings.Split(g.group, ".")[0]) + suffix
	}
	return strings.ToLower(g.kind) + suffix + ".json"
}

func writeSchema(dir string, g gvk, schema map[string]any) error {
	b, err := json.Marshal(schema)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, g.fileName()), b, 0o644)
}

func writeCRD(dir, file string) (int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, doc := range bytes.Split(b, []byte("\n---")) {
		var crd struct {
			Kind string `json:"kind"`
			Spec struct {
				Group string `json:"group"`
				Names struct {
					Kind string `json:"kind"`
				} `json:"names"`
				Versions []struct {
					Name   string `json:"name"`
					Schema struct {
						OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
					} `json:"schema"`
				} `json:"versions"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(doc, &crd); err != nil {
			return n, err
		}
		if crd.Kind != "CustomResourceDefinition" {
			continue
		}
		for _, v := range crd.Spec.Versions {
			if v.Schema.OpenAPIV3Schema == nil {
				return n, fmt.Errorf("%s %s has no openAPIV3Schema", crd.Spec.Names.Kind, v.Name)
			}
			g := gvk{crd.Spec.Group, v.Name, crd.Spec.Names.Kind}
			if err := writeSchema(dir, g, convert(v.Schema.OpenAPIV3Schema, nil, map[string]bool{})); err != nil {
				return n, err
			}
			n++
		}
	}
	if n == 0 {
		return 0, errors.New("no CustomResourceDefinition found")
	}
	return n, nil
}

// convert turns one OpenAPI v3 schema into a self-contained JSON schema. References are
// inlined; a reference back into the chain being inlined (JSONSchemaProps refers to itself)
// becomes the permissive {} so the output stays finite.
func convert(s map[string]any, defs map[string]any, inChain map[string]bool) map[string]any {
	if ref, ok := s["$ref"].(string); ok {
		return resolve(ref, defs, inChain)
	}
	if all, ok := s["allOf"].([]any); ok && len(all) == 1 {
		if only, ok := all[0].(map[string]any); ok {
			if ref, ok := only["$ref"].(string); ok {
				out := resolve(ref, defs, inChain)
				if s["nullable"] == true {
					allowNull(out)
				}
				return out
			}
		}
	}
	out := map[string]any{}
	for k, v := range s {
		switch k {
		case "description", "default", "example", "format", "externalDocs", "nullable":
			continue
		case "properties", "patternProperties":
			props := map[string]any{}
			for name, p := range v.(map[string]any) {
				props[name] = convert(p.(map[string]any), defs, inChain)
			}
			out[k] = props
		case "items", "not":
			if m, ok := v.(map[string]any); ok {
				out[k] = convert(m, defs, inChain)
			}
		case "additionalProperties":
			if m, ok := v.(map[string]any); ok {
				out[k] = convert(m, defs, inChain)
			} else {
				out[k] = v
			}
		case "allOf", "anyOf", "oneOf":
			var list []any
			for _, e := range v.([]any) {
				list = append(list, convert(e.(map[string]any), defs, inChain))
			}
			out[k] = list
		default:
			if strings.HasPrefix(k, "x-") {
				continue
			}
			out[k] = v
		}
	}
	if s["x-kubernetes-int-or-string"] == true {
		delete(out, "type")
		out["anyOf"] = []any{map[string]any{"type": "integer"}, map[string]any{"type": "string"}}
	}
	_, hasProps := out["properties"]
	_, hasAdditional := out["additionalProperties"]
	if hasProps && !hasAdditional && s["x-kubernetes-preserve-unknown-fields"] != true {
		out["additionalProperties"] = false
	}
	if s["nullable"] == true {
		allowNull(out)
	}
	return out
}

func resolve(ref string, defs map[string]any, inChain map[string]bool) map[string]any {
	name := strings.TrimPrefix(ref, "#/components/schemas/")
	def, ok := defs[name].(map[string]any)
	if !ok || inChain[name] {
		return map[string]any{}
	}
	inChain[name] = true
	defer delete(inChain, name)
	return convert(def, defs, inChain)
}

func allowNull(s map[string]any) {
	if t, ok := s["type"].(string); ok {
		s["type"] = []any{t, "null"}
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
