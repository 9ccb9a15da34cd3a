package k8smeta

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

func TestParseCgroupRealWorldFormats(t *testing.T) {
	for _, tc := range []struct {
		file, id, uid string
	}{
		{"containerd-v2-systemd.txt", "5b1c2e8f9a7d6c4b3a2918f7e6d5c4b3a29180f7e6d5c4b3a29180f7e6d5c4b3", "8f3c1a7e-4b2d-4c1e-9a6f-0d2b7e5c3a91"},
		{"containerd-v1-cgroupfs.txt", "3f9e8d7c6b5a49382716f5e4d3c2b1a0f9e8d7c6b5a49382716f5e4d3c2b1a01", "0a1b2c3d-4e5f-6789-abcd-ef0123456789"},
		{"crio-v2-systemd.txt", "9d8c7b6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa998877665544", "1c2d3e4f-5a6b-7c8d-9e0f-a1b2c3d4e5f6"},
		{"crio-v1-systemd.txt", "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0", "2b3c4d5e-6f70-8192-a3b4-c5d6e7f80912"},
		// conmon is CRI-O's monitor, not the container: only the pod is known.
		{"crio-conmon-v2.txt", "", "2b3c4d5e-6f70-8192-a3b4-c5d6e7f80912"},
		{"docker-v1-standalone.txt", "e2b4a7c3d9f1086b5a4c3e2d1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a", ""},
		{"docker-v2-systemd.txt", "7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b", ""},
		{"docker-k8s-v1.txt", "1122334455667788990011223344556677889900aabbccddeeff001122334455", "d4e5f6a7-b8c9-0d1e-2f3a-4b5c6d7e8f90"},
		{"gke-cos-v2.txt", "c0ffee00deadbeef0123456789abcdef0123456789abcdef0123456789abcdef", "7e6d5c4b-3a29-1807-f6e5-d4c3b2a19087"},
		{"gke-cos-v1.txt", "aa11bb22cc33dd44ee55ff6600112233445566778899aabbccddeeff00112233", "5f4e3d2c-1b0a-9f8e-7d6c-5b4a39281706"},
		{"eks-al2-v1.txt", "f00dfeed1234567890abcdef1234567890abcdef1234567890abcdef12345678", "6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d"},
		{"eks-al2023-v2.txt", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "3e2d1c0b-a9f8-4e7d-8c6b-5a4f3e2d1c0b"},
		{"cgroupns-private-v2.txt", "abcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcd", "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"},
		{"host-process-v2.txt", "", ""},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "cgroup", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got := ParseCgroup(b)
			if got.ContainerID != tc.id || got.PodUID != tc.uid {
				t.Fatalf("ParseCgroup = {%q %q}, want {%q %q}", got.ContainerID, got.PodUID, tc.id, tc.uid)
			}
		})
	}
}

func TestParseCgroupRejectsLookalikes(t *testing.T) {
	for _, in := range []string{
		"0::/system.slice/docker-1234.scope",
		"0::/kubepods/besteffort/podnot-a-uid/" + "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789",
		"garbage",
		"",
	} {
		if got := ParseCgroup([]byte(in)); got != (CgroupRef{}) {
			t.Fatalf("ParseCgroup(%q) = %+v, want nothing", in, got)
		}
	}
}

func TestReadCgroup(t *testing.T) {
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "42"), 0o755))
	b, err := os.ReadFile(filepath.Join("testdata", "cgroup", "eks-al2023-v2.txt"))
	must(t, err)
	must(t, os.WriteFile(filepath.Join(root, "42", "cgroup"), b, 0o644))
	got, err := ReadCgroup(root, 42)
	must(t, err)
	if got.ContainerID != "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" {
		t.Fatalf("ReadCgroup = %+v", got)
	}
	if _, err := ReadCgroup(root, 43); err == nil {
		t.Fatal("missing pid accepted")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

const (
	idA1 = "1111111111111111111111111111111111111111111111111111111111111111"
	idA2 = "2222222222222222222222222222222222222222222222222222222222222222"
	idB  = "3333333333333333333333333333333333333333333333333333333333333333"
	idX  = "4444444444444444444444444444444444444444444444444444444444444444"
	idC  = "5555555555555555555555555555555555555555555555555555555555555555"
	idI  = "6666666666666666666666666666666666666666666666666666666666666666"
)

func pod(ns, name, uid, node string, containers []string, statuses map[string]string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid),
			Labels: map[string]string{"app": name}, Annotations: map[string]string{"big": "x"}},
		Spec: corev1.PodSpec{NodeName: node},
	}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: "img"})
		if id, ok := statuses[c]; ok {
			p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: c, ContainerID: id})
		}
	}
	return p
}

