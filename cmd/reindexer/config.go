package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"go.yaml.in/yaml/v2"
)

// configFlag names the flag (and, as REINDEXER_CONFIG, the variable) that
// points at a configuration file.
const configFlag = "config"

// configUsage documents --config.
const configUsage = "settings file: YAML, or TOML for a .toml name; keys are flag names (brokers: kafka-1:9092,kafka-2:9092; batch-bytes: 4MiB; session-timeout: 2m); " +
	"a section named after the command (run:, replay:) overrides the top level for that command. " +
	"Precedence: command line > REINDEXER_<FLAG> > file > default"

// registerConfig adds --config to fs. parseFlags reads the file it names.
func registerConfig(fs *flag.FlagSet) {
	fs.String(configFlag, "", configUsage)
}

// setting is one value read from a configuration file.
type setting struct {
	value string
	key   string // the key as written, with its section: "lanes" or "run.lanes"
}

// configFile is a parsed configuration file: flag name -> setting.
type configFile struct {
	path     string
	settings map[string]setting
}

// loadConfig reads path and returns the settings that apply to command
// (top-level keys, overridden by those of the section named command). Other
// commands' sections are ignored.
func loadConfig(path, command string, knownCommands []string) (*configFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	raw := map[string]any{}
	if strings.EqualFold(filepath.Ext(path), ".toml") {
		if _, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&raw); err != nil {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
	} else {
		var y yaml.MapSlice
		if err := yaml.UnmarshalStrict(data, &y); err != nil {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
		raw, err = yamlMap(y)
		if err != nil {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	cf := &configFile{path: path, settings: map[string]setting{}}
	sections := map[string]bool{}
	for _, c := range knownCommands {
		sections[c] = true
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var nested map[string]any
	for _, k := range keys {
		v := raw[k]
		if m, ok := v.(map[string]any); ok && sections[k] {
			if k == command {
				nested = m
			}
			continue
		}
		if err := cf.add(k, k, v); err != nil {
			return nil, err
		}
	}
	for k, v := range nested {
		if err := cf.add(k, command+"."+k, v); err != nil {
			return nil, err
		}
	}
	return cf, nil
}

// add records one key; name is the flag it sets.
func (cf *configFile) add(name, key string, v any) error {
	s, err := settingString(v)
	if err != nil {
		return fmt.Errorf("config file %s: key %s: %w", cf.path, key, err)
	}
	cf.settings[strings.ReplaceAll(name, "_", "-")] = setting{value: s, key: key}
	return nil
}

// yamlMap turns a YAML mapping into map[string]any, with nested mappings
// (command sections) converted too.
func yamlMap(y yaml.MapSlice) (map[string]any, error) {
	out := map[string]any{}
	for _, it := range y {
		k, ok := it.Key.(string)
		if !ok {
			return nil, fmt.Errorf("key %v is not a string", it.Key)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("key %s appears twice", k)
		}
		if m, ok := it.Value.(yaml.MapSlice); ok {
			sub, err := yamlMap(m)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = sub
			continue
		}
		out[k] = it.Value
	}
	return out, nil
}

// settingString renders a YAML or TOML value the way it would be written on
// the command line: lists become comma-separated.
func settingString(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return strconv.FormatInt(int64(x), 10), nil
		}
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case time.Time: // TOML datetimes, YAML timestamps
		return x.Format(time.RFC3339Nano), nil
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			s, err := settingString(e)
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	}
	return "", fmt.Errorf("unsupported value %v (%T): use a string, number, boolean or list", v, v)
}

// applyConfig sets every flag of fs not in skip from cf. A key that names
// no flag of this command is an error (a typo must not be ignored).
func applyConfig(fs *flag.FlagSet, cf *configFile, skip map[string]bool) error {
	names := make([]string, 0, len(cf.settings))
	for n := range cf.settings {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		s := cf.settings[name]
		f := fs.Lookup(name)
		if f == nil || name == configFlag {
			return usageError{fmt.Errorf("config file %s: key %s is not a setting of reindexer %s", cf.path, s.key, fs.Name())}
		}
		if skip[name] {
			continue
		}
		if err := fs.Set(name, s.value); err != nil {
			return usageError{fmt.Errorf("invalid value %q for setting %s (from config file %s, key %s): %v", redactSetting(name, s.value), name, cf.path, s.key, err)}
		}
		markSource(fs, name, fmt.Sprintf("config file %s, key %s", cf.path, s.key))
	}
	return nil
}

// redactSetting hides the value of settings that hold secrets.
func redactSetting(name, value string) string {
	if strings.Contains(name, "password") || strings.Contains(name, "token") || strings.Contains(name, "secret") {
		return "<redacted>"
	}
	return value
}

// Byte sizes.
const (
	kib = 1 << 10
	mib = 1 << 20
	gib = 1 << 30
	tib = 1 << 40
)

// parseBytes parses a byte size: a plain number of bytes, or a number with
// a unit: B, KB/MB/GB/TB (powers of 1000), KiB/MiB/GiB/TiB (powers of
// 1024); K, M, G, T alone mean the binary units. "1.5GiB" and "4 MiB" work.
func parseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.') })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.TrimSpace(t[i:])
	}
	if num == "" {
		return 0, fmt.Errorf("%q is not a size (e.g. 4194304, 4MiB, 512KiB, 1GB)", s)
	}
	mult := map[string]float64{
		"": 1, "b": 1,
		"k": kib, "kib": kib, "kb": 1e3,
		"m": mib, "mib": mib, "mb": 1e6,
		"g": gib, "gib": gib, "gb": 1e9,
		"t": tib, "tib": tib, "tb": 1e12,
	}[strings.ToLower(unit)]
	if mult == 0 {
		return 0, fmt.Errorf("%q: unknown unit %q (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)", s, unit)
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a size: %w", s, err)
		}
		if n > math.MaxInt64/int64(mult) {
			return 0, fmt.Errorf("%q is too large", s)
		}
		return n * int64(mult), nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size: %w", s, err)
	}
	v := f * mult
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int64(v), nil
}

