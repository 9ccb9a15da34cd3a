// Package procinfo reads facts about a target process from /proc.
package procinfo

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// maxServiceName bounds a service name read from a target's environment.
const maxServiceName = 128

// Env returns the value of key in the initial environment of pid ("" if absent).
func Env(pid int, key string) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return ""
	}
	prefix := []byte(key + "=")
	for _, kv := range bytes.Split(data, []byte{0}) {
		if bytes.HasPrefix(kv, prefix) {
			return string(kv[len(prefix):])
		}
	}
	return ""
}

// ExeName returns the base name of pid's executable.
func ExeName(pid int) string {
	target, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return ""
	}
	return filepath.Base(strings.TrimSuffix(target, " (deleted)"))
}

// ServiceName is the target's own OTEL_SERVICE_NAME, else its executable name. The
// value is clamped and must be valid UTF-8, since it becomes a label.
func ServiceName(pid int) string {
	name := Env(pid, "OTEL_SERVICE_NAME")
	if name == "" {
		name = ExeName(pid)
	}
	if len(name) > maxServiceName {
		name = name[:maxServiceName]
	}
	if !utf8.ValidString(name) {
		name = strings.ToValidUTF8(name, "_")
	}
	return name
}

// Alive reports whether pid exists and is not a zombie.
func Alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(data, ')')
	return i < 0 || i+2 >= len(data) || data[i+2] != 'Z'
}
