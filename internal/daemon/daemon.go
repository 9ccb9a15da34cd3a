// Package daemon is the node-wide loop: it takes discovered client processes, names them
// (service, node, pod, container) and asks an Attacher to observe them until they exit.
// It knows nothing of eBPF; sharing probes between processes of one executable is the
// Attacher's business.
package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/asobserve/asobserve/internal/discovery"
	"github.com/asobserve/asobserve/internal/k8smeta"
	"github.com/asobserve/asobserve/internal/metrics"
)

// Attacher observes processes. Attach must leave nothing behind when it fails.
type Attacher interface {
	Attach(pid int, exePath string, id *metrics.Identity) error
	Detach(pid int) error
}

// PodResolver names the pod and container of a cgroup reference; *k8smeta.Store is one.
type PodResolver interface {
	Lookup(ref k8smeta.CgroupRef) (k8smeta.PodInfo, bool)
}

// Overflow replaces pod and container names once MaxIdentities distinct identities exist.
const Overflow = "_other"

// DefaultMaxIdentities bounds the distinct label sets the daemon hands out.
const DefaultMaxIdentities = 500

// maxLabel bounds a label value read from a target's environment.
const maxLabel = 128

// Options configure a Daemon.
type Options struct {
	// Node is k8s_node_name (K8S_NODE_NAME from the downward API); may be empty.
	Node string
	// Pods joins processes with pod metadata; nil outside Kubernetes.
	Pods PodResolver
	// ProcRoot is the proc filesystem; default /proc.
	ProcRoot string
	// MaxIdentities caps distinct identities; beyond it, pod and container become "_other".
	MaxIdentities int
	// Self is never attached (the agent's own binary may link the client); default os.Getpid().
	Self   int
	Logger *slog.Logger
}

// Attached is one process being observed.
type Attached struct {
	PID       int
	StartTime uint64
	Exe       discovery.ExeKey
	Identity  *metrics.Identity
}

// Stats are the daemon's counters.
type Stats struct {
	Attached, AttachErrors, SkippedExes, IdentityOverflows int
}

// Daemon follows discovery events. Run owns its state; Snapshot may be called anywhere.
type Daemon struct {
	att    Attacher
	events <-chan discovery.Event
	opts   Options

	mu         sync.Mutex
	attached   map[int]Attached
	identities map[metrics.Identity]*metrics.Identity
	failedExes map[discovery.ExeKey]bool
	stats      Stats
}

// New builds a Daemon that consumes events (typically (*discovery.Watcher).Events()).
func New(att Attacher, events <-chan discovery.Event, o Options) *Daemon {
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.MaxIdentities <= 0 {
		o.MaxIdentities = DefaultMaxIdentities
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Self == 0 {
		o.Self = os.Getpid()
	}
	return &Daemon{
		att: att, events: events, opts: o,
		attached:   map[int]Attached{},
		identities: map[metrics.Identity]*metrics.Identity{},
		failedExes: map[discovery.ExeKey]bool{},
	}
}

// Run handles events until ctx ends or the event channel closes, then detaches every
// process it attached.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.detachAll()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-d.events:
			if !ok {
				return nil
			}
			d.handle(ev)
		}
	}
}

func (d *Daemon) handle(ev discovery.Event) {
	if ev.PID == d.opts.Self {
		return
	}
	switch ev.Kind {
	case discovery.Added:
		// A missed removal (PID reused before we heard of the exit) must not leave the
		// old process's filter entry in place.
		if old, ok := d.get(ev.PID); ok && (old.StartTime != ev.StartTime || old.Exe != ev.Exe) {
			d.detach(ev.PID)
		} else if ok {
			return
		}
		d.attach(ev.Process)
	case discovery.Removed:
		if old, ok := d.get(ev.PID); ok && (ev.StartTime == 0 || old.StartTime == ev.StartTime) {
			d.detach(ev.PID)
		}
	}
}

func (d *Daemon) get(pid int) (Attached, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	a, ok := d.attached[pid]
	return a, ok
}

