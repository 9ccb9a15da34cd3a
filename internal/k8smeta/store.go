package k8smeta

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// PodInfo names where a process runs. Container is empty when only the pod is known.
type PodInfo struct {
	Namespace string
	Pod       string
	Container string
}

const (
	byContainerID = "containerID"
	byPodUID      = "podUID"
)

// Store keeps the pods scheduled on one node and answers which pod and container a
// cgroup reference belongs to. A nil *Store is valid and knows nothing (outside
// Kubernetes).
type Store struct {
	node     string
	informer cache.SharedIndexInformer
	stopped  chan struct{}
}

// NodePods lists and watches, through a core/v1 REST client, the pods scheduled on node.
func NodePods(client rest.Interface, node string) cache.ListerWatcher {
	return cache.NewFilteredListWatchFromClient(client, "pods", metav1.NamespaceAll, NodeOptions(node))
}

// NodeOptions narrows a pod list or watch to the pods scheduled on node.
func NodeOptions(node string) func(*metav1.ListOptions) {
	return func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", node).String()
	}
}

// NewStore watches the pods of node through lw (NodePods in a cluster). Call Run before
// Lookup.
func NewStore(lw cache.ListerWatcher, node string) *Store {
	inf := cache.NewSharedIndexInformer(lw, &corev1.Pod{}, 10*time.Minute, cache.Indexers{})
	// Keep only what the join needs, so a busy node's pods cost little memory.
	_ = inf.SetTransform(func(obj any) (any, error) {
		if p, ok := obj.(*corev1.Pod); ok {
			p.ManagedFields = nil
			p.Annotations = nil
			p.Labels = nil
			p.Spec = corev1.PodSpec{NodeName: p.Spec.NodeName, Containers: onlyNames(p.Spec.Containers)}
		}
		return obj, nil
	})
	_ = inf.AddIndexers(cache.Indexers{
		byContainerID: func(obj any) ([]string, error) {
			p, ok := obj.(*corev1.Pod)
			if !ok {
				return nil, nil
			}
			var ids []string
			for _, st := range allStatuses(p) {
				if st.ContainerID != "" {
					ids = append(ids, StripScheme(st.ContainerID))
				}
			}
			return ids, nil
		},
		byPodUID: func(obj any) ([]string, error) {
			p, ok := obj.(*corev1.Pod)
			if !ok {
				return nil, nil
			}
			return []string{string(p.UID)}, nil
		},
	})
	return &Store{node: node, informer: inf, stopped: make(chan struct{})}
}

func onlyNames(cs []corev1.Container) []corev1.Container {
	out := make([]corev1.Container, len(cs))
	for i, c := range cs {
		out[i] = corev1.Container{Name: c.Name}
	}
	return out
}

func allStatuses(p *corev1.Pod) []corev1.ContainerStatus {
	all := make([]corev1.ContainerStatus, 0, len(p.Status.ContainerStatuses)+len(p.Status.InitContainerStatuses)+len(p.Status.EphemeralContainerStatuses))
	all = append(all, p.Status.ContainerStatuses...)
	all = append(all, p.Status.InitContainerStatuses...)
	return append(all, p.Status.EphemeralContainerStatuses...)
}

// Run starts the watch and waits until the initial list is in, or ctx ends. The watch
// goes on until ctx ends.
func (s *Store) Run(ctx context.Context) error {
	if s == nil {
		return nil
	}
	go func() {
		defer close(s.stopped)
		s.informer.Run(ctx.Done())
	}()
	if !cache.WaitForCacheSync(ctx.Done(), s.informer.HasSynced) {
		return fmt.Errorf("pod watch for node %q did not sync: %w", s.node, context.Cause(ctx))
	}
	return nil
}

// Shutdown waits for the watch to stop after ctx (given to Run) is done.
func (s *Store) Shutdown() {
	if s != nil {
		<-s.stopped
	}
}

// Lookup joins a cgroup reference with the watched pods: by container ID first; by pod
// UID when the container has not yet reported its ID (Container is then set only if the
// pod has a single container).
func (s *Store) Lookup(ref CgroupRef) (PodInfo, bool) {
	if s == nil {
		return PodInfo{}, false
	}
	idx := s.informer.GetIndexer()
	if ref.ContainerID != "" {
		objs, _ := idx.ByIndex(byContainerID, ref.ContainerID)
		for _, o := range objs {
			p := o.(*corev1.Pod)
			if p.Spec.NodeName != s.node {
				continue
			}
			for _, st := range allStatuses(p) {
				if StripScheme(st.ContainerID) == ref.ContainerID {
					return PodInfo{Namespace: p.Namespace, Pod: p.Name, Container: st.Name}, true
				}
			}
		}
	}
	if ref.PodUID != "" {
		objs, _ := idx.ByIndex(byPodUID, ref.PodUID)
		for _, o := range objs {
			p := o.(*corev1.Pod)
			if p.Spec.NodeName != s.node {
				continue
			}
			info := PodInfo{Namespace: p.Namespace, Pod: p.Name}
			if len(p.Spec.Containers) == 1 {
				info.Container = p.Spec.Containers[0].Name
			}
			return info, true
		}
	}
	return PodInfo{}, false
}

// ErrNoNodeName means the daemon runs in Kubernetes without K8S_NODE_NAME.
var ErrNoNodeName = errors.New("K8S_NODE_NAME is not set: add it from the downward API (fieldRef spec.nodeName)")

// FromEnvironment builds a Store from the in-cluster configuration. Outside Kubernetes
// (no KUBERNETES_SERVICE_HOST) it returns nil and no error.
func FromEnvironment() (*Store, error) {
	if os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
		return nil, nil
	}
	node := os.Getenv("K8S_NODE_NAME")
	if node == "" {
		return nil, ErrNoNodeName
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("in-cluster config: %w", err)
	}
	return FromConfig(cfg, node)
}

// FromConfig builds a Store that watches node's pods through the API server cfg names.
// Its client knows core/v1 only: the typed clientset would link and register every API
// group, which costs the agent megabytes of binary and memory for nothing.
func FromConfig(cfg *rest.Config, node string) (*Store, error) {
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c := rest.CopyConfig(cfg)
	c.UserAgent = "asobserve"
	c.APIPath = "/api"
	c.GroupVersion = &corev1.SchemeGroupVersion
	c.ContentType = runtime.ContentTypeProtobuf
	c.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	c.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	client, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return NewStore(NodePods(client, node), node), nil
}
