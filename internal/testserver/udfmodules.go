package testserver

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
)

// udfModules are the UDF modules registered with udf-put (RegisterUDF), shared by the
// cluster as a real cluster distributes them. The server stores them but never runs
// their Lua: record UDFs are the built-ins of udf.go and stream aggregations those of
// aggregate.go, whatever the module says.
type udfModules struct {
	mu      sync.Mutex
	modules map[string]udfModule // by filename, e.g. "asobserve_aggregate.lua"
}

type udfModule struct {
	content []byte
	typ     string
}

// infoParams splits "name:k1=v1;k2=v2;" into its parameters.
func infoParams(cmd string) map[string]string {
	_, params, _ := strings.Cut(cmd, ":")
	out := map[string]string{}
	for _, kv := range strings.Split(params, ";") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[k] = v
		}
	}
	return out
}

func (u *udfModules) put(cmd string) string {
	p := infoParams(cmd)
	name := p["filename"]
	content, err := base64.StdEncoding.DecodeString(p["content"])
	if name == "" || err != nil {
		return "error=invalid_udf;file=" + name + ";line=0;message=" +
			base64.StdEncoding.EncodeToString([]byte("udf-put needs filename and base64 content"))
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.modules == nil {
		u.modules = map[string]udfModule{}
	}
	u.modules[name] = udfModule{content: content, typ: p["udf-type"]}
	return "ok"
}

func (u *udfModules) get(cmd string) string {
	name := infoParams(cmd)["filename"]
	u.mu.Lock()
	defer u.mu.Unlock()
	m, ok := u.modules[name]
	if !ok {
		return "error=not_found"
	}
	return fmt.Sprintf("gen=1;type=%s;content=%s", m.typ, base64.StdEncoding.EncodeToString(m.content))
}

func (u *udfModules) remove(cmd string) string {
	name := infoParams(cmd)["filename"]
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.modules[name]; !ok {
		return "error=file_not_found"
	}
	delete(u.modules, name)
	return "ok"
}

// list answers udf-list: "filename=<name>,hash=<sha1>,type=<type>;" per module, by name.
func (u *udfModules) list() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(u.modules)) {
		m := u.modules[name]
		sum := sha1.Sum(m.content)
		fmt.Fprintf(&b, "filename=%s,hash=%s,type=%s;", name, hex.EncodeToString(sum[:]), m.typ)
	}
	return b.String()
}

func (u *udfModules) registered(name string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	_, ok := u.modules[name]
	return ok
}
