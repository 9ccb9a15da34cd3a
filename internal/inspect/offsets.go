package inspect

import (
	"debug/dwarf"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/semver"
)

// FieldRef names a struct field relative to the client package. Field may be
// a dotted path through embedded or value fields ("BatchRecord.Key").
type FieldRef struct {
	Struct string
	Field  string
}

func (r FieldRef) String() string { return r.Struct + "." + r.Field }

// RequiredFields are the offsets the probes read.
var RequiredFields = []FieldRef{
	{"Key", "namespace"},
	{"Key", "setName"},
	{"AerospikeError", "wrapped"},
	{"AerospikeError", "ResultCode"},
	{"Statement", "Namespace"},
	{"Statement", "SetName"},
	{"BatchRecord", "Key"},
	{"batchCommandGet", "keys"},
	{"batchCommandExists", "keys"},
	{"batchCommandDelete", "keys"},
	{"batchCommandOperate", "records"},
	{"batchCommandUDF", "keys"},
	{"batchIndexCommandGet", "batchCommandGet.indexRecords"},
	{"batchIndexCommandGet", "records"},
	{"scanPartitionCommand", "baseMultiCommand.recordset"},
	{"queryPartitionCommand", "baseMultiCommand.recordset"},
	{"scanPartitionObjectsCommand", "baseMultiCommand.recordset"},
	{"queryPartitionObjectsCommand", "baseMultiCommand.recordset"},
	// Before v6.13.0 a filtered query runs per-node commands, and the count of those still
	// running ends it.
	{"queryCommand", "baseMultiCommand.recordset"},
	{"queryObjectsCommand", "queryCommand.baseMultiCommand.recordset"},
	{"Recordset", "objectset.goroutines"},
	{"baseCommand", "node"},
	{"Connection", "node"},
	{"Node", "host"},
	{"Host", "Name"},
	{"Host", "Port"},
}

// Missing marks, in the generated table, a field that does not exist in that
// client version.
const Missing int64 = -1

type tableKey struct{ version, arch string }

// TableVersions lists the client versions the offsets table holds for arch, oldest first.
func TableVersions(arch string) []string {
	var vs []string
	for k := range offsetsTable {
		if k.arch == arch {
			vs = append(vs, k.version)
		}
	}
	semver.Sort(vs)
	return vs
}

// FieldOffset returns the byte offset of field within the client struct
// structName: from DWARF when the binary has it, else from the offsets table.
func (b *Binary) FieldOffset(structName, field string) (int64, error) {
	ref := FieldRef{structName, field}
	if b.HasDWARF {
		off, err := b.dwarfFieldOffset(ref)
		if err == nil || errors.Is(err, ErrNoField) {
			return off, err
		}
		// Unreadable DWARF: fall through to the table.
	}
	fields, ok := offsetsTable[tableKey{b.ClientVersion, b.Arch}]
	if !ok && b.derived != nil {
		return b.derivedFieldOffset(ref)
	}
	if !ok {
		return 0, newErr(ErrUnsupportedClient, nil,
			"%s uses aerospike-client-go %s on %s, has no usable DWARF and that version is not in the offsets table (%s): build the service without -ldflags=-s -w, or add the version to tools/genoffsets and regenerate",
			b.subject(), b.ClientVersion, b.Arch, strings.Join(TableVersions(b.Arch), ", "))
	}
	off, ok := fields[ref]
	if !ok {
		return 0, newErr(ErrNoField, nil, "field %s is not in the offsets table for aerospike-client-go %s/%s: add it to inspect.RequiredFields and regenerate with go run ./tools/genoffsets", ref, b.ClientVersion, b.Arch)
	}
	if off == Missing {
		return 0, b.missingField(ref)
	}
	return off, nil
}

// derivedFieldOffset is a field of the layout derived for a version the table lacks.
func (b *Binary) derivedFieldOffset(ref FieldRef) (int64, error) {
	if off, ok := b.derived.offsets[ref]; ok {
		if off == Missing {
			return 0, b.missingField(ref)
		}
		return off, nil
	}
	if why, ok := b.derived.unknown[ref]; ok {
		return 0, newErr(ErrNoField, nil, "%s: aerospike-client-go %s is not in the offsets table and the offset of %s is unknown: %s", b.subject(), b.ClientVersion, ref, why)
	}
	return 0, newErr(ErrNoField, nil, "field %s is not in the offsets table for aerospike-client-go %s/%s: add it to inspect.RequiredFields and regenerate with go run ./tools/genoffsets", ref, b.ClientVersion, b.Arch)
}

// DerivedFrom names the tabulated version whose layout a stripped build of an untabulated
// version was matched with; "" when the layout comes from DWARF or the table.
func (b *Binary) DerivedFrom() string {
	if b.derived == nil {
		return ""
	}
	return b.derived.from
}

// HideFromOffsetsTable removes version from the offsets table until restore is called, so
// that a test can open a stripped build of it as a version the table does not hold. Not
// safe for concurrent use with Open.
func HideFromOffsetsTable(version string) (restore func()) {
	hidden := map[tableKey]map[FieldRef]int64{}
	for k, v := range offsetsTable {
		if k.version == version {
			hidden[k] = v
			delete(offsetsTable, k)
		}
	}
	return func() {
		for k, v := range hidden {
			offsetsTable[k] = v
		}
	}
}

