package ocilayout

import (
	"strings"
	"testing"
)

const testHex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func TestParseRef(t *testing.T) {
	tests := []struct {
		arg      string
		windows  bool
		wantPath string
		wantRef  string
	}{
		{arg: "dir", wantPath: "dir"},
		{arg: "./dir", wantPath: "./dir"},
		{arg: "dir:v1", wantPath: "dir", wantRef: "v1"},
		{arg: "./dir:v1.2-rc_3", wantPath: "./dir", wantRef: "v1.2-rc_3"},
		{arg: "/abs/dir:v1", wantPath: "/abs/dir", wantRef: "v1"},
		{arg: "/abs/dir", wantPath: "/abs/dir"},
		{arg: "dir:", wantPath: "dir"},
		{arg: "", wantPath: ""},
		{arg: "a:b:c", wantPath: "a:b", wantRef: "c"},
		// A colon followed by a path separator is part of the path.
		{arg: "/tmp/a:b/dir", wantPath: "/tmp/a:b/dir"},
		{arg: "/tmp/a:/dir", wantPath: "/tmp/a:/dir"},
		{arg: "/tmp/a:b/dir:v1", wantPath: "/tmp/a:b/dir", wantRef: "v1"},
		// Digests, by @ as in image references and by colon.
		{arg: "dir@sha256:" + testHex, wantPath: "dir", wantRef: "sha256:" + testHex},
		{arg: "/abs/dir@sha256:" + testHex, wantPath: "/abs/dir", wantRef: "sha256:" + testHex},
		{arg: "dir:sha256:" + testHex, wantPath: "dir", wantRef: "sha256:" + testHex},
		{arg: "my@dir:v1", wantPath: "my@dir", wantRef: "v1"},
		{arg: "user@host/dir", wantPath: "user@host/dir"},
		{arg: "dir@sha256:short", wantPath: "dir", wantRef: "sha256:short"},
		// On Unix a one-letter directory is just that.
		{arg: "C:v1", wantPath: "C", wantRef: "v1"},
		{arg: `C:\img`, wantPath: "C", wantRef: `\img`},
		// Windows: drive letters and backslashes.
		{arg: `C:\img`, windows: true, wantPath: `C:\img`},
		{arg: `C:\img:v1`, windows: true, wantPath: `C:\img`, wantRef: "v1"},
		{arg: `C:/img:v1`, windows: true, wantPath: `C:/img`, wantRef: "v1"},
		{arg: `C:img`, windows: true, wantPath: `C:img`},
		{arg: `C:`, windows: true, wantPath: `C:`},
		{arg: `D:\a:b\img`, windows: true, wantPath: `D:\a:b\img`},
		{arg: `D:\img@sha256:` + testHex, windows: true, wantPath: `D:\img`, wantRef: "sha256:" + testHex},
		{arg: `D:\img:sha256:` + testHex, windows: true, wantPath: `D:\img`, wantRef: "sha256:" + testHex},
	}
	for _, tt := range tests {
		name := tt.arg
		if tt.windows {
			name = "windows/" + name
		}
		t.Run(name, func(t *testing.T) {
			path, ref := parseRef(tt.arg, tt.windows)
			if path != tt.wantPath || ref != tt.wantRef {
				t.Errorf("parseRef(%q, windows=%v) = (%q, %q), want (%q, %q)", tt.arg, tt.windows, path, ref, tt.wantPath, tt.wantRef)
			}
		})
	}
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"dir", "dir:v1", "/a:b/c:d", "dir@sha256:" + testHex, "dir:sha256:" + testHex, `C:\x:y`, "::", "@", "a@b:c"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, arg string, windows bool) {
		path, ref := parseRef(arg, windows)
		switch {
		case ref == "":
			if path != arg && path+":" != arg {
				t.Fatalf("parseRef(%q) = (%q, %q): path is not the argument", arg, path, ref)
			}
		case path+":"+ref == arg:
		case path+"@"+ref == arg && isDigestLike(ref):
		default:
			t.Fatalf("parseRef(%q) = (%q, %q): does not split the argument", arg, path, ref)
		}
		if strings.Contains(ref, "/") || (windows && strings.Contains(ref, `\`)) {
			t.Fatalf("parseRef(%q) = (%q, %q): REF holds a path separator", arg, path, ref)
		}
		if windows && len(arg) >= 2 && arg[1] == ':' && isASCIILetter(arg[0]) && len(path) < 2 && ref != "" {
			t.Fatalf("parseRef(%q) = (%q, %q): split at the drive letter", arg, path, ref)
		}
	})
}

func isASCIILetter(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }

func TestCheckTag(t *testing.T) {
	tests := []struct {
		tag string
		ok  bool
	}{
		{"latest", true},
		{"v1.2.3-rc.1", true},
		{"1.0_", true},                // a registry tag, outside the ref.name grammar
		{"library/alpine:3.20", true}, // a ref.name, outside the tag grammar
		{"", false},
		{"-x", false},
		{"has space", false},
		{"sha256:" + testHex, false},
		{strings.Repeat("a", 256), false},
	}
	for _, tt := range tests {
		if err := checkTag(tt.tag); (err == nil) != tt.ok {
			t.Errorf("checkTag(%q) = %v, want ok=%v", tt.tag, err, tt.ok)
		}
	}
}
