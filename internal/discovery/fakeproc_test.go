package discovery

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeProc is a /proc tree with stat, status and exe for each pid. Executables are files
// in bin/; the fake inspector calls a file a client when its name starts with "client".
type fakeProc struct {
	t    *testing.T
	root string
	bin  string
}

func newFakeProc(t *testing.T) *fakeProc {
	dir := t.TempDir()
	f := &fakeProc{t: t, root: filepath.Join(dir, "proc"), bin: filepath.Join(dir, "bin")}
	for _, d := range []string{f.root, f.bin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"client-a", "client-b", "plain"} {
		if err := os.WriteFile(filepath.Join(f.bin, name), []byte(name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// set creates or replaces pid's entry. exe "" means no exe link (a kernel thread).
func (f *fakeProc) set(pid int, comm string, start uint64, exe string, nspids ...int) {
	dir := filepath.Join(f.root, fmt.Sprint(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.t.Fatal(err)
	}
	// Fields 3..21 are filler; field 22 is the start time.
	stat := fmt.Sprintf("%d (%s) S 1 %d %d 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 %d 1000 50\n", pid, comm, pid, pid, start)
	must(f.t, os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644))
	ns := []string{fmt.Sprint(pid)}
	for _, n := range nspids {
		ns = append(ns, fmt.Sprint(n))
	}
	status := fmt.Sprintf("Name:\t%s\nTgid:\t%d\nNSpid:\t%s\nPPid:\t1\n", comm, pid, strings.Join(ns, "\t"))
	must(f.t, os.WriteFile(filepath.Join(dir, "status"), []byte(status), 0o644))
	link := filepath.Join(dir, "exe")
	_ = os.Remove(link)
	if exe != "" {
		must(f.t, os.Symlink(filepath.Join(f.bin, exe), link))
	}
}

// exiting marks pid's process as exiting (PF_EXITING), as at the exit tracepoint. Its exe
// link stays: kernels since 6.16 fire the tracepoint before the address space goes.
func (f *fakeProc) exiting(pid int) {
	file := filepath.Join(f.root, fmt.Sprint(pid), "stat")
	stat, err := os.ReadFile(file)
	must(f.t, err)
	flagged := strings.Replace(string(stat), " 4194560 ", " 4194564 ", 1)
	if flagged == string(stat) {
		f.t.Fatalf("no flags field in %q", stat)
	}
	must(f.t, os.WriteFile(file, []byte(flagged), 0o644))
}

func (f *fakeProc) remove(pid int) {
	must(f.t, os.RemoveAll(filepath.Join(f.root, fmt.Sprint(pid))))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type fakeWatcher struct {
	*Watcher
	inspected map[string]int
}

func newFakeWatcher(f *fakeProc, include, exclude []string) *fakeWatcher {
	fw := &fakeWatcher{Watcher: New(Options{ProcRoot: f.root, Include: include, Exclude: exclude, NoExecProbe: true}), inspected: map[string]int{}}
	fw.inspect = func(exe string) verdict {
		target, _ := filepath.EvalSymlinks(exe)
		fw.inspected[filepath.Base(target)]++
		if strings.HasPrefix(filepath.Base(target), "client") {
			return verdict{client: true, module: "github.com/aerospike/aerospike-client-go/v7", version: "v7.10.2"}
		}
		return verdict{}
	}
	return fw
}

// drain returns the events the last step emitted as "added:PID:START" / "removed:PID:START".
func (fw *fakeWatcher) drain() []string {
	var out []string
	for {
		select {
		case ev := <-fw.events:
			out = append(out, fmt.Sprintf("%s:%d:%d", ev.Kind, ev.PID, ev.StartTime))
		default:
			return out
		}
	}
}

func (fw *fakeWatcher) scanStep(t *testing.T, want ...string) {
	t.Helper()
	if !fw.scan(context.Background()) {
		t.Fatal("scan stopped")
	}
	assertEvents(t, fw.drain(), want)
}

func assertEvents(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("events = %q, want %q", got, want)
	}
}

func TestScanReportsOnlyClientsAndHandlesPIDReuse(t *testing.T) {
	f := newFakeProc(t)
	f.set(100, "client-a", 1000, "client-a", 7)
	f.set(101, "plain", 1001, "plain")
	f.set(2, "kthreadd", 5, "")
	fw := newFakeWatcher(f, nil, nil)

	fw.scanStep(t, "added:100:1000")
	ev := fw.Watcher.procs[100].proc
	if ev.NSpid != 7 || ev.ExeName != filepath.Join(f.bin, "client-a") ||
		ev.ExePath != filepath.Join(f.root, "100", "root", f.bin, "client-a") || ev.ModuleVersion != "v7.10.2" {
		t.Fatalf("process = %+v", ev)
	}
	fw.scanStep(t)

	// Same pid, new start time: the old process went away and a new one took its pid.
	f.set(100, "client-a", 2000, "client-a")
	fw.scanStep(t, "removed:100:1000", "added:100:2000")
	if got := fw.Watcher.procs[100].proc.NSpid; got != 100 {
		t.Fatalf("NSpid outside a namespace = %d, want 100", got)
	}

	// Reused by a non-client: only the removal.
	f.set(100, "plain", 3000, "plain")
	fw.scanStep(t, "removed:100:2000")

	// Reused by a client again, then gone.
	f.set(100, "client-b", 4000, "client-b")
	fw.scanStep(t, "added:100:4000")
	f.remove(100)
	fw.scanStep(t, "removed:100:4000")

	// A second process of an already inspected executable is not inspected again.
	f.set(200, "client-a", 5000, "client-a")
	f.set(201, "client-a", 5001, "client-a")
	fw.scanStep(t, "added:200:5000", "added:201:5001")
	if fw.inspected["client-a"] != 1 || fw.inspected["plain"] != 1 || fw.inspected["client-b"] != 1 {
		t.Fatalf("inspections = %v, want one per executable", fw.inspected)
	}
}

func TestExecAndExitSignals(t *testing.T) {
	f := newFakeProc(t)
	f.set(300, "plain", 10, "plain")
	fw := newFakeWatcher(f, nil, nil)
	fw.scanStep(t)

	// exec into a client binary: same pid and start time, new executable.
	f.set(300, "client-a", 10, "client-a")
	assertEvents(t, eventsOf(fw.check(300, true)), []string{"added:300:10"})
	// exec into another client binary.
	f.set(300, "client-b", 10, "client-b")
	assertEvents(t, eventsOf(fw.check(300, true)), []string{"removed:300:10", "added:300:10"})

	// Exit seen by the tracepoint: removed once, the zombie is not rediscovered, and
	// reaping emits nothing more.
	f.exiting(300)
	assertEvents(t, eventsOf(fw.exited(300)), []string{"removed:300:10"})
	assertEvents(t, eventsOf(fw.exited(300)), nil)
	fw.scanStep(t)
	f.remove(300)
	fw.scanStep(t)

	// The pid comes back as a new client process.
	f.set(300, "client-a", 99, "client-a")
	assertEvents(t, eventsOf(fw.check(300, true)), []string{"added:300:99"})

	// A tracked process whose exe vanished (zombie without exit notice) is removed.
	f.set(300, "client-a", 99, "")
	fw.scanStep(t, "removed:300:99")
}

// An exit notice handled after a scan has seen the process gone and a new process take
// its pid belongs to the old owner: the new one stays reported, before and after its exec.
func TestLateExitNoticeSparesTheNextOwnerOfThePID(t *testing.T) {
	f := newFakeProc(t)
	f.set(400, "client-a", 10, "client-a")
	fw := newFakeWatcher(f, nil, nil)
	fw.scanStep(t, "added:400:10")
	f.remove(400)
	fw.scanStep(t, "removed:400:10")

	// Forked, not yet exec'd: the old owner's notice must not mark the child exited.
	f.set(400, "plain", 20, "plain")
	fw.scanStep(t)
	assertEvents(t, eventsOf(fw.exited(400)), nil)
	f.set(400, "client-a", 20, "client-a")
	assertEvents(t, eventsOf(fw.check(400, true)), []string{"added:400:20"})

	// Already reported: a second late notice leaves it attached.
	assertEvents(t, eventsOf(fw.exited(400)), nil)
	fw.scanStep(t)

	// A notice for a pid /proc shows on another process: the old one goes, the new comes.
	f.set(400, "client-b", 30, "client-b")
	assertEvents(t, eventsOf(fw.exited(400)), []string{"removed:400:20", "added:400:30"})

	// Its own exit still counts at once.
	f.exiting(400)
	assertEvents(t, eventsOf(fw.exited(400)), []string{"removed:400:30"})
}

func eventsOf(evs []Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, fmt.Sprintf("%s:%d:%d", ev.Kind, ev.PID, ev.StartTime))
	}
	return out
}

func TestIncludeExcludeGlobs(t *testing.T) {
	f := newFakeProc(t)
	f.set(10, "client-a", 1, "client-a")
	f.set(11, "client-b", 2, "client-b")

	for _, tc := range []struct {
		name             string
		include, exclude []string
		want             []string
	}{
		{"all", nil, nil, []string{"added:10:1", "added:11:2"}},
		{"include base name", []string{"client-b"}, nil, []string{"added:11:2"}},
		{"include full path", []string{filepath.Join(f.bin, "client-?")}, nil, []string{"added:10:1", "added:11:2"}},
		{"exclude wins", []string{"client-*"}, []string{"*-a"}, []string{"added:11:2"}},
		{"include nothing matching", []string{"nginx"}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fw := newFakeWatcher(f, tc.include, tc.exclude)
			fw.scanStep(t, tc.want...)
		})
	}
}

func TestParseStartTime(t *testing.T) {
	// A command name with spaces and parentheses must not shift the fields.
	stat := []byte("4242 (we ird) (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 50 18446744073709551615")
	got, err := parseStartTime(stat)
	if err != nil || got != 987654 {
		t.Fatalf("parseStartTime = %d, %v; want 987654", got, err)
	}
	if _, err := parseStartTime([]byte("12 (x) S 1 2")); err == nil {
		t.Fatal("short stat accepted")
	}
}

func TestParseNSpid(t *testing.T) {
	for _, tc := range []struct {
		status string
		want   int
	}{
		{"Name:\tapp\nNSpid:\t5123\t88\t1\n", 1},
		{"Name:\tapp\nNSpid:\t5123\n", 5123},
		{"Name:\told-kernel\n", 77},
	} {
		got, err := parseNSpid([]byte(tc.status), 77)
		if err != nil || got != tc.want {
			t.Fatalf("parseNSpid(%q) = %d, %v; want %d", tc.status, got, err, tc.want)
		}
	}
}