func (b *Binary) missingField(ref FieldRef) error {
	return newErr(ErrNoField, nil, "aerospike-client-go %s has no field %s.%s: this probe cannot run on that client version", b.ClientVersion, b.ClientModule+"."+ref.Struct, ref.Field)
}

// Offsets resolves every RequiredFields entry. Fields that do not exist in
// this client version are left out of the map; any other failure is an error.
func (b *Binary) Offsets() (map[FieldRef]int64, error) {
	out := make(map[FieldRef]int64, len(RequiredFields))
	for _, ref := range RequiredFields {
		off, err := b.FieldOffset(ref.Struct, ref.Field)
		if err != nil {
			if errors.Is(err, ErrNoField) {
				continue
			}
			return nil, err
		}
		out[ref] = off
	}
	return out, nil
}

type dwarfStruct struct {
	fields map[string]dwarfMember
}

type dwarfMember struct {
	offset int64
	typ    dwarf.Offset
}

// dwarfStructs indexes the client's struct types by name and DWARF offset.
type dwarfStructs struct {
	byName   map[string]*dwarfStruct
	byOffset map[dwarf.Offset]*dwarfStruct
}

// otherDWARFPackages are the packages besides the client whose structs the probes read.
var otherDWARFPackages = []string{"go.opentelemetry.io/otel/sdk/trace", "go.opentelemetry.io/otel/trace"}

// QualifiedFieldOffset returns the offset of field (a dotted path) within a struct of one
// of otherDWARFPackages, named in full, e.g. "go.opentelemetry.io/otel/sdk/trace.recordingSpan".
// Only DWARF tells: a stripped binary gives an error.
func (b *Binary) QualifiedFieldOffset(structName, field string) (int64, error) {
	if !b.HasDWARF {
		return 0, newErr(ErrNoField, nil, "%s has no DWARF: the offset of %s.%s is unknown", b.subject(), structName, field)
	}
	return b.dwarfOffset(structName, FieldRef{structName, field})
}

func (b *Binary) dwarfFieldOffset(ref FieldRef) (int64, error) {
	return b.dwarfOffset(b.ClientModule+"."+ref.Struct, ref)
}

func (b *Binary) dwarfOffset(name string, ref FieldRef) (int64, error) {
	b.dwarfOnce.Do(func() { b.structs, b.dwarfErr = b.readDWARFStructs() })
	if b.dwarfErr != nil {
		return 0, b.dwarfErr
	}
	st, ok := b.structs.byName[name]
	if !ok {
		return 0, newErr(ErrNoField, nil, "%s: struct %s is not in the binary's DWARF (client %s): the code using it was not linked in, or the version renamed it", b.subject(), name, b.ClientVersion)
	}
	var total int64
	path := strings.Split(ref.Field, ".")
	for i, part := range path {
		m, ok := st.fields[part]
		if !ok {
			return 0, b.missingField(ref)
		}
		total += m.offset
		if i == len(path)-1 {
			break
		}
		if st, ok = b.structs.byOffset[m.typ]; !ok {
			return 0, newErr(ErrNoField, nil, "field path %s: %s is not an embedded or value struct of an indexed package", ref, part)
		}
	}
	return total, nil
}

func (b *Binary) readDWARFStructs() (_ *dwarfStructs, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("reading DWARF: panic: %v", r)
		}
	}()
	d, err := b.dwarf()
	if err != nil {
		return nil, err
	}
	prefixes := []string{b.ClientModule + "."}
	for _, p := range otherDWARFPackages {
		prefixes = append(prefixes, p+".")
	}
	indexed := func(name string) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) && !strings.ContainsAny(name[len(p):], ".[") {
				return true
			}
		}
		return false
	}
	out := &dwarfStructs{byName: map[string]*dwarfStruct{}, byOffset: map[dwarf.Offset]*dwarfStruct{}}
	typedefs := map[dwarf.Offset]dwarf.Offset{}
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil {
			return nil, fmt.Errorf("reading DWARF: %w", err)
		}
		if e == nil {
			for from, to := range typedefs {
				if st, ok := out.byOffset[to]; ok {
					out.byOffset[from] = st
				}
			}
			return out, nil
		}
		if e.Tag == dwarf.TagCompileUnit || e.Tag == 0 {
			continue
		}
		name, _ := e.Val(dwarf.AttrName).(string)
		if e.Tag == dwarf.TagTypedef && indexed(name) {
			// Members refer to named types through a typedef.
			if typ, ok := e.Val(dwarf.AttrType).(dwarf.Offset); ok {
				typedefs[e.Offset] = typ
			}
		}
		if e.Tag != dwarf.TagStructType || !indexed(name) {
			if e.Children {
				r.SkipChildren()
			}
			continue
		}
		st := &dwarfStruct{fields: map[string]dwarfMember{}}
		if e.Children {
			for {
				m, err := r.Next()
				if err != nil {
					return nil, fmt.Errorf("reading DWARF: %w", err)
				}
				if m == nil || m.Tag == 0 {
					break
				}
				if m.Children {
					r.SkipChildren()
				}
				if m.Tag != dwarf.TagMember {
					continue
				}
				mname, _ := m.Val(dwarf.AttrName).(string)
				off, ok := m.Val(dwarf.AttrDataMemberLoc).(int64)
				if !ok {
					continue
				}
				typ, _ := m.Val(dwarf.AttrType).(dwarf.Offset)
				st.fields[mname] = dwarfMember{offset: off, typ: typ}
			}
		}
		out.byName[name] = st
		out.byOffset[e.Offset] = st
	}
}
