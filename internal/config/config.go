// Package config resolves the agent's settings with one rule everywhere:
// command-line flag > environment variable > default. Settings are declared once (Agent),
// bound to a command's pflag.FlagSet, resolved and validated together; every error is one
// line naming the flag or variable, the bad value and the remedy.
package config

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Kind selects how a setting's text is parsed and validated.
type Kind int

const (
	String  Kind = iota
	Bool         // 1,true,True,TRUE,yes,on / 0,false,False,FALSE,no,off,"" (the seed's truthy set)
	Int          // decimal integer
	Seconds      // number of seconds ("30", "0.5") or a Go duration ("30s", "1m")
	Size         // bytes: "8388608", "8MiB", "512KiB", "1GiB"
)

// Setting declares one configuration value.
type Setting struct {
	Name    string // stable identifier, also the row name in `asobserve config`
	Flag    string // long flag name without dashes
	Env     string // environment variable
	Default string
	Help    string
	Secret  bool // masked in output and errors
	Kind    Kind
	// Check validates the parsed text further; it returns the problem and remedy, e.g.
	// "must be between 1 and 65535; use e.g. 6379". Optional.
	Check func(raw string) error
}

// Source tells where a resolved value came from.
type Source string

const (
	FromFlag    Source = "flag"
	FromEnv     Source = "env"
	FromDefault Source = "default"
)

// Value is a resolved setting.
type Value struct {
	Setting
	Raw    string
	Source Source
}

// Display is the value as it may be shown: secrets masked.
func (v Value) Display() string {
	if v.Secret && v.Raw != "" {
		return "********"
	}
	return v.Raw
}

// Set is a list of declared settings.
type Set struct {
	settings []Setting
	byName   map[string]int
}

// NewSet declares settings; names, flags and environment variables must be unique.
func NewSet(settings ...Setting) *Set {
	s := &Set{settings: settings, byName: map[string]int{}}
	flags, envs := map[string]bool{}, map[string]bool{}
	for i, st := range settings {
		if _, dup := s.byName[st.Name]; dup || flags[st.Flag] || envs[st.Env] {
			panic("config: duplicate setting " + st.Name)
		}
		s.byName[st.Name] = i
		flags[st.Flag], envs[st.Env] = st.Flag != "", st.Env != ""
	}
	return s
}

// Settings returns the declarations in order.
func (s *Set) Settings() []Setting { return append([]Setting(nil), s.settings...) }

// Binding ties a Set to one command's flags.
type Binding struct {
	set   *Set
	fs    *pflag.FlagSet
	bound map[string]bool
	// LookupEnv reads the environment; tests replace it.
	LookupEnv func(string) (string, bool)
}

// Bind registers flags for the named settings (all when names is empty) on fs. A flag that
// fs already defines is adopted as is, so commands may keep typed flags of their own.
func (s *Set) Bind(fs *pflag.FlagSet, names ...string) *Binding {
	b := &Binding{set: s, fs: fs, bound: map[string]bool{}, LookupEnv: os.LookupEnv}
	if len(names) == 0 {
		for _, st := range s.settings {
			names = append(names, st.Name)
		}
	}
	for _, n := range names {
		st := s.setting(n)
		if st.Flag == "" {
			continue
		}
		b.bound[n] = true
		if fs.Lookup(st.Flag) != nil {
			continue
		}
		def := st.Default
		if st.Secret {
			def = ""
		}
		help := st.Help
		if st.Env != "" {
			help += " (env " + st.Env + ")"
		}
		fs.String(st.Flag, def, help)
		if st.Kind == Bool {
			fs.Lookup(st.Flag).NoOptDefVal = "true"
		}
	}
	return b
}

func (s *Set) setting(name string) Setting {
	i, ok := s.byName[name]
	if !ok {
		panic("config: unknown setting " + name)
	}
	return s.settings[i]
}

// Resolve applies flag > environment > default to every setting of the set and validates
// the results. The error names the first bad value.
func (b *Binding) Resolve() (*Config, error) {
	c := &Config{set: b.set, values: make([]Value, len(b.set.settings))}
	for i, st := range b.set.settings {
		v := Value{Setting: st, Raw: st.Default, Source: FromDefault}
		origin := "default of " + st.Name
		if env, ok := b.LookupEnv(st.Env); ok && st.Env != "" {
			v.Raw, v.Source, origin = env, FromEnv, st.Env
		}
		if b.bound[st.Name] {
			if f := b.fs.Lookup(st.Flag); f != nil && f.Changed {
				v.Raw, v.Source, origin = f.Value.String(), FromFlag, "--"+st.Flag
			}
		}
		if err := validate(st, v.Raw); err != nil {
			shown := strconv.Quote(v.Raw)
			if st.Secret {
				shown = "(secret)"
			}
			return nil, fmt.Errorf("%s=%s: %w", origin, shown, err)
		}
		c.values[i] = v
	}
	return c, nil
}

