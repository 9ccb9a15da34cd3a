package probes

import (
	"slices"
	"testing"

	"github.com/asobserve/asobserve/internal/inspect"
	"github.com/asobserve/asobserve/internal/semconv"
)

func TestEveryRowResolves(t *testing.T) {
	for _, r := range Rows {
		if _, err := r.Resolve(); err != nil {
			t.Errorf("%v", err)
		}
	}
	for _, major := range SupportedMajors() {
		if _, err := ForVersion(major, ""); err != nil {
			t.Errorf("v%d: %v", major, err)
		}
	}
}

// The words the table had when every row was written with positional register numbers:
// the declarations must place every argument where those numbers did.
func TestDeclarationsPlaceTheHandCountedWords(t *testing.T) {
	type words struct{ loc, alt, err, ptr uint8 }
	const no = NoWord
	want := map[string]words{
		"(*Client).Put": {2, no, 0, no}, "(*Client).PutBins": {2, no, 0, no},
		"(*Client).Get": {2, 4, 1, no}, "(*Client).GetHeader": {2, no, 1, no},
		"(*Client).Exists": {2, no, 1, no}, "(*Client).Delete": {2, no, 1, no},
		"(*Client).Touch": {2, no, 0, no}, "(*Client).Append": {2, no, 0, no},
		"(*Client).AppendBins": {2, no, 0, no}, "(*Client).Prepend": {2, no, 0, no},
		"(*Client).PrependBins": {2, no, 0, no}, "(*Client).Add": {2, no, 0, no},
		"(*Client).AddBins": {2, no, 0, no}, "(*Client).operate": {2, no, 1, no},
		"(*Client).Execute":  {2, no, 2, no},
		"(*Client).BatchGet": {2, no, 3, no}, "(*Client).BatchGetHeader": {2, no, 3, no},
		"(*Client).BatchExists": {2, no, 3, no}, "(*Client).BatchGetOperate": {2, no, 3, no},
		"(*Client).BatchGetComplex": {2, no, 0, no}, "(*Client).BatchOperate": {2, no, 0, no},
		"(*Client).BatchDelete":    {3, no, 3, no},
		"(*Client).ScanPartitions": {3, no, 1, 0}, "(*Client).scanNodePartitions": {3, no, 1, 0},
		"(*Client).scanPartitions":  {3, no, no, 7},
		"(*Client).QueryPartitions": {2, no, 1, 0}, "(*Client).queryNodePartitions": {3, no, 1, 0},
		"(*Client).queryPartitions":  {3, no, no, 4},
		"(*Recordset).sendError":     {0, no, 1, 0},
		"(*batchCommandGet).Execute": {0, no, no, 0}, "(*Connection).Write": {0, no, no, 0},
		"(*Connection).Read":                         {0, no, no, no},
		OTelSDKTrace + ".(*tracer).newRecordingSpan": {0, no, no, 0},
		OTelSDKTrace + ".(*recordingSpan).End":       {0, no, no, 0},
	}
	seen := 0
	for _, p := range ForMajor(7) {
		w, ok := want[p.Symbol]
		if !ok {
			continue
		}
		seen++
		if p.Names == LocNone {
			w.loc = 0 // unused: no locator
			p.LocWord = 0
		}
		if got := (words{p.LocWord, p.AltWord, p.ErrWord, p.PtrWord}); got != w {
			t.Errorf("%s: words %+v, want %+v", p.Symbol, got, w)
		}
	}
	if seen != len(want) {
		t.Errorf("checked %d rows, want %d", seen, len(want))
	}
}

