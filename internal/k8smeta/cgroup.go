// Package k8smeta names the Kubernetes pod and container a process runs in: the container
// ID and pod UID come from /proc/PID/cgroup, and pod metadata from the API server, watched
// for this node only.
package k8smeta

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CgroupRef is what a process's cgroup path reveals about its container.
type CgroupRef struct {
	// ContainerID is the runtime's 64-hex-digit container ID, without a scheme.
	ContainerID string
	// PodUID is the pod's UID with dashes, when the path carries it (kubelet-managed).
	PodUID string
}

// ReadCgroup parses /proc/PID/cgroup under procRoot (default /proc).
func ReadCgroup(procRoot string, pid int) (CgroupRef, error) {
	if procRoot == "" {
		procRoot = "/proc"
	}
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return CgroupRef{}, err
	}
	return ParseCgroup(b), nil
}

// ParseCgroup extracts the container ID and pod UID from a /proc/PID/cgroup file. It
// understands cgroup v1 ("N:controllers:/path") and v2 ("0::/path") lines, cgroupfs paths
// (/kubepods/burstable/pod<uid>/<id>, /docker/<id>) and systemd slices
// (kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope, crio-<id>.scope,
// docker-<id>.scope). Paths relative to a private cgroup namespace ("/../..") work too.
func ParseCgroup(data []byte) CgroupRef {
	var ref CgroupRef
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		// hierarchy-ID:controller-list:cgroup-path; the path may itself contain ':'.
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		r := parsePath(parts[2])
		if ref.ContainerID == "" {
			ref.ContainerID = r.ContainerID
		}
		if ref.PodUID == "" {
			ref.PodUID = r.PodUID
		}
		if ref.ContainerID != "" && ref.PodUID != "" {
			break
		}
	}
	return ref
}

func parsePath(p string) CgroupRef {
	var ref CgroupRef
	segs := strings.Split(p, "/")
	for i := len(segs) - 1; i >= 0; i-- {
		seg := segs[i]
		if ref.ContainerID == "" {
			if id := containerIDFromSegment(seg); id != "" {
				ref.ContainerID = id
				continue
			}
		}
		if uid := podUIDFromSegment(seg); uid != "" {
			ref.PodUID = uid
			break
		}
	}
	return ref
}

// runtimePrefixes name systemd scopes of container runtimes. conmon (CRI-O's monitor) has
// its own scope and is deliberately absent.
var runtimePrefixes = []string{"cri-containerd-", "crio-", "docker-", "libpod-", "containerd-"}

func containerIDFromSegment(seg string) string {
	if strings.HasPrefix(seg, "crio-conmon-") {
		return ""
	}
	s := strings.TrimSuffix(seg, ".scope")
	for _, pre := range runtimePrefixes {
		if rest, ok := strings.CutPrefix(s, pre); ok {
			s = rest
			break
		}
	}
	if isHexID(s) {
		return s
	}
	return ""
}

func isHexID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// podUIDFromSegment accepts "pod<uid>" (cgroupfs) and "kubepods-<qos>-pod<uid_with_underscores>.slice"
// or "kubepods-pod<uid>.slice" (systemd).
func podUIDFromSegment(seg string) string {
	s := strings.TrimSuffix(seg, ".slice")
	i := strings.LastIndex(s, "pod")
	if i < 0 {
		return ""
	}
	if i > 0 && s[i-1] != '-' {
		return ""
	}
	uid := strings.ReplaceAll(s[i+3:], "_", "-")
	if !isUUID(uid) {
		return ""
	}
	return uid
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}

// StripScheme turns a status containerID ("containerd://<id>", "cri-o://<id>",
// "docker://<id>") into the bare ID found in cgroup paths.
func StripScheme(id string) string {
	if i := strings.Index(id, "://"); i >= 0 {
		return id[i+3:]
	}
	return id
}
