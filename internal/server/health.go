package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"
)

// readyTimeout bounds each readiness probe so a hung store makes /readyz fail fast
// instead of hanging the orchestrator's probe.
const readyTimeout = 2 * time.Second

// Check is one dependency /readyz probes, such as the blob store or the database.
type Check struct {
	Name string
	Ping func(ctx context.Context) error
}

// Readiness is the body of /readyz.
type Readiness struct {
	// Status is "ready" or "unavailable".
	Status string `json:"status"`
	// Checks maps each dependency to "ok" or "failed".
	Checks map[string]string `json:"checks"`
	// Failed names the dependencies that did not answer, sorted.
	Failed []string `json:"failed,omitempty"`
}

// healthz answers liveness: the process serves HTTP. It checks no dependency, so an
// orchestrator does not restart a healthy process because the database blipped.
func healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok\n"))
}

// readyz answers readiness: every store answers its ping within readyTimeout. Errors are
// logged, not sent, because they may name internal paths or hosts.
func readyz(log *slog.Logger, checks []Check) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		res := Readiness{Status: "ready", Checks: map[string]string{}}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, c := range checks {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
				defer cancel()
				err := c.Ping(ctx)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					log.WarnContext(r.Context(), "readiness check failed", "check", c.Name, "err", err)
					res.Checks[c.Name] = "failed"
					res.Failed = append(res.Failed, c.Name)
					return
				}
				res.Checks[c.Name] = "ok"
			})
		}
		wg.Wait()
		status := http.StatusOK
		if len(res.Failed) > 0 {
			sort.Strings(res.Failed)
			res.Status = "unavailable"
			status = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(res)
	}
}
