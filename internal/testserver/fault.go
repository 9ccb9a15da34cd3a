package testserver

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Command kinds a Fault can match.
const (
	CmdRead   = "read"
	CmdWrite  = "write"
	CmdDelete = "delete"
	CmdBatch  = "batch"
	CmdScan   = "scan"
	CmdQuery  = "query"
	CmdUDF    = "udf"
	// CmdTxnVerify and CmdTxnRoll are a v8 transaction commit's verify step and its
	// roll-forward or roll-back step (batches or, for one key per node, single commands).
	CmdTxnVerify = "txn_verify"
	CmdTxnRoll   = "txn_roll"
)

// Fault is an injected outcome. It matches requests by namespace, set and command kind
// (empty = any). A matching request first waits Latency, then: Hang stops answering
// (the client times out), CloseConn sends part of the reply and closes the connection,
// a non-zero ResultCode is returned instead of executing the command. Percent applies
// the fault to that share of matching requests, spread deterministically (every
// 100/Percent-th request); 0 means all of them.
type Fault struct {
	Namespace  string
	Set        string
	Command    string
	Latency    time.Duration
	ResultCode int
	CloseConn  bool
	Hang       bool
	Percent    float64
}

func (f Fault) String() string {
	var parts []string
	add := func(s string) { parts = append(parts, s) }
	if f.Namespace != "" {
		add("ns=" + f.Namespace)
	}
	if f.Set != "" {
		add("set=" + f.Set)
	}
	if f.Command != "" {
		add("cmd=" + f.Command)
	}
	if f.Latency > 0 {
		add("latency=" + f.Latency.String())
	}
	if f.ResultCode != 0 {
		add("rc=" + strconv.Itoa(f.ResultCode))
	}
	if f.CloseConn {
		add("close")
	}
	if f.Hang {
		add("hang")
	}
	if f.Percent > 0 {
		add("pct=" + strconv.FormatFloat(f.Percent, 'g', -1, 64))
	}
	return strings.Join(parts, ",")
}

// ParseFault parses "ns=test,set=users,cmd=read,latency=5ms,rc=9,close,hang,pct=50".
func ParseFault(s string) (Fault, error) {
	var f Fault
	if strings.TrimSpace(s) == "" {
		return f, fmt.Errorf("empty fault spec: use e.g. ns=test,cmd=read,rc=9")
	}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		k, v, hasValue := strings.Cut(item, "=")
		var err error
		switch k {
		case "ns", "namespace":
			f.Namespace = v
		case "set":
			f.Set = v
		case "cmd", "command":
			switch v {
			case CmdRead, CmdWrite, CmdDelete, CmdBatch, CmdScan, CmdQuery, CmdUDF, CmdTxnVerify, CmdTxnRoll, "":
				f.Command = v
			default:
				return f, fmt.Errorf("fault %q: unknown cmd %q: use read, write, delete, batch, scan, query, udf, txn_verify or txn_roll", s, v)
			}
		case "latency", "delay":
			f.Latency, err = time.ParseDuration(v)
		case "rc", "code":
			f.ResultCode, err = strconv.Atoi(v)
			if err == nil && (f.ResultCode < 0 || f.ResultCode > 255) {
				err = fmt.Errorf("result code must be 0..255")
			}
		case "close":
			f.CloseConn = !hasValue || v == "true"
		case "hang":
			f.Hang = !hasValue || v == "true"
		case "pct", "percent":
			f.Percent, err = strconv.ParseFloat(v, 64)
			if err == nil && (f.Percent < 0 || f.Percent > 100) {
				err = fmt.Errorf("percent must be 0..100")
			}
		default:
			return f, fmt.Errorf("fault %q: unknown key %q: use ns, set, cmd, latency, rc, close, hang, pct", s, k)
		}
		if err != nil {
			return f, fmt.Errorf("fault %q: bad %s value %q: %v", s, k, v, err)
		}
	}
	return f, nil
}

type faultRule struct {
	Fault
	seen atomic.Int64
}

func (r *faultRule) matches(ns, set []byte, cmd string) bool {
	if r.Namespace != "" && r.Namespace != string(ns) {
		return false
	}
	if r.Set != "" && r.Set != string(set) {
		return false
	}
	if r.Command != "" && r.Command != cmd {
		return false
	}
	if r.Percent <= 0 || r.Percent >= 100 {
		return true
	}
	n := float64(r.seen.Add(1))
	// Fires when the running share n*pct/100 crosses an integer: exact over any window.
	return int64(n*r.Percent/100) != int64((n-1)*r.Percent/100)
}

func compileFaults(fs []Fault) []*faultRule {
	rules := make([]*faultRule, len(fs))
	for i, f := range fs {
		rules[i] = &faultRule{Fault: f}
	}
	return rules
}

// findFault returns the first rule that applies to this request, or nil.
func findFault(rules []*faultRule, ns, set []byte, cmd string) *Fault {
	for _, r := range rules {
		if r.matches(ns, set, cmd) {
			return &r.Fault
		}
	}
	return nil
}