func (d *Daemon) attach(p discovery.Process) {
	d.mu.Lock()
	failed := d.failedExes[p.Exe]
	if failed {
		d.stats.SkippedExes++
	}
	d.mu.Unlock()
	if failed {
		return
	}
	id := d.identity(p)
	if err := d.att.Attach(p.PID, p.ExeLink(d.opts.ProcRoot), id); err != nil {
		d.mu.Lock()
		d.stats.AttachErrors++
		d.mu.Unlock()
		if !d.alive(p.PID) {
			return // exited while we attached: says nothing about the executable
		}
		d.mu.Lock()
		d.failedExes[p.Exe] = true
		d.mu.Unlock()
		d.opts.Logger.Warn("daemon: not observing executable; its other processes are skipped too",
			"pid", p.PID, "exe", p.ExeName, "err", err)
		return
	}
	d.mu.Lock()
	d.attached[p.PID] = Attached{PID: p.PID, StartTime: p.StartTime, Exe: p.Exe, Identity: id}
	d.stats.Attached = len(d.attached)
	d.mu.Unlock()
	d.opts.Logger.Info("daemon: attached", "pid", p.PID, "nspid", p.NSpid, "exe", p.ExeName,
		"client", p.Module+"@"+p.ModuleVersion, "service", id.Service, "pod", id.K8sNamespace+"/"+id.Pod, "container", id.Container)
}

func (d *Daemon) detach(pid int) {
	if err := d.att.Detach(pid); err != nil {
		d.opts.Logger.Warn("daemon: detach failed", "pid", pid, "err", err)
	}
	d.mu.Lock()
	delete(d.attached, pid)
	d.stats.Attached = len(d.attached)
	d.mu.Unlock()
}

func (d *Daemon) detachAll() {
	d.mu.Lock()
	pids := make([]int, 0, len(d.attached))
	for pid := range d.attached {
		pids = append(pids, pid)
	}
	d.mu.Unlock()
	for _, pid := range pids {
		d.detach(pid)
	}
}

func (d *Daemon) alive(pid int) bool {
	_, err := os.Stat(filepath.Join(d.opts.ProcRoot, strconv.Itoa(pid), "exe"))
	return err == nil
}

// identity names p. Equal identities share one pointer, and at most MaxIdentities
// distinct ones are ever created: pods come and go, their series stay, so the bound is
// on the total, not on the live count.
func (d *Daemon) identity(p discovery.Process) *metrics.Identity {
	want := metrics.Identity{Service: d.serviceName(p), Node: d.opts.Node}
	if d.opts.Pods != nil {
		if ref, err := k8smeta.ReadCgroup(d.opts.ProcRoot, p.PID); err == nil {
			if info, ok := d.opts.Pods.Lookup(ref); ok {
				want.K8sNamespace, want.Pod, want.Container = info.Namespace, info.Pod, info.Container
			}
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if id, ok := d.identities[want]; ok {
		return id
	}
	if len(d.identities) >= d.opts.MaxIdentities {
		d.stats.IdentityOverflows++
		want.Pod, want.Container = Overflow, Overflow
		if id, ok := d.identities[want]; ok {
			return id
		}
		// Overflow identities may exceed the cap by one per (service, namespace); those
		// are bounded by the node's executables and namespaces.
	}
	id := want
	d.identities[want] = &id
	return &id
}

// serviceName is the target's OTEL_SERVICE_NAME, else its executable's base name,
// clamped and made valid UTF-8 because it becomes a label.
func (d *Daemon) serviceName(p discovery.Process) string {
	name := environ(filepath.Join(d.opts.ProcRoot, strconv.Itoa(p.PID), "environ"), "OTEL_SERVICE_NAME")
	if name == "" {
		name = path.Base(p.ExeName)
	}
	if len(name) > maxLabel {
		name = name[:maxLabel]
	}
	return strings.ToValidUTF8(name, "_")
}

func environ(file, key string) string {
	data, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	prefix := []byte(key + "=")
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, prefix); ok {
			if !utf8.Valid(v) {
				return strings.ToValidUTF8(string(v), "_")
			}
			return string(v)
		}
	}
	return ""
}

// Snapshot lists the attached processes and the counters.
func (d *Daemon) Snapshot() ([]Attached, Stats) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Attached, 0, len(d.attached))
	for _, a := range d.attached {
		out = append(out, a)
	}
	return out, d.stats
}
