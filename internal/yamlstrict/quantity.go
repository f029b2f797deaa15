package yamlstrict

import (
	"strconv"
	"strings"
)

// MilliCPU reads a CPU amount as Kubernetes writes it ("500m", "1.5", "2") in
// thousandths of a core; -1 when s is not one.
func MilliCPU(s string) int64 {
	if m, ok := strings.CutSuffix(s, "m"); ok {
		v, err := strconv.ParseInt(m, 10, 64)
		if err != nil {
			return -1
		}
		return v
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v != v || v > 1e6 {
		return -1
	}
	return int64(v * 1000)
}

var byteUnits = []struct {
	suffix string
	mult   int64
}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}}

// Bytes reads a memory amount as Kubernetes writes it ("512Mi", "2Gi", "256M", a
// plain number of bytes); -1 when s is not one or is beyond 1 PiB.
func Bytes(s string) int64 {
	mult := int64(1)
	for _, u := range byteUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = n, u.mult
			break
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || v > (1<<50)/mult {
		return -1
	}
	return v * mult
}
