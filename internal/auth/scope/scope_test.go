package scope

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in    string
		want  Scope
		known bool
		err   bool
	}{
		{in: "repository:samalba/my-app:pull,push", want: Scope{Type: "repository", Name: "samalba/my-app", Actions: []string{"pull", "push"}}, known: true},
		{in: "repository:a:push,pull,push", want: Scope{Type: "repository", Name: "a", Actions: []string{"pull", "push"}}, known: true},
		{in: "repository(plugin):x:pull", want: Scope{Type: "repository", Class: "plugin", Name: "x", Actions: []string{"pull"}}, known: true},
		{in: "registry:catalog:*", want: Scope{Type: "registry", Name: "catalog", Actions: []string{"*"}}, known: true},
		{in: "repository:a/b/c:delete,*", want: Scope{Type: "repository", Name: "a/b/c", Actions: []string{"*", "delete"}}, known: true},
		// Unknown types and actions parse; they are simply never granted.
		{in: "thing:x:y", want: Scope{Type: "thing", Name: "x", Actions: []string{"y"}}},
		{in: "thing:host:5000/x:pull", want: Scope{Type: "thing", Name: "host:5000/x", Actions: []string{"pull"}}},
		{in: "repository:a:frobnicate", want: Scope{Type: "repository", Name: "a", Actions: []string{"frobnicate"}}, known: true},

		{in: "", err: true},
		{in: "repository", err: true},
		{in: "repository:a", err: true},
		{in: "repository:a:", err: true},
		{in: "repository::pull", err: true},
		{in: ":a:pull", err: true},
		{in: "repository:A:pull", err: true},
		{in: "repository:a/../b:pull", err: true},
		{in: "repository:/a:pull", err: true},
		{in: "repository:a/:pull", err: true},
		{in: "repository:host:5000/a:pull", err: true},
		{in: "repository:team/*:pull", err: true},
		{in: "repository:*:pull", err: true},
		{in: "repository:a:pull,,push", err: true},
		{in: "repository:a:Pull", err: true},
		{in: "repository:a:pull push", err: true},
		{in: "Repository:a:pull", err: true},
		{in: "repository(:a:pull", err: true},
		{in: "repository():a:pull", err: true},
		{in: "repository(Plugin):a:pull", err: true},
		{in: "thing:a b:pull", err: true},
		{in: "thing::pull", err: true},
		{in: "repository:" + strings.Repeat("a", 256) + ":pull", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.err {
				if err == nil {
					t.Fatalf("Parse(%q) = %+v, want an error", tt.in, got)
				}
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("Parse(%q) error %v does not wrap ErrInvalid", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if got.Known() != tt.known {
				t.Fatalf("Parse(%q).Known() = %v, want %v", tt.in, got.Known(), tt.known)
			}
		})
	}
}

