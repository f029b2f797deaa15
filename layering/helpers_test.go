package layering

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"runtime"
)

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func setProcs(n int) int { return runtime.GOMAXPROCS(n) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
