package config

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Size is a byte count that reads as a plain number or with a unit ("4MiB", "512 KiB",
// "1GB"), so limits in YAML, environment and flags are written the way people think of
// them. It implements pflag.Value and encoding.TextUnmarshaler.
type Size int64

var sizeRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([0-9]+)\s*([A-Za-z]*)$`) })

// sizeUnits are the accepted suffixes, lower-cased. Decimal and binary units are both
// accepted and kept distinct: "MB" is 10^6, "MiB" is 2^20.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// ParseSize parses a byte count such as "4194304", "4MiB" or "4 MB".
func ParseSize(s string) (Size, error) {
	m := sizeRe().FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("invalid size %q: want a number with an optional unit (B, KB, MB, GB, KiB, MiB, GiB, …)", s)
	}
	mult, ok := sizeUnits[strings.ToLower(m[2])]
	if !ok {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q", s, m[2])
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return Size(n * mult), nil
}

// String renders the size in the largest binary unit that represents it exactly, so it
// parses back to the same value.
func (s Size) String() string {
	for _, u := range []struct {
		name string
		n    int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if s != 0 && int64(s)%u.n == 0 {
			return strconv.FormatInt(int64(s)/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// Set implements pflag.Value.
func (s *Size) Set(v string) error {
	n, err := ParseSize(v)
	if err != nil {
		return err
	}
	*s = n
	return nil
}

// Type implements pflag.Value; it names the value in --help.
func (s *Size) Type() string { return "size" }

// UnmarshalText lets YAML (and anything else using encoding.TextUnmarshaler) read sizes.
func (s *Size) UnmarshalText(b []byte) error { return s.Set(string(b)) }

// MarshalText writes the size as String does.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
