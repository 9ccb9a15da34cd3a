package probes

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/mod/semver"
)

// Excluded lists, with the reason, the exported *Client methods of any supported version
// that are not data operations and so are not counted. Every exported method is either
// counted by a row (Probe.Methods) or listed here: TestEveryClientMethodHasADisposition
// parses the client's source and fails on a method that is neither, so a new client
// release's new method is caught by a test, not by a user.
var Excluded = map[string]string{}

func exclude(reason string, methods ...string) {
	for _, m := range methods {
		Excluded[m] = reason
	}
}

func init() {
	exclude("policy defaults: no I/O",
		"GetDefaultAdminPolicy", "GetDefaultBatchDeletePolicy", "GetDefaultBatchPolicy", "GetDefaultBatchReadPolicy",
		"GetDefaultBatchUDFPolicy", "GetDefaultBatchWritePolicy", "GetDefaultInfoPolicy", "GetDefaultPolicy",
		"GetDefaultQueryPolicy", "GetDefaultScanPolicy", "GetDefaultTxnRollPolicy", "GetDefaultTxnVerifyPolicy",
		"GetDefaultWritePolicy", "SetDefaultAdminPolicy", "SetDefaultBatchDeletePolicy", "SetDefaultBatchPolicy",
		"SetDefaultBatchReadPolicy", "SetDefaultBatchUDFPolicy", "SetDefaultBatchWritePolicy", "SetDefaultInfoPolicy",
		"SetDefaultPolicy", "SetDefaultQueryPolicy", "SetDefaultScanPolicy", "SetDefaultTxnRollPolicy",
		"SetDefaultTxnVerifyPolicy", "SetDefaultWritePolicy")
	exclude("user and role administration (admin commands, not data)",
		"ChangePassword", "CreateRole", "CreateUser", "CreatePKIUser", "DropRole", "DropUser", "GrantPrivileges",
		"GrantRoles", "QueryRole", "QueryRoles", "QueryUser", "QueryUsers", "RevokePrivileges", "RevokeRoles",
		"SetQuotas", "SetWhitelist")
	exclude("secondary index administration (info commands)",
		"CreateIndex", "CreateComplexIndex", "CreateIndexWithExpression", "CreateSetIndex", "DropIndex")
	exclude("UDF module administration (info commands)", "RegisterUDF", "RegisterUDFFromFile", "RemoveUDF", "ListUDF")
	exclude("cluster and connection management: no record data",
		"Close", "Cluster", "GetNodes", "GetNodeNames", "IsConnected", "WarmUp", "Stats", "String")
	exclude("namespace/set administration (info commands)", "Truncate", "SetXDRFilter")
	exclude("the client's own metrics switch: no I/O", "EnableMetrics", "DisableMetrics", "MetricsEnabled")
	exclude("not observed: the aggregation's stream is ended by an anonymous goroutine that holds its recordset "+
		"in a closure, whose layout the compiler chooses, so its end cannot be timed exactly from outside",
		"QueryAggregate")
}

// Limit is a form of call to a counted method that is not counted, in some versions.
type Limit struct {
	Method   string
	Versions Range
	Reason   string
}

// Limits are the calls of counted methods that asobserve leaves uncounted, and why.
var Limits = []Limit{
	{"QueryNodeObjects", ">=v6.0.0 <v6.13.0", "with a filter its per-node command never closes the stream " +
		"(a client defect: the caller waits forever), so that call never ends and is not counted"},
}

// Disposition is what asobserve does with one exported *Client method of a client version.
type Disposition struct {
	Method string
	Op     string // db_operation_name when counted (AltOp after a slash)
	Reason string // why it is not counted
	Limit  string // which calls of a counted method are not counted, and why
}

// Inventory lists the dispositions of the given exported methods of a client version, in
// their order; a method with neither a row nor an exclusion has neither Op nor Reason.
func Inventory(major int, version string, methods []string) ([]Disposition, error) {
	probes, err := ForVersion(major, version)
	if err != nil {
		return nil, err
	}
	ops := map[string]string{}
	for _, p := range probes {
		op := p.Op
		if p.AltOp != "" {
			op += "/" + p.AltOp
		}
		for _, m := range p.Methods() {
			ops[m] = op
		}
	}
	out := make([]Disposition, 0, len(methods))
	for _, m := range methods {
		d := Disposition{Method: m, Op: ops[m], Reason: Excluded[m]}
		for _, l := range Limits {
			if l.Method == m && l.Versions.Contains(version) {
				d.Limit = l.Reason
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// InventoryMarkdown renders the dispositions of every version as one table: a row per
// method, its operation name or the reason it is not counted, and the versions that have it.
func InventoryMarkdown(perVersion map[string][]Disposition) string {
	versions := make([]string, 0, len(perVersion))
	for v := range perVersion {
		versions = append(versions, v)
	}
	semver.Sort(versions)
	type entry struct {
		what string
		in   []string
	}
	rows := map[string]*entry{}
	for _, v := range versions {
		for _, d := range perVersion[v] {
			what := "`" + d.Op + "`"
			switch {
			case d.Op == "":
				what = "not counted: " + d.Reason
			case d.Limit != "":
				what += "; " + d.Limit
			}
			key := d.Method + "\x00" + what
			if rows[key] == nil {
				rows[key] = &entry{what: what}
			}
			rows[key].in = append(rows[key].in, v)
		}
	}
	keys := make([]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString("| `*Client` method | db_operation_name | versions |\n|---|---|---|\n")
	for _, k := range keys {
		e := rows[k]
		in := "all"
		if len(e.in) != len(versions) {
			in = versionSpan(e.in, versions)
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", strings.SplitN(k, "\x00", 2)[0], e.what, in)
	}
	return b.String()
}

// versionSpan names the versions in as whole majors where it holds all of a major's, and
// as first–last otherwise.
func versionSpan(in, all []string) string {
	majorOf := func(v string) string { return strings.SplitN(v, ".", 2)[0] }
	count := map[string]int{}
	for _, v := range all {
		count[majorOf(v)]++
	}
	var parts []string
	for i := 0; i < len(in); {
		m := majorOf(in[i])
		j := i
		for j < len(in) && majorOf(in[j]) == m {
			j++
		}
		switch {
		case j-i == count[m]:
			parts = append(parts, m)
		case j-i == 1:
			parts = append(parts, in[i])
		default:
			parts = append(parts, in[i]+"–"+in[j-1])
		}
		i = j
	}
	return strings.Join(parts, ", ")
}
