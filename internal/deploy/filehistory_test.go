package deploy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFileHistory: numbers count up, a record a killed deploy left running is
// marked failed by the next Begin, the file holds no secret, and it is private.
func TestFileHistory(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "state")
	h := NewFileHistory(dir, nil)
	holder := LockHolder{By: "me", Host: "laptop", PID: 1}
	r1, err := h.Begin(ctx, Record{Service: "web", SpecYAML: "service: {name: web}", Digests: map[string]string{DigestKey: "x@sha256:1"}}, holder)
	if err != nil || r1.Number != 1 {
		t.Fatalf("begin 1: %+v %v", r1, err)
	}
	if err := h.Finish(ctx, "web", 1, OutcomeSucceeded, ""); err != nil {
		t.Fatal(err)
	}
	r2, err := h.Begin(ctx, Record{Service: "web"}, holder)
	if err != nil || r2.Number != 2 {
		t.Fatalf("begin 2: %+v %v", r2, err)
	}
	// deploy 2 is "killed": a new FileHistory (a new hubctl) begins deploy 3.
	h = NewFileHistory(dir, nil)
	r3, err := h.Begin(ctx, Record{Service: "web"}, holder)
	if err != nil || r3.Number != 3 {
		t.Fatalf("begin 3: %+v %v", r3, err)
	}
	if err := h.Finish(ctx, "web", 3, OutcomeFailed, "unhealthy"); err != nil {
		t.Fatal(err)
	}
	recs, err := h.List(ctx, "web")
	if err != nil || len(recs) != 3 {
		t.Fatalf("list: %+v %v", recs, err)
	}
	if recs[0].Number != 3 || recs[0].Outcome != OutcomeFailed || recs[0].Error != "unhealthy" {
		t.Errorf("newest = %+v", recs[0])
	}
	if recs[1].Outcome != OutcomeFailed || !strings.Contains(recs[1].Error, "interrupted") {
		t.Errorf("the killed deploy = %+v", recs[1])
	}
	if recs[2].Outcome != OutcomeSucceeded || recs[2].Finished.IsZero() {
		t.Errorf("oldest = %+v", recs[2])
	}
	if _, err := h.Get(ctx, "web", 9); !errors.Is(err, ErrNoRecord) {
		t.Errorf("get 9: %v", err)
	}
	st, err := os.Stat(filepath.Join(dir, "web.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("state file: %v %v", st, err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
	// A service name that would escape the directory is refused.
	if _, err := h.Begin(ctx, Record{Service: "../x"}, holder); err == nil {
		t.Error("a service named ../x was recorded")
	}
	if _, err := h.List(ctx, "../../etc/passwd"); err == nil {
		t.Error("listed ../../etc/passwd")
	}
}
