package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/iostreams"
)

// run executes args in-process and returns the exit code, stdout and stderr.
func run(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	ios, _, out, errOut := iostreams.Test()
	f := NewFactory(ios, BuildInfo{Version: "v1.2.3", Commit: "abc123", Date: "2026-01-02T03:04:05Z"})
	f.LookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	code := Execute(context.Background(), f, args)
	return code, out.String(), errOut.String()
}

func TestVersion(t *testing.T) {
	code, out, errOut := run(t, nil, "version")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, s := range []string{"v1.2.3", "abc123", "2026-01-02T03:04:05Z", runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH} {
		if !strings.Contains(out, s) {
			t.Errorf("version output %q lacks %q", out, s)
		}
	}

	code, out, _ = run(t, nil, "version", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var v Version
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("version -o json: %v\n%s", err, out)
	}
	want := Version{"v1.2.3", "abc123", "2026-01-02T03:04:05Z", runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH}
	if v != want {
		t.Errorf("got %+v, want %+v", v, want)
	}
	if strings.Count(out, "\n") != 1 {
		t.Errorf("version -o json is not one line: %q", out)
	}
	for _, key := range []string{`"version"`, `"commit"`, `"date"`, `"goVersion"`, `"platform"`} {
		if !strings.Contains(out, key) {
			t.Errorf("json lacks key %s", key)
		}
	}
}

// TestVersionFlagAndAliases: --version and the other names users reach for (issue 13).
func TestVersionFlagAndAliases(t *testing.T) {
	code, out, errOut := run(t, nil, "--version")
	if code != 0 || errOut != "" || out != "hubctl v1.2.3 (commit abc123, built 2026-01-02T03:04:05Z)\n" {
		t.Errorf("--version: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	root := NewCmdRoot(NewFactory(nil, BuildInfo{}))
	for alias, want := range map[string]string{"cp": "copy", "delete": "rm"} {
		c, _, err := root.Find([]string{alias})
		if err != nil || c.Name() != want {
			t.Errorf("%s: found %v (%v), want %s", alias, c, err, want)
		}
	}
	// deploy's help lists the verbs that deploy.
	_, deployHelp, _ := run(t, nil, "deploy", "--help")
	for _, verb := range []string{"  up ", "  update ", "  rollback ", "  history ", "  down "} {
		if !strings.Contains(deployHelp, verb) {
			t.Errorf("deploy help does not list %q:\n%s", verb, deployHelp)
		}
	}
}

func TestErrorsAreOneLine(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"version", "-o", "yaml"}, `hubctl: invalid --output "yaml": want json (see 'hubctl version --help')`},
		{[]string{"serv"}, `hubctl: unknown command "serv" for "hubctl"; did you mean "serve"? (see 'hubctl --help')`},
		{[]string{"serve", "--bogus"}, `hubctl: unknown flag: --bogus (see 'hubctl serve --help')`},
		{[]string{"completion", "tcsh"}, `hubctl: invalid argument "tcsh" for "hubctl completion" (see 'hubctl completion --help')`},
		{[]string{"version", "extra"}, `hubctl: unknown command "extra" for "hubctl version" (see 'hubctl version --help')`},
		{[]string{"--config", "/nonexistent/hubctl.yaml", "serve"}, `hubctl: config file: open /nonexistent/hubctl.yaml: no such file or directory`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := run(t, nil, tt.args...)
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			if errOut != tt.want+"\n" {
				t.Errorf("stderr\n got %q\nwant %q", errOut, tt.want+"\n")
			}
		})
	}
}