func TestParseDeclFollowsTheRegisterABI(t *testing.T) {
	d, err := ParseDecl("func (c *Client) f(a, b string, s []int, m BinMap, e Error, big []int, last *Key) (n int, err Error)")
	if err != nil {
		t.Fatal(err)
	}
	if d.Symbol != "(*Client).f" {
		t.Errorf("symbol %q", d.Symbol)
	}
	// c 0, a 1-2, b 3-4, s 5-7, m 8; e needs two of the one left: stack; big: stack;
	// last takes the last register.
	wantParams := []uint8{0, 1, 3, 5, 8, NoWord, NoWord, NoWord}
	for i, a := range d.Params {
		if a.Word != wantParams[i] {
			t.Errorf("param %d %s: word %d, want %d", i, a.Name, a.Word, wantParams[i])
		}
	}
	if d.Results[0].Word != 0 || d.Results[1].Word != 1 {
		t.Errorf("results %+v: they start again at word 0", d.Results)
	}
	if _, err := (Row{Func: "func (c *Client) g(x float64)"}).Resolve(); err == nil {
		t.Error("a float argument resolved: floats take other registers")
	}
	r := Row{Func: "func (c *Client) h(a, b, d string, n int, key *Key) (err Error)", Kind: KindOp, Names: LocKey, At: "key", Err: "err"}
	if _, err := r.Resolve(); err != nil {
		t.Errorf("key in the ninth register: %v", err)
	}
	r.Func = "func (c *Client) h(a, b, d, e string, key *Key) (err Error)"
	if _, err := r.Resolve(); err == nil {
		t.Error("a key on the stack resolved: the probes cannot read it")
	}
	if _, err := (Row{Func: "func f(ns string, n int)", Names: LocStrings, At: "ns"}).Resolve(); err == nil {
		t.Error("LocStrings without a set string after the namespace resolved")
	}
}

func TestRange(t *testing.T) {
	for _, c := range []struct {
		r       Range
		version string
		want    bool
	}{
		{"", "v7.0.0", true}, {"", "junk", true},
		{v7, "v7.0.0", true}, {v7, "v7.10.2", true}, {v7, "v8.0.0", false}, {v7, "v6.16.1", false},
		{v6v8, "v6.10.0", true}, {v6v8, "v8.8.0", true}, {v6v8, "v7.1.0", false},
		{">=v7.2.0 <v7.6.0", "v7.5.9", true}, {">=v7.2.0 <v7.6.0", "v7.6.0", false},
		{"=v8.2.0", "v8.2.0", true}, {methodsAlwaysLinked, "v8.0.0", false}, {methodsAlwaysLinked, "v7.9.0", true},
		{v7, "junk", false},
	} {
		if got := c.r.Contains(c.version); got != c.want {
			t.Errorf("%q contains %s = %v, want %v", c.r, c.version, got, c.want)
		}
	}
	for _, bad := range []Range{"v7", ">v7.0.0", ">=7.0.0", "||", ">=v7.0.0 ||"} {
		if bad.valid() == nil {
			t.Errorf("range %q is valid", bad)
		}
	}
	for _, r := range Rows {
		if err := r.Versions.valid(); err != nil {
			t.Errorf("%s: %v", r.Func, err)
		}
	}
}

func TestProbePointsFollowTheKind(t *testing.T) {
	for k, want := range map[Kind][2]bool{
		KindOp: {true, true}, KindAsyncStart: {true, true}, KindAsyncWorker: {true, true}, KindErrsink: {true, false},
		KindStage: {true, true}, KindLink: {true, true}, KindIoWrite: {true, false}, KindIoRead: {false, true},
		KindParseEnd: {false, true}, KindAttempt: {true, true}, KindSpanStart: {false, true}, KindSpanEnd: {true, false},
		KindSpawn: {true, true}, KindStreamEnd: {true, false},
	} {
		if got := [2]bool{k.Entry(), k.Return()}; got != want {
			t.Errorf("kind %d: entry, return = %v, want %v", k, got, want)
		}
	}
}

// The stage label of every stage id is the seed's name for it, and every seed stage has one.
func TestStageLabelsAreTheSeedStages(t *testing.T) {
	var got []string
	for id := StageID(0); id < NumStages; id++ {
		got = append(got, StageName(uint8(id)))
	}
	if !slices.Equal(got, semconv.Stages) {
		t.Errorf("stage ids name %v, the seed's stages are %v", got, semconv.Stages)
	}
	if StageName(uint8(NumStages)) != "" {
		t.Errorf("id %d past the last stage has a name", NumStages)
	}
}

// Stripped binaries read struct offsets from the offsets table, which holds the fields
// inspect.RequiredFields lists: every client field a row reads must be there.
func TestOffsetsTableHoldsEveryFieldTheRowsRead(t *testing.T) {
	required := map[inspect.FieldRef]bool{}
	for _, f := range inspect.RequiredFields {
		required[f] = true
	}
	for _, r := range Rows {
		for _, f := range append(r.Fields(), ServerAddressFields...) {
			if f == SpanContext {
				continue // the OTel SDK's, read from DWARF only
			}
			if !required[inspect.FieldRef{Struct: f.Struct, Field: f.Name}] {
				t.Errorf("%s reads %s.%s, which inspect.RequiredFields (and so the offsets table) lacks", r.Func, f.Struct, f.Name)
			}
		}
	}
}