func TestParsePattern(t *testing.T) {
	tests := []struct {
		in   string
		name string
		err  bool
	}{
		{in: "repository:team/*:pull", name: "team/*"},
		{in: "repository:team/sub/*:pull,push", name: "team/sub/*"},
		{in: "repository:*:pull", name: "*"},
		{in: "repository:team/app:pull", name: "team/app"},
		{in: "registry:catalog:*", name: "catalog"},
		{in: "repository:/*:pull", err: true},
		{in: "repository:team/**:pull", err: true},
		{in: "repository:team*:pull", err: true},
		{in: "repository:*/app:pull", err: true},
		{in: "repository:team/*/app:pull", err: true},
	}
	for _, tt := range tests {
		got, err := ParsePattern(tt.in)
		if tt.err {
			if err == nil {
				t.Errorf("ParsePattern(%q) = %+v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePattern(%q): %v", tt.in, err)
			continue
		}
		if got.Name != tt.name {
			t.Errorf("ParsePattern(%q).Name = %q, want %q", tt.in, got.Name, tt.name)
		}
	}
}

func TestParseAll(t *testing.T) {
	got, err := ParseAll([]string{
		"repository:a:pull repository:b:push",
		"repository:a:push",
		"  registry:catalog:*  ",
		"repository(plugin):a:pull",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Scope{
		{Type: "repository", Name: "a", Actions: []string{"pull", "push"}},
		{Type: "repository", Name: "b", Actions: []string{"push"}},
		{Type: "registry", Name: "catalog", Actions: []string{"*"}},
		{Type: "repository", Class: "plugin", Name: "a", Actions: []string{"pull"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseAll = %+v\nwant %+v", got, want)
	}
	if got, err := ParseAll(nil); err != nil || len(got) != 0 {
		t.Fatalf("ParseAll(nil) = %v, %v", got, err)
	}
	if _, err := ParseAll([]string{"repository:a:pull repository:B:pull"}); err == nil {
		t.Fatal("ParseAll accepted an invalid scope in a space-separated parameter")
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		in   Scope
		want string
	}{
		{Scope{Type: "repository", Name: "a/b", Actions: []string{"push", "pull", "push"}}, "repository:a/b:pull,push"},
		{Scope{Type: "repository", Class: "plugin", Name: "x", Actions: []string{"pull"}}, "repository(plugin):x:pull"},
		{Scope{Type: "registry", Name: "catalog", Actions: []string{"*"}}, "registry:catalog:*"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.in, got, tt.want)
		}
	}
	// String must not reorder the caller's slice.
	s := Scope{Type: "repository", Name: "a", Actions: []string{"push", "pull"}}
	_ = s.String()
	if s.Actions[0] != "push" {
		t.Fatalf("String modified Actions: %v", s.Actions)
	}
}

func TestAccessConversion(t *testing.T) {
	sc := Scope{Type: "repository", Class: "plugin", Name: "a/b", Actions: []string{"push", "pull"}}
	a := sc.Access()
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"type":"repository","class":"plugin","name":"a/b","actions":["pull","push"]}`; string(b) != want {
		t.Fatalf("json = %s, want %s", b, want)
	}
	back := a.Scope()
	if want := (Scope{Type: "repository", Class: "plugin", Name: "a/b", Actions: []string{"pull", "push"}}); !reflect.DeepEqual(back, want) {
		t.Fatalf("round trip = %+v, want %+v", back, want)
	}
	// A grant of nothing still carries an actions array, as the spec's claim does.
	b, _ = json.Marshal(Scope{Type: "repository", Name: "a"}.Access())
	if want := `{"type":"repository","name":"a","actions":[]}`; string(b) != want {
		t.Fatalf("json = %s, want %s", b, want)
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"team/app", "team/app", true},
		{"team/app", "team/app2", false},
		{"team/app", "team/app/x", false},
		{"team/*", "team/app", true},
		{"team/*", "team/app/deep/er", true},
		{"team/*", "team", false},
		{"team/*", "team/", false},
		{"team/*", "teammate/app", false},
		{"team/*", "other/team/app", false},
		{"a/b/*", "a/b/c", true},
		{"a/b/*", "a/bc", false},
		{"*", "anything/at/all", true},
		{"*", "x", true},
	}
	for _, tt := range tests {
		if got := Match(Scope{Type: "repository", Name: tt.pattern}, tt.name); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestIntersect(t *testing.T) {
	asked := func(acts ...string) Scope { return Scope{Type: "repository", Name: "a", Actions: acts} }
	tests := []struct {
		asked   Scope
		allowed []string
		want    []string
	}{
		{asked("pull", "push"), []string{"pull"}, []string{"pull"}},
		{asked("pull", "push"), []string{"pull", "push", "delete"}, []string{"pull", "push"}},
		{asked("pull", "push"), nil, nil},
		{asked("pull", "push", "delete"), []string{"*"}, []string{"delete", "pull", "push"}},
		{asked("*"), []string{"*"}, []string{"*"}},
		{asked("*"), []string{"pull", "push", "delete"}, nil},
		{asked("frobnicate", "pull"), []string{"*"}, []string{"pull"}},
		{asked("frobnicate"), []string{"frobnicate"}, nil},
	}
	for _, tt := range tests {
		got := Intersect(tt.asked, tt.allowed)
		if !reflect.DeepEqual(got.Actions, tt.want) {
			t.Errorf("Intersect(%v, %v) = %v, want %v", tt.asked.Actions, tt.allowed, got.Actions, tt.want)
		}
		if got.Name != tt.asked.Name || got.Type != tt.asked.Type {
			t.Errorf("Intersect changed the resource: %+v", got)
		}
	}
}

func TestRestrict(t *testing.T) {
	var patterns []Scope
	for _, s := range []string{"repository:team/*:pull", "repository:team/app:push", "registry:catalog:*", "repository(plugin):p:pull"} {
		p, err := ParsePattern(s)
		if err != nil {
			t.Fatal(err)
		}
		patterns = append(patterns, p)
	}
	tests := []struct {
		asked string
		want  []string
	}{
		{"repository:team/app:pull,push,delete", []string{"pull", "push"}},
		{"repository:team/other:pull,push", []string{"pull"}},
		{"repository:team/x/y:pull", []string{"pull"}},
		{"repository:other/app:pull", nil},
		{"repository:team:pull", nil},
		{"registry:catalog:*", []string{"*"}},
		{"repository(plugin):p:pull,push", []string{"pull"}},
		{"repository:p:pull", nil},
		{"thing:team/app:pull", nil},
	}
	for _, tt := range tests {
		asked, err := Parse(tt.asked)
		if err != nil {
			t.Fatal(err)
		}
		if got := Restrict(asked, patterns); !reflect.DeepEqual(got.Actions, tt.want) {
			t.Errorf("Restrict(%s) = %v, want %v", tt.asked, got.Actions, tt.want)
		}
	}
}

func TestAllows(t *testing.T) {
	s := Scope{Type: "repository", Name: "a", Actions: []string{"pull"}}
	if !s.Allows("pull") || s.Allows("push") {
		t.Fatalf("Allows wrong for %v", s.Actions)
	}
	s.Actions = []string{"*"}
	if !s.Allows("delete") {
		t.Fatal("* does not allow delete")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"repository:samalba/my-app:pull,push",
		"repository(plugin):x:pull",
		"registry:catalog:*",
		"repository:team/*:pull",
		"repository:*:pull",
		"thing:host:5000/x:a,b,a",
		"repository::",
		"::",
		"a(b)c:d:e",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, parse := range []func(string) (Scope, error){Parse, ParsePattern} {
			sc, err := parse(s)
			if err != nil {
				continue
			}
			again, err := parse(sc.String())
			if err != nil {
				t.Fatalf("%q parsed to %+v, whose String %q does not re-parse: %v", s, sc, sc.String(), err)
			}
			if !reflect.DeepEqual(sc, again) {
				t.Fatalf("%q parsed to %+v, re-parsed from %q to %+v", s, sc, sc.String(), again)
			}
			if len(sc.Actions) == 0 {
				t.Fatalf("%q parsed with no actions", s)
			}
			all, err := ParseAll([]string{sc.String()})
			if err == nil && (len(all) != 1 || !reflect.DeepEqual(all[0], sc)) {
				t.Fatalf("ParseAll(%q) = %+v, want [%+v]", sc.String(), all, sc)
			}
		}
	})
}
