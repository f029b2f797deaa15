package mirror

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// registries is the source side most tests mirror from.
func registries() map[string]map[string]string {
	return map[string]map[string]string{
		"docker.io/library/alpine": {
			"3.19": digestOf('1'), "3.20": digestOf('2'), "3.9": digestOf('3'), "edge": digestOf('4'), "latest": digestOf('2'),
		},
		"docker.io/library/nginx": {"1.27": digestOf('5'), "1.26": digestOf('6')},
		"ghcr.io/org/app":         {"1.2.3": digestOf('7')},
	}
}

func TestPlan(t *testing.T) {
	eng := newFakeEngine(registries())
	eng.listErr["quay.io/org/broken"] = errors.New("401 unauthorized")
	spec := &Spec{Mirrors: []Mirror{
		{Source: "docker.io/library/alpine", Target: "localhost/alpine",
			Tags: TagFilter{Include: []string{`^3\.`}}, Platforms: []string{"linux/amd64"}},
		{Source: "quay.io/org/broken", Target: "localhost/broken"},
		{Source: "ghcr.io/org/app:1.2.3", Target: "localhost/app"},
		{Source: "ghcr.io/org/app:1.2.3", Target: "localhost/app:stable", Referrers: true},
		{Source: "ghcr.io/org/app@" + digestOf('7'), Target: "localhost/pinned"},
		{Source: "docker.io/library/nginx", Target: "localhost/nginx", Tags: TagFilter{Include: []string{"^2"}}},
	}}
	got, err := Plan(context.Background(), spec, eng, PlanOptions{Jobs: 3})
	if err != nil {
		t.Fatal(err)
	}
	amd64 := []string{"linux/amd64"}
	wantPairs := []Pair{
		{Entry: 0, Source: "docker.io/library/alpine:3.9", Target: "localhost/alpine:3.9", Platforms: amd64},
		{Entry: 0, Source: "docker.io/library/alpine:3.19", Target: "localhost/alpine:3.19", Platforms: amd64},
		{Entry: 0, Source: "docker.io/library/alpine:3.20", Target: "localhost/alpine:3.20", Platforms: amd64},
		{Entry: 2, Source: "ghcr.io/org/app:1.2.3", Target: "localhost/app:1.2.3"},
		{Entry: 3, Source: "ghcr.io/org/app:1.2.3", Target: "localhost/app:stable", Referrers: true},
		{Entry: 4, Source: "ghcr.io/org/app@" + digestOf('7'), Target: "localhost/pinned@" + digestOf('7')},
	}
	if !reflect.DeepEqual(got.Pairs, wantPairs) {
		t.Errorf("pairs:\n got %+v\nwant %+v", got.Pairs, wantPairs)
	}
	if len(got.Entries) != len(spec.Mirrors) {
		t.Fatalf("%d entry results for %d entries", len(got.Entries), len(spec.Mirrors))
	}
	e := got.Entries[1]
	if e.Err == nil || !strings.Contains(e.Err.Error(), "list tags of quay.io/org/broken: 401 unauthorized") {
		t.Errorf("listing failure: %+v", e)
	}
	if a := got.Entries[0]; a.Err != nil || a.Listed != 5 || a.Selected != 3 {
		t.Errorf("alpine entry: %+v", a)
	}
	if n := got.Entries[5]; n.Err != nil || n.Listed != 2 || n.Selected != 0 {
		t.Errorf("nginx entry (filter matches nothing): %+v", n)
	}
	if !got.Failed() {
		t.Error("PlanResult.Failed() = false with a failed listing")
	}
}

func TestPlanConflictingTargets(t *testing.T) {
	eng := newFakeEngine(registries())
	spec := &Spec{Mirrors: []Mirror{
		{Source: "docker.io/library/alpine", Target: "localhost/x", Tags: TagFilter{Include: []string{`^3\.2`}}},
		{Source: "docker.io/library/nginx:1.27", Target: "localhost/x:3.20"},
	}}
	got, err := Plan(context.Background(), spec, eng, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Pairs) != 2 || got.Pairs[0].Err != nil {
		t.Fatalf("pairs: %+v", got.Pairs)
	}
	want := "target localhost/x:3.20 is also written from docker.io/library/alpine:3.20 (mirrors[0])"
	if err := got.Pairs[1].Err; err == nil || err.Error() != want {
		t.Errorf("conflict error = %v, want %s", err, want)
	}
}

func TestPlanRejectsInvalidSpec(t *testing.T) {
	eng := newFakeEngine(registries())
	_, err := Plan(context.Background(), &Spec{Mirrors: []Mirror{{Source: "alpine"}}}, eng, PlanOptions{})
	var se *SpecError
	if !errors.As(err, &se) {
		t.Fatalf("Plan error = %v, want *SpecError", err)
	}
	if len(eng.copyCalls()) != 0 {
		t.Error("an invalid spec reached the engine")
	}
}

func TestPlanCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Plan(ctx, &Spec{Mirrors: []Mirror{{Source: "docker.io/library/alpine", Target: "localhost/a"}}},
		newFakeEngine(registries()), PlanOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Plan error = %v, want context.Canceled", err)
	}
}

func TestJobs(t *testing.T) {
	for in, want := range map[int]int{-1: DefaultJobs, 0: DefaultJobs, 1: 1, 5: 5, MaxJobs + 1: MaxJobs, 1 << 30: MaxJobs} {
		if got := jobs(in); got != want {
			t.Errorf("jobs(%d) = %d, want %d", in, got, want)
		}
	}
}
