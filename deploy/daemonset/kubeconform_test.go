package daemonset

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// kubeconformTools returns the binaries and schema template `make test` exports (it
// installs them first, through the k8s-tools target).
func kubeconformTools(t *testing.T) (kubeconform, kustomize, schemas string) {
	t.Helper()
	kubeconform, kustomize, schemas = os.Getenv("KUBECONFORM"), os.Getenv("KUSTOMIZE"), os.Getenv("KUBECONFORM_SCHEMAS")
	if kubeconform == "" || kustomize == "" || schemas == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("KUBECONFORM, KUSTOMIZE and KUBECONFORM_SCHEMAS are unset: run the tests through `make test`, which installs them")
		}
		t.Skip("kubeconform is set up by `make test` (make k8s-tools); with CI=true this fails instead of skipping")
	}
	return kubeconform, kustomize, schemas
}

type kubeconformResult struct {
	Filename, Kind, Name, Version, Status, Msg string
}

// runKubeconform validates the given files (or stdin when files is empty) in strict mode
// and returns one result per resource.
func runKubeconform(t *testing.T, stdin []byte, files ...string) []kubeconformResult {
	t.Helper()
	kubeconform, _, schemas := kubeconformTools(t)
	args := []string{"-strict", "-verbose", "-output", "json", "-kubernetes-version", "1.30.0", "-schema-location", schemas}
	if len(files) == 0 {
		args = append(args, "-")
	}
	cmd := exec.Command(kubeconform, append(args, files...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if _, failed := err.(*exec.ExitError); err != nil && !failed {
		t.Fatalf("kubeconform: %v", err)
	}
	var doc struct{ Resources []kubeconformResult }
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("kubeconform output %q (stderr %q): %v", out, stderr.String(), err)
	}
	return doc.Resources
}

func manifestFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(p) == ".yaml" && d.Name() != "kustomization.yaml" {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func kindsOf(t *testing.T, results []kubeconformResult) []string {
	t.Helper()
	var kinds []string
	for _, r := range results {
		if r.Status != "statusValid" {
			t.Errorf("%s %s/%s: %s %s", r.Filename, r.Kind, r.Name, r.Status, r.Msg)
		}
		kinds = append(kinds, r.Kind)
	}
	slices.Sort(kinds)
	return kinds
}

func TestKubeconformStrictAcceptsEveryManifest(t *testing.T) {
	got := kindsOf(t, runKubeconform(t, nil, manifestFiles(t)...))
	want := []string{"ClusterRole", "ClusterRoleBinding", "DaemonSet", "Namespace", "Service", "ServiceAccount", "ServiceMonitor"}
	if !slices.Equal(got, want) {
		t.Fatalf("validated kinds %v, want %v", got, want)
	}
}

func TestKubeconformStrictAcceptsKustomizeOutput(t *testing.T) {
	_, kustomize, _ := kubeconformTools(t)
	for dir, want := range map[string][]string{
		".":              {"ClusterRole", "ClusterRoleBinding", "DaemonSet", "Namespace", "Service", "ServiceAccount"},
		"servicemonitor": {"ServiceMonitor"},
	} {
		rendered, err := exec.Command(kustomize, "build", dir).Output()
		if err != nil {
			t.Fatalf("kustomize build %s: %v", dir, err)
		}
		if got := kindsOf(t, runKubeconform(t, rendered)); !slices.Equal(got, want) {
			t.Errorf("kustomize build %s: validated kinds %v, want %v", dir, got, want)
		}
	}
}

// Strictness is what makes the check worth having: each mistake below is one a person
// could make in these files, and each must be rejected at the field it is in.
func TestKubeconformStrictRejectsMistakes(t *testing.T) {
	cases := []struct {
		file, old, new, status, msg string
	}{
		{"daemonset.yaml", "        - name: asobserve\n", "        - name: asobserve\n          imagePullPolicyy: Always\n",
			"statusInvalid", "at '/spec/template/spec/containers/0': additional properties 'imagePullPolicyy' not allowed"},
		{"daemonset.yaml", "hostPID: true", `hostPID: "yes"`,
			"statusInvalid", "at '/spec/template/spec/hostPID': got string, want boolean"},
		{"rbac.yaml", `    verbs: ["get", "list", "watch"]`, `    verb: ["get", "list", "watch"]`,
			"statusInvalid", "at '/rules/0': additional properties 'verb' not allowed"},
		{"servicemonitor/servicemonitor.yaml", "      interval: 15s\n", "      interval: 15s\n      intervall: 5s\n",
			"statusInvalid", "at '/spec/endpoints/0': additional properties 'intervall' not allowed"},
		{"service.yaml", "  name: asobserve\n", "  name: asobserve\n  name: asobserve2\n",
			"statusError", `key "name" already set in map`},
	}
	for _, c := range cases {
		b, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(c.old)) {
			t.Fatalf("%s no longer contains %q: update this case", c.file, c.old)
		}
		broken := filepath.Join(t.TempDir(), filepath.Base(c.file))
		if err := os.WriteFile(broken, bytes.Replace(b, []byte(c.old), []byte(c.new), 1), 0o644); err != nil {
			t.Fatal(err)
		}
		var bad []kubeconformResult
		for _, r := range runKubeconform(t, nil, broken) {
			if r.Status != "statusValid" {
				bad = append(bad, r)
			}
		}
		if len(bad) != 1 || bad[0].Status != c.status || !strings.Contains(bad[0].Msg, c.msg) {
			t.Errorf("%s with %q: got %+v, want one %s containing %q", c.file, c.new, bad, c.status, c.msg)
		}
	}
}
