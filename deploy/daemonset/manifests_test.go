// Package daemonset holds the DaemonSet manifests. Its tests validate them strictly, with
// kubeconform against generated schemas and by decoding into the Kubernetes API Go types
// (unknown or misplaced fields fail), and check the least-privilege settings.
package daemonset

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// documents splits every YAML file under dir (recursively) into documents.
func documents(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	docs := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".yaml" {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for i, doc := range bytes.Split(b, []byte("\n---\n")) {
			if len(bytes.TrimSpace(doc)) > 0 {
				docs[p+"#"+string(rune('0'+i))] = doc
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

func strict(t *testing.T, name string, doc []byte, into any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(doc, into); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func TestManifestsAreStrictlyValid(t *testing.T) {
	kinds := map[string]int{}
	for name, doc := range documents(t, ".") {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		kinds[tm.Kind]++
		var obj any
		switch tm.APIVersion + "/" + tm.Kind {
		case "v1/Namespace":
			obj = &corev1.Namespace{}
		case "v1/ServiceAccount":
			obj = &corev1.ServiceAccount{}
		case "v1/Service":
			obj = &corev1.Service{}
		case "apps/v1/DaemonSet":
			obj = &appsv1.DaemonSet{}
		case "rbac.authorization.k8s.io/v1/ClusterRole":
			obj = &rbacv1.ClusterRole{}
		case "rbac.authorization.k8s.io/v1/ClusterRoleBinding":
			obj = &rbacv1.ClusterRoleBinding{}
		case "kustomize.config.k8s.io/v1beta1/Kustomization":
			var k struct {
				APIVersion string           `json:"apiVersion"`
				Kind       string           `json:"kind"`
				Namespace  string           `json:"namespace,omitempty"`
				Resources  []string         `json:"resources"`
				Images     []kustomizeImage `json:"images,omitempty"`
			}
			strict(t, name, doc, &k)
			for _, r := range k.Resources {
				if _, err := os.Stat(filepath.Join(filepath.Dir(strings.Split(name, "#")[0]), r)); err != nil {
					t.Fatalf("%s: resource %s: %v", name, r, err)
				}
			}
			continue
		case "monitoring.coreos.com/v1/ServiceMonitor":
			continue // CRD: no Go type here; structure checked by TestServiceMonitor
		default:
			t.Fatalf("%s: unexpected %s %s", name, tm.APIVersion, tm.Kind)
		}
		strict(t, name, doc, obj)
	}
	want := map[string]int{"Namespace": 1, "ServiceAccount": 1, "ClusterRole": 1, "ClusterRoleBinding": 1,
		"DaemonSet": 1, "Service": 1, "ServiceMonitor": 1, "Kustomization": 2}
	for k, n := range want {
		if kinds[k] != n {
			t.Errorf("%d %s documents, want %d (all: %v)", kinds[k], k, n, kinds)
		}
	}
}

type kustomizeImage struct {
	Name    string `json:"name"`
	NewName string `json:"newName,omitempty"`
	NewTag  string `json:"newTag,omitempty"`
	Digest  string `json:"digest,omitempty"`
}

func TestDaemonSetIsLeastPrivilege(t *testing.T) {
	b, err := os.ReadFile("daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ds appsv1.DaemonSet
	strict(t, "daemonset.yaml", b, &ds)
	spec := ds.Spec.Template.Spec
	if !spec.HostPID || spec.HostNetwork || spec.ServiceAccountName != "asobserve" {
		t.Fatalf("hostPID=%v hostNetwork=%v sa=%q", spec.HostPID, spec.HostNetwork, spec.ServiceAccountName)
	}
	if len(spec.Containers) != 1 || len(spec.Volumes) != 0 {
		t.Fatalf("containers=%d volumes=%d; want 1 container and no host mounts", len(spec.Containers), len(spec.Volumes))
	}
	c := spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.Privileged == nil || *sc.Privileged || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.RunAsUser == nil || *sc.RunAsUser != 0 {
		t.Fatalf("securityContext = %+v", sc)
	}
	var add []string
	for _, c := range sc.Capabilities.Add {
		add = append(add, string(c))
	}
	slices.Sort(add)
	if strings.Join(add, ",") != "BPF,DAC_READ_SEARCH,PERFMON,SYS_PTRACE" ||
		len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Fatalf("capabilities add=%v drop=%v", add, sc.Capabilities.Drop)
	}
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != "metrics" {
			t.Fatalf("probe = %+v", p)
		}
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() ||
		c.Resources.Limits.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Fatalf("resources = %+v", c.Resources)
	}
	var node bool
	for _, e := range c.Env {
		if e.Name == "K8S_NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName" {
			node = true
		}
	}
	if !node {
		t.Fatal("K8S_NODE_NAME is not taken from the downward API")
	}
	if !slices.Contains(c.Args, "daemon") || !slices.Contains(c.Args, "--listen=0.0.0.0:9464") {
		t.Fatalf("args = %v", c.Args)
	}
}

func TestClusterRoleReadsPodsOnly(t *testing.T) {
	docs := documents(t, "rbac.yaml")
	for name, doc := range docs {
		var tm metav1.TypeMeta
		_ = yaml.Unmarshal(doc, &tm)
		if tm.Kind != "ClusterRole" {
			continue
		}
		var cr rbacv1.ClusterRole
		strict(t, name, doc, &cr)
		if len(cr.Rules) != 1 {
			t.Fatalf("rules = %+v", cr.Rules)
		}
		r := cr.Rules[0]
		if strings.Join(r.APIGroups, ",") != "" || strings.Join(r.Resources, ",") != "pods" ||
			strings.Join(r.Verbs, ",") != "get,list,watch" || len(r.NonResourceURLs) != 0 || len(r.ResourceNames) != 0 {
			t.Fatalf("rule = %+v", r)
		}
		return
	}
	t.Fatal("no ClusterRole")
}

func TestServiceMonitorIsOptional(t *testing.T) {
	b, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(bytes.ReplaceAll(b, []byte("#   kubectl apply -k deploy/daemonset/servicemonitor"), nil), []byte("servicemonitor")) {
		t.Fatal("the default kustomization must not need the Prometheus Operator CRDs")
	}
	var sm struct {
		Spec struct {
			Endpoints []struct {
				Port, Path, Interval string
			} `json:"endpoints"`
		} `json:"spec"`
	}
	b, err = os.ReadFile(filepath.Join("servicemonitor", "servicemonitor.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &sm); err != nil {
		t.Fatal(err)
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "metrics" || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Fatalf("endpoints = %+v", sm.Spec.Endpoints)
	}
}
