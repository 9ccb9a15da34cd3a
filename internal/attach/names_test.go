//go:build linux

package attach_test

import (
	"testing"

	"github.com/asobserve/asobserve/internal/attach"
	"github.com/asobserve/asobserve/internal/e2etest"
	"github.com/asobserve/asobserve/internal/metrics"
	"github.com/asobserve/asobserve/internal/testserver"
)

// Names that are string constants of the executable are read from its file, others from
// the process's memory; the series are the same either way. The matrix target's default
// namespace and set are constants; given on the command line, they are in the process's
// memory (os.Args), and the probes must copy them.
func TestNamesFromTheExecutableOrTheProcess(t *testing.T) {
	e2etest.RequireRoot(t)
	cluster := e2etest.StartServer(t, testserver.Config{Nodes: 1})
	bin, err := e2etest.BuildTarget(t, e2etest.TargetBuild{Client: "v7", Flags: []string{"-buildmode=pie"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		args     []string
		fromFile int // distinct names read from the executable
	}{
		{"constants", nil, 2},
		{"arguments", []string{"-namespace", "test", "-set", "compat"}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := metrics.New(metrics.Options{})
			agent := runAgent(t, rec, attach.Options{})
			w := e2etest.StartTarget(t, bin, cluster.Hosts(), append([]string{"-count", "3"}, c.args...)...)
			if _, err := agent.Attach(w.PID, &metrics.Identity{Service: "names"}); err != nil {
				t.Fatal(err)
			}
			w.Go(t)
			truth := w.Wait(t, workloadLimit)
			Drain(t, agent)
			if n := attach.StaticNamesRead(agent, w.PID); n != c.fromFile {
				t.Errorf("%d names read from the executable, want %d", n, c.fromFile)
			}
			e2etest.CompareCounts(t, e2etest.OpSeries(t, rec.Registry, "names"), e2etest.TruthSeries(truth))
		})
	}
}