func TestStoreJoinsContainersOfThisNode(t *testing.T) {
	client := fake.NewClientset(
		pod("shop", "cart-7d9", "aaaaaaaa-0000-4000-8000-000000000001", "node-1", []string{"app", "sidecar"},
			map[string]string{"app": "containerd://" + idA1, "sidecar": "containerd://" + idA2}),
		pod("pay", "ledger-0", "aaaaaaaa-0000-4000-8000-000000000002", "node-1", []string{"ledger"},
			map[string]string{"ledger": "cri-o://" + idB}),
		pod("shop", "elsewhere", "aaaaaaaa-0000-4000-8000-000000000003", "node-2", []string{"app"},
			map[string]string{"app": "containerd://" + idX}),
	)
	init := pod("pay", "ledger-0-init", "aaaaaaaa-0000-4000-8000-000000000005", "node-1", nil, nil)
	init.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "migrate", ContainerID: "docker://" + idI}}
	_, err := client.CoreV1().Pods("pay").Create(context.Background(), init, metav1.CreateOptions{})
	must(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The fake clientset stands in for the API server behind the same list and watch
	// options as NodePods uses.
	pods := client.CoreV1().Pods(metav1.NamespaceAll)
	lw := &cache.ListWatch{
		ListFunc: func(o metav1.ListOptions) (runtime.Object, error) {
			NodeOptions("node-1")(&o)
			return pods.List(ctx, o)
		},
		WatchFunc: func(o metav1.ListOptions) (watch.Interface, error) {
			NodeOptions("node-1")(&o)
			return pods.Watch(ctx, o)
		},
	}
	s := NewStore(lw, "node-1")
	must(t, s.Run(ctx))
	defer func() { cancel(); s.Shutdown() }()

	for _, tc := range []struct {
		name string
		ref  CgroupRef
		want PodInfo
		ok   bool
	}{
		{"containerd app", CgroupRef{ContainerID: idA1}, PodInfo{"shop", "cart-7d9", "app"}, true},
		{"containerd sidecar", CgroupRef{ContainerID: idA2}, PodInfo{"shop", "cart-7d9", "sidecar"}, true},
		{"cri-o", CgroupRef{ContainerID: idB, PodUID: "aaaaaaaa-0000-4000-8000-000000000002"}, PodInfo{"pay", "ledger-0", "ledger"}, true},
		{"init container", CgroupRef{ContainerID: idI}, PodInfo{"pay", "ledger-0-init", "migrate"}, true},
		{"other node", CgroupRef{ContainerID: idX}, PodInfo{}, false},
		{"other node by uid", CgroupRef{PodUID: "aaaaaaaa-0000-4000-8000-000000000003"}, PodInfo{}, false},
		{"unknown", CgroupRef{ContainerID: idC}, PodInfo{}, false},
		{"uid fallback, single container", CgroupRef{ContainerID: idC, PodUID: "aaaaaaaa-0000-4000-8000-000000000002"}, PodInfo{"pay", "ledger-0", "ledger"}, true},
		{"uid fallback, two containers", CgroupRef{PodUID: "aaaaaaaa-0000-4000-8000-000000000001"}, PodInfo{"shop", "cart-7d9", ""}, true},
	} {
		got, ok := s.Lookup(tc.ref)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: Lookup = %+v, %v; want %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}

	// The transform keeps memory small: no labels, annotations or images are retained.
	obj, exists, err := s.informer.GetIndexer().GetByKey("shop/cart-7d9")
	if err != nil || !exists {
		t.Fatalf("cached pod missing: %v", err)
	}
	if p := obj.(*corev1.Pod); p.Labels != nil || p.Annotations != nil || p.Spec.Containers[0].Image != "" {
		t.Fatalf("pod not trimmed: %+v", p.ObjectMeta)
	}

	// A container that starts later is joined once its status reports the ID.
	late := pod("web", "front-1", "aaaaaaaa-0000-4000-8000-000000000004", "node-1", []string{"nginx"}, nil)
	late, err = client.CoreV1().Pods("web").Create(ctx, late, metav1.CreateOptions{})
	must(t, err)
	late.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "nginx", ContainerID: "containerd://" + idC}}
	_, err = client.CoreV1().Pods("web").UpdateStatus(ctx, late, metav1.UpdateOptions{})
	must(t, err)
	waitLookup(t, s, CgroupRef{ContainerID: idC}, PodInfo{"web", "front-1", "nginx"})

	// A deleted pod is forgotten.
	must(t, client.CoreV1().Pods("shop").Delete(ctx, "cart-7d9", metav1.DeleteOptions{}))
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := s.Lookup(CgroupRef{ContainerID: idA1}); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("deleted pod still joined")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitLookup(t *testing.T, s *Store, ref CgroupRef, want PodInfo) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, ok := s.Lookup(ref)
		if ok && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Lookup(%+v) = %+v, %v; want %+v", ref, got, ok, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOutsideKubernetesIsDisabled(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	s, err := FromEnvironment()
	if s != nil || err != nil {
		t.Fatalf("FromEnvironment = %v, %v; want nil, nil", s, err)
	}
	if _, ok := s.Lookup(CgroupRef{ContainerID: idA1}); ok {
		t.Fatal("nil store joined something")
	}
	must(t, s.Run(context.Background()))
	s.Shutdown()

	t.Setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
	t.Setenv("K8S_NODE_NAME", "")
	if _, err := FromEnvironment(); err != ErrNoNodeName {
		t.Fatalf("err = %v, want ErrNoNodeName", err)
	}
}

