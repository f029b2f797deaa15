package docker

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/workflow/executor"
)

func TestRegistryAuthOnlyForItsRegistry(t *testing.T) {
	auth := &executor.RegistryAuth{Registry: "127.0.0.1:5000", Username: "job", Password: "tok"}
	for _, tc := range []struct {
		ref  string
		want bool
	}{
		{"127.0.0.1:5000/ns/app:1", true},
		{"127.0.0.1:5000/app@sha256:" + strings.Repeat("a", 64), true},
		{"127.0.0.1:5001/ns/app:1", false},
		{"busybox", false},                       // docker.io
		{"docker.io/library/busybox", false},     //
		{"127.0.0.1.evil.example:5000/x", false}, // a look-alike host
		{"evil.example/127.0.0.1/x", false},      // the host in the path
	} {
		got, err := registryAuth(tc.ref, auth)
		if err != nil {
			t.Fatalf("%s: %v", tc.ref, err)
		}
		if (got != "") != tc.want {
			t.Errorf("%s: credentials sent = %v, want %v", tc.ref, got != "", tc.want)
		}
		if got == "" {
			continue
		}
		raw, err := base64.URLEncoding.DecodeString(got)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]string
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		if m["username"] != "job" || m["password"] != "tok" || m["serveraddress"] != "127.0.0.1:5000" {
			t.Errorf("%s: X-Registry-Auth = %s", tc.ref, raw)
		}
	}
	if got, err := registryAuth("busybox", nil); got != "" || err != nil {
		t.Errorf("no credentials: %q, %v", got, err)
	}
	if _, err := registryAuth("bad@@ref", auth); err == nil {
		t.Error("an invalid reference was accepted")
	}
	// The hub's job token is a bearer token, passed as docker's registrytoken (no
	// token service would exchange it), and only to the hub.
	jobAuth := &executor.RegistryAuth{Registry: "127.0.0.1:5000", Token: "jwt.of.job"}
	got, err := registryAuth("127.0.0.1:5000/ns/tools:1", jobAuth)
	raw, _ := base64.URLEncoding.DecodeString(got)
	var m map[string]string
	if err != nil || json.Unmarshal(raw, &m) != nil || m["registrytoken"] != "jwt.of.job" || m["password"] != "" {
		t.Errorf("job token: %s, %v", raw, err)
	}
	if got, _ := registryAuth("example.com/ns/tools:1", jobAuth); got != "" {
		t.Error("the job token was sent to another registry")
	}
}

func TestMergeEnvKeepsOrderLastWins(t *testing.T) {
	got := envList(mergeEnv(
		[]executor.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "1"}},
		[]executor.EnvVar{{Name: "B", Value: "2"}, {Name: "C", Value: "2"}},
		[]executor.EnvVar{{Name: "A", Value: "3"}},
	))
	want := []string{"A=3", "B=2", "C=2"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("merged env = %v, want %v", got, want)
	}
}

func TestSkipWriter(t *testing.T) {
	for _, skip := range []int64{0, 1, 3, 4, 5, 9, 100} {
		var buf bytes.Buffer
		w := &skipWriter{w: &buf, skip: skip}
		for _, chunk := range []string{"abc", "d", "", "efghi"} {
			if n, err := w.Write([]byte(chunk)); err != nil || n != len(chunk) {
				t.Fatalf("write: %d, %v", n, err)
			}
		}
		want := "abcdefghi"
		if skip < int64(len(want)) {
			want = want[skip:]
		} else {
			want = ""
		}
		if buf.String() != want {
			t.Errorf("skip %d: %q, want %q", skip, buf.String(), want)
		}
	}
}

func TestBadSpecs(t *testing.T) {
	e := &Executor{} // no engine: every case fails before talking to one
	ctx := context.Background()
	ok := &executor.JobSpec{JobID: "j1", Image: "img"}
	for _, tc := range []struct {
		name string
		job  *executor.JobSpec
		step *executor.StepSpec
		want string
	}{
		{"no job", nil, &executor.StepSpec{}, "no job"},
		{"empty id", &executor.JobSpec{}, &executor.StepSpec{}, "job id"},
		{"id with slash", &executor.JobSpec{JobID: "a/b"}, &executor.StepSpec{}, "job id"},
		{"id with space", &executor.JobSpec{JobID: "a b"}, &executor.StepSpec{}, "job id"},
		{"id with dot-dot start", &executor.JobSpec{JobID: "..x"}, &executor.StepSpec{}, "job id"},
		{"service name", &executor.JobSpec{JobID: "j", Services: []executor.Service{{Name: "Db_1", Image: "x"}}}, &executor.StepSpec{}, "service name"},
		{"service image", &executor.JobSpec{JobID: "j", Services: []executor.Service{{Name: "db"}}}, &executor.StepSpec{}, "no image"},
		{"no step", ok, nil, "no step"},
		{"negative index", ok, &executor.StepSpec{Index: -1}, "negative"},
		{"no image", &executor.JobSpec{JobID: "j"}, &executor.StepSpec{}, "no image"},
		{"workdir escapes", ok, &executor.StepSpec{Workdir: "../etc"}, "leaves the workspace"},
		{"relative workspace", &executor.JobSpec{JobID: "j", Image: "i", WorkspaceDir: "ws"}, &executor.StepSpec{}, "absolute"},
		{"unknown secret", &executor.JobSpec{JobID: "j", Image: "i", Secrets: map[string]string{"A": "hush"}}, &executor.StepSpec{Secrets: []string{"B"}}, `secret "B"`},
		{"env name with =", &executor.JobSpec{JobID: "j", Image: "i", Env: []executor.EnvVar{{Name: "PATH=/evil:", Value: "x"}}}, &executor.StepSpec{}, "name"},
		{"empty env name", ok, &executor.StepSpec{Env: []executor.EnvVar{{Value: "x"}}}, "empty"},
		{"NUL in a secret", &executor.JobSpec{JobID: "j", Image: "i", Secrets: map[string]string{"S": "hush\x00"}}, &executor.StepSpec{Secrets: []string{"S"}}, "NUL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := e.StartStep(ctx, tc.job, tc.step)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("StartStep: %v, want an error with %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hush") {
				t.Errorf("the error shows a secret value: %v", err)
			}
		})
	}
	if _, err := e.TailStep(ctx, ok, &executor.StepSpec{}, -5); err == nil {
		t.Error("negative offset accepted")
	}
}