func validate(st Setting, raw string) error {
	var err error
	switch st.Kind {
	case Bool:
		_, err = parseBool(raw)
	case Int:
		if _, perr := strconv.ParseInt(strings.TrimSpace(raw), 10, 64); perr != nil {
			err = fmt.Errorf("not an integer; use e.g. %s", st.Default)
		}
	case Seconds:
		_, err = parseSeconds(raw, st.Default)
	case Size:
		_, err = parseSize(raw, st.Default)
	}
	if err == nil && st.Check != nil {
		err = st.Check(raw)
	}
	return err
}

// Config is the resolved configuration.
type Config struct {
	set    *Set
	values []Value
}

// Values returns every resolved setting in declaration order.
func (c *Config) Values() []Value { return append([]Value(nil), c.values...) }

// Lookup returns one resolved setting.
func (c *Config) Lookup(name string) Value { return c.values[c.set.byName[name]] }

// String returns the text of a setting; it panics on an undeclared name (a programming error).
func (c *Config) String(name string) string {
	c.set.setting(name)
	return c.Lookup(name).Raw
}

// Bool returns a Bool setting.
func (c *Config) Bool(name string) bool {
	v, _ := parseBool(c.String(name))
	return v
}

// Int returns an Int setting.
func (c *Config) Int(name string) int {
	v, _ := strconv.Atoi(strings.TrimSpace(c.String(name)))
	return v
}

// Duration returns a Seconds setting.
func (c *Config) Duration(name string) time.Duration {
	v, _ := parseSeconds(c.String(name), "")
	return v
}

// Size returns a Size setting in bytes.
func (c *Config) Size(name string) int {
	v, _ := parseSize(c.String(name), "")
	return v
}

// RollingWindows returns the three rolling window lengths.
func (c *Config) RollingWindows() []time.Duration {
	return []time.Duration{c.Duration(Rolling1m), c.Duration(Rolling5m), c.Duration(Rolling15m)}
}

func parseBool(raw string) (bool, error) {
	switch strings.TrimSpace(raw) {
	case "1", "true", "True", "TRUE", "yes", "on":
		return true, nil
	case "0", "false", "False", "FALSE", "no", "off", "":
		return false, nil
	}
	return false, errors.New("not a boolean; use 1, true, yes, on or 0, false, no, off")
}

func parseSeconds(raw, example string) (time.Duration, error) {
	raw = strings.TrimSpace(raw)
	if f, err := strconv.ParseFloat(raw, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) && math.Abs(f) < 1e9 {
		return time.Duration(f * float64(time.Second)), nil
	}
	if d, err := time.ParseDuration(raw); err == nil {
		return d, nil
	}
	return 0, fmt.Errorf("not a duration or number of seconds; use e.g. %s or %ss", example, example)
}

var sizeUnits = []struct {
	suffix string
	mult   int
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}}

func parseSize(raw, example string) (int, error) {
	raw = strings.TrimSpace(raw)
	mult := 1
	for _, u := range sizeUnits {
		if strings.HasSuffix(raw, u.suffix) {
			raw, mult = strings.TrimSpace(strings.TrimSuffix(raw, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt32/int64(mult) {
		return 0, fmt.Errorf("not a size; use bytes or a KiB/MiB/GiB suffix, e.g. %s", example)
	}
	return int(n) * mult, nil
}

func intRange(lo, hi int64, example string) func(string) error {
	return func(raw string) error {
		n, _ := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
		if n < lo || n > hi {
			if hi == math.MaxInt64 {
				return fmt.Errorf("must be at least %d; use e.g. %s", lo, example)
			}
			return fmt.Errorf("must be between %d and %d; use e.g. %s", lo, hi, example)
		}
		return nil
	}
}

func positiveSeconds(example string) func(string) error {
	return func(raw string) error {
		if d, _ := parseSeconds(raw, ""); d <= 0 {
			return fmt.Errorf("must be positive; use e.g. %s or %ss", example, example)
		}
		return nil
	}
}

func listenAddr(allowEmpty bool, example string) func(string) error {
	return func(raw string) error {
		if raw == "" && allowEmpty {
			return nil
		}
		if _, port, err := net.SplitHostPort(raw); err != nil || port == "" {
			return fmt.Errorf("not a host:port address; use e.g. %s", example)
		}
		return nil
	}
}

func ringSize(raw string) error {
	n, _ := parseSize(raw, "")
	if n < 4096 || bits.OnesCount(uint(n)) != 1 {
		return errors.New("ring buffer size must be a power of two of at least 4KiB; use e.g. 8MiB")
	}
	return nil
}

func nonEmpty(example string) func(string) error {
	return func(raw string) error {
		if strings.TrimSpace(raw) == "" {
			return fmt.Errorf("must not be empty; use e.g. %s", example)
		}
		return nil
	}
}