// FromConfig's own REST client against an HTTP server that answers like the API server:
// it must ask for this node's pods only, decode the list and follow the watch.
func TestFromConfigListsAndWatchesThisNodesPods(t *testing.T) {
	ready := pod("shop", "cart-7d9", "aaaaaaaa-0000-4000-8000-000000000001", "node-1", []string{"app"},
		map[string]string{"app": "containerd://" + idA1})
	late := pod("web", "front-1", "aaaaaaaa-0000-4000-8000-000000000004", "node-1", []string{"nginx"},
		map[string]string{"nginx": "containerd://" + idC})
	late.ResourceVersion = "2"
	var selectors sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/pods" {
			http.Error(w, "unexpected path "+r.URL.Path, http.StatusNotFound)
			return
		}
		selectors.Store(r.URL.Query().Get("fieldSelector"), true)
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("watch") != "true" {
			list := corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"},
				ListMeta: metav1.ListMeta{ResourceVersion: "1"}, Items: []corev1.Pod{*ready}}
			_ = json.NewEncoder(w).Encode(list)
			return
		}
		late.TypeMeta = metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"}
		_ = json.NewEncoder(w).Encode(map[string]any{"type": "ADDED", "object": late})
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()

	s, err := FromConfig(&rest.Config{Host: srv.URL}, "node-1")
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	must(t, s.Run(ctx))
	defer func() { cancel(); s.Shutdown() }()
	waitLookup(t, s, CgroupRef{ContainerID: idA1}, PodInfo{"shop", "cart-7d9", "app"})
	waitLookup(t, s, CgroupRef{ContainerID: idC}, PodInfo{"web", "front-1", "nginx"})
	n := 0
	selectors.Range(func(k, _ any) bool {
		if k != "spec.nodeName=node-1" {
			t.Errorf("request with fieldSelector %q, want spec.nodeName=node-1", k)
		}
		n++
		return true
	})
	if n != 1 {
		t.Fatalf("%d distinct field selectors", n)
	}
}