// formatBytes renders n with the largest binary unit that divides it.
func formatBytes(n int64) string {
	for _, u := range []struct {
		size int64
		name string
	}{{tib, "TiB"}, {gib, "GiB"}, {mib, "MiB"}, {kib, "KiB"}} {
		if n != 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// byteSize is an int flag that accepts units (4MiB, 512KiB, 1GB) as well as
// plain numbers of bytes.
type byteSize int

// Set parses a size.
func (b *byteSize) Set(s string) error {
	n, err := parseBytes(s)
	if err != nil {
		return err
	}
	if n > math.MaxInt {
		return fmt.Errorf("%q is too large", s)
	}
	*b = byteSize(n)
	return nil
}

// String renders the size with a unit when one divides it.
func (b *byteSize) String() string {
	if b == nil {
		return "0"
	}
	return formatBytes(int64(*b))
}

// Get returns the size in bytes.
func (b *byteSize) Get() any { return int(*b) }

// sizeVar defines a byte-size flag stored in p.
func sizeVar(fs *flag.FlagSet, p *int, name string, def int, usage string) {
	*p = def
	fs.Var((*byteSize)(p), name, usage+" (bytes, or with a unit: 512KiB, 4MiB, 1GB)")
}

// parseDuration is time.ParseDuration that also accepts days: "7d",
// "1d12h", "1.5d".
func parseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexByte(t, 'd')
	if i < 0 {
		return time.ParseDuration(t)
	}
	neg := strings.HasPrefix(t, "-")
	days, err := strconv.ParseFloat(strings.TrimPrefix(t[:i], "-"), 64)
	if err != nil || strings.HasPrefix(t[:i], "+") {
		return 0, fmt.Errorf("invalid duration %q (e.g. 90m, 36h, 7d, 1d12h)", s)
	}
	d := time.Duration(days * float64(24*time.Hour))
	if rest := t[i+1:]; rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil || r < 0 {
			return 0, fmt.Errorf("invalid duration %q (e.g. 90m, 36h, 7d, 1d12h)", s)
		}
		d += r
	}
	if neg {
		d = -d
	}
	return d, nil
}

// dayDuration wraps a duration flag so it also accepts days (7d).
type dayDuration struct{ flag.Value }

// Set parses s with days allowed and passes it on.
func (d dayDuration) Set(s string) error {
	v, err := parseDuration(s)
	if err != nil {
		return errors.New("parse error: " + err.Error())
	}
	return d.Value.Set(v.String())
}

// acceptDays makes every duration flag of fs accept days.
func acceptDays(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		if g, ok := f.Value.(flag.Getter); ok {
			if _, isDur := g.Get().(time.Duration); isDur {
				f.Value = dayDuration{f.Value}
			}
		}
	})
}

// applyConfigFlag reads the file named by --config (or REINDEXER_CONFIG,
// already applied to the flag) and sets every flag not in set from it.
func applyConfigFlag(fs *flag.FlagSet, set map[string]bool) error {
	f := fs.Lookup(configFlag)
	if f == nil || f.Value.String() == "" {
		return nil
	}
	// The commands whose sections a configuration file may hold.
	sections := []string{"run", "replay", "parity", "probe", "cutover"}
	cf, err := loadConfig(f.Value.String(), fs.Name(), sections)
	if err != nil {
		return usageError{fmt.Errorf("flag --%s: %w", configFlag, err)}
	}
	return applyConfig(fs, cf, set)
}

// sourcedValue marks a flag whose value came from the environment or a
// configuration file, so that a later complaint about it can say where.
type sourcedValue struct {
	flag.Value
	source string // e.g. "REINDEXER_LANES" or "config file /etc/r.yaml, key run.lanes"
}

// markSource records that flag name of fs got its value from source.
func markSource(fs *flag.FlagSet, name, source string) {
	if f := fs.Lookup(name); f != nil {
		if sv, ok := f.Value.(sourcedValue); ok {
			f.Value = sv.Value
		}
		f.Value = sourcedValue{Value: f.Value, source: source}
	}
}

// withSource adds to a usage error about a flag set from the environment
// or a configuration file where that value came from, e.g.
// "flag --lanes must be positive, got 0 (set by config file r.yaml, key lanes)".
func withSource(fs *flag.FlagSet, err error) error {
	var ue usageError
	if !errors.As(err, &ue) {
		return err
	}
	flagInMessage := regexp.MustCompile(`--([a-z0-9][a-z0-9-]*)`)
	for _, m := range flagInMessage.FindAllStringSubmatch(ue.Error(), -1) {
		if f := fs.Lookup(m[1]); f != nil {
			if sv, ok := f.Value.(sourcedValue); ok && !strings.Contains(ue.Error(), sv.source) {
				return usageError{fmt.Errorf("%w (set by %s)", ue.err, sv.source)}
			}
		}
	}
	return err
}