func TestDebugShowsErrorChain(t *testing.T) {
	code, _, errOut := run(t, nil, "--debug", "--config", "/nonexistent/hubctl.yaml", "serve")
	if code != 1 || !strings.Contains(errOut, "caused by (*fs.PathError)") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestCompletion(t *testing.T) {
	markers := map[string]string{
		"bash":       "bash completion V2 for hubctl",
		"zsh":        "#compdef hubctl",
		"fish":       "fish completion for hubctl",
		"powershell": "Register-ArgumentCompleter",
	}
	for shell, marker := range markers {
		code, out, errOut := run(t, nil, "completion", shell)
		if code != 0 || errOut != "" || !strings.Contains(out, marker) {
			t.Errorf("completion %s: exit %d, stderr %q, output lacks %q", shell, code, errOut, marker)
		}
	}
}

func TestCompletionOfServeFlags(t *testing.T) {
	// The scripts call `hubctl __complete`; check it offers the registered values.
	code, out, _ := run(t, nil, "__complete", "serve", "--log-format", "")
	if code != 0 || !strings.Contains(out, "text\njson\n") {
		t.Fatalf("exit %d, completions %q", code, out)
	}
}

// TestCompletionOfLocationsAndFlagValues: location prefixes and paths after them, and
// the values of --progress, --output and --platform (issue 13).
func TestCompletionOfLocationsAndFlagValues(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "layout"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "image.tar"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"copy", "oci"}, []string{"oci:", "oci-archive:"}},
		{[]string{"cp", "docker-"}, []string{"docker-archive:", "docker-daemon:"}},
		{[]string{"push", "oci:" + dir + "/la"}, []string{"oci:" + dir + "/layout/"}},
		{[]string{"pull", "r/x:1", "docker-archive:" + dir + "/im"}, []string{"docker-archive:" + dir + "/image.tar"}},
		{[]string{"inspect", "oci-"}, []string{"oci-archive:"}},
		{[]string{"copy", "--progress", ""}, []string{"auto", "tty", "plain", "quiet"}},
		{[]string{"mirror", "-o", ""}, []string{"json"}},
		{[]string{"digest", "--platform", ""}, []string{"linux/amd64", "linux/arm64"}},
		{[]string{"token", "create", "x", "--expires", ""}, []string{"never", "12h", "30d"}},
	} {
		code, out, _ := run(t, nil, append([]string{"__complete"}, tt.args...)...)
		lines := strings.Split(out, "\n")
		for _, w := range tt.want {
			if code != 0 || !slices.Contains(lines, w) {
				t.Errorf("complete %q: exit %d, got %q, want %q among them", tt.args, code, out, w)
			}
		}
	}
}

func TestFillBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{
		Main: debug.Module{Version: "v0.3.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "deadbeef"},
			{Key: "vcs.time", Value: "2026-05-06T07:08:09Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	tests := []struct {
		name string
		in   BuildInfo
		bi   *debug.BuildInfo
		want BuildInfo
	}{
		{"ldflags win", BuildInfo{"v1.0.0", "cafe", "2026-01-01"}, bi, BuildInfo{"v1.0.0", "cafe", "2026-01-01"}},
		{"from build info", BuildInfo{}, bi, BuildInfo{"v0.3.0", "deadbeef-dirty", "2026-05-06T07:08:09Z"}},
		{"devel is not a version", BuildInfo{}, &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, BuildInfo{"dev", "unknown", "unknown"}},
		{"nothing known", BuildInfo{}, nil, BuildInfo{"dev", "unknown", "unknown"}},
	}
	for _, tt := range tests {
		if got := fillBuildInfo(tt.in, tt.bi); got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

// serveWith runs `hubctl serve args…` with runF capturing the merged options.
func serveWith(t *testing.T, env map[string]string, args ...string) (*ServeOptions, error) {
	t.Helper()
	ios, _, _, _ := iostreams.Test()
	f := NewFactory(ios, BuildInfo{})
	f.LookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	var got *ServeOptions
	root := NewCmdRoot(f)
	for _, c := range root.Commands() {
		if c.Name() == "serve" {
			root.RemoveCommand(c)
		}
	}
	root.AddCommand(NewCmdServe(f, func(o *ServeOptions) error { got = o; return nil }))
	root.SetArgs(append([]string{"serve"}, args...))
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&bytes.Buffer{})
	if err := root.Execute(); err != nil {
		return nil, err
	}
	if got == nil {
		t.Fatal("runF was not called")
	}
	return got, nil
}

func TestServeConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "hubctl.yaml")
	if err := os.WriteFile(file, []byte("addr: :6000\ndata: /file\nlog:\n  level: warn\n  format: json\nuploads:\n  max_age: 2h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		check func(t *testing.T, o *ServeOptions)
	}{
		{"defaults", nil, nil, func(t *testing.T, o *ServeOptions) {
			eq(t, o.Config.Addr, ":5000")
			eq(t, o.Config.DB.Path, filepath.Join("hubctl-data", "hubctl.db"))
			eq(t, o.Config.MaxManifestSize.String(), "4MiB")
		}},
		{"file via --config", nil, []string{"--config", file}, func(t *testing.T, o *ServeOptions) {
			eq(t, o.Config.Addr, ":6000")
			eq(t, o.Config.Log.Level, "warn")
		}},
		{"unset flags do not mask env", map[string]string{"HUBCTL_CONFIG": file, "HUBCTL_ADDR": ":7000"}, nil, func(t *testing.T, o *ServeOptions) {
			eq(t, o.Config.Addr, ":7000")
			eq(t, o.Config.Data, "/file")
		}},
		{"set flags win", map[string]string{"HUBCTL_CONFIG": file, "HUBCTL_ADDR": ":7000", "HUBCTL_MAX_MANIFEST_SIZE": "1MiB"},
			[]string{"--addr", "127.0.0.1:0", "--data", "/flag", "--max-manifest-size", "8MiB", "--upload-max-age", "30m", "--log-format", "text", "--log-level", "error", "--db", "/db/x.db"},
			func(t *testing.T, o *ServeOptions) {
				eq(t, o.Config.Addr, "127.0.0.1:0")
				eq(t, o.Config.Data, "/flag")
				eq(t, o.Config.MaxManifestSize.String(), "8MiB")
				eq(t, o.Config.Uploads.MaxAge, 30*time.Minute)
				eq(t, o.Config.Log.Format, "text")
				eq(t, o.Config.Log.Level, "error")
				eq(t, o.Config.DB.Path, "/db/x.db")
			}},
		{"gc runs hourly unless told", nil, nil, func(t *testing.T, o *ServeOptions) {
			eq(t, o.Config.GC.Interval, time.Hour)
		}},
		{"--gc-interval 0 turns gc off", map[string]string{"HUBCTL_GC_INTERVAL": "6h"}, []string{"--gc-interval", "0"}, func(t *testing.T, o *ServeOptions) {
			eq(t, o.Config.GC.Interval, time.Duration(0))
		}},
		{"--debug raises the log level", map[string]string{"HUBCTL_LOG_LEVEL": "warn"}, []string{"--debug"}, func(t *testing.T, o *ServeOptions) {
			eq(t, o.Config.Log.Level, "debug")
		}},
		{"--log-level beats --debug", nil, []string{"--debug", "--log-level", "error"}, func(t *testing.T, o *ServeOptions) {
			eq(t, o.Config.Log.Level, "error")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			// --config and --debug are global; cobra accepts them after the subcommand too.
			o, err := serveWith(t, tt.env, args...)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, o)
		})
	}
}

func TestServeRejectsBadValues(t *testing.T) {
	for _, args := range [][]string{
		{"--log-format", "xml"},
		{"--max-manifest-size", "0"},
		{"--upload-max-age", "0s"},
		{"--max-manifest-size", "lots"},
	} {
		if _, err := serveWith(t, nil, args...); err == nil {
			t.Errorf("serve %v: no error", args)
		}
	}
}

func eq[T comparable](t *testing.T, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}
