package kube

import (
	"strings"
	"testing"
)

const manifestV1 = `---
# Source: web/templates/secret.yaml
apiVersion: v1
kind: Secret
metadata:
  name: web
stringData:
  token: hunter2-old
data:
  key: c2VjcmV0LWtleQ==
---
# Source: web/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - image: hub/acme/web:1@sha256:aaa
`

func TestDiffManifests(t *testing.T) {
	v2 := strings.NewReplacer("sha256:aaa", "sha256:bbb", "hunter2-old", "hunter2-new").Replace(manifestV1)
	d, err := diffManifests(manifestV1, v2, "web revision 1 (deployed)", "web (planned)")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("diff:\n%s", d)
	for _, want := range []string{"--- web revision 1 (deployed)", "+++ web (planned)", "-      - image: hub/acme/web:1@sha256:aaa", "+      - image: hub/acme/web:1@sha256:bbb", "-  token: (hidden ", "+  token: (hidden "} {
		if !strings.Contains(d, want) {
			t.Errorf("diff lacks %q", want)
		}
	}
	// the unchanged secret value is masked the same on both sides: no line for it
	if strings.Contains(d, "key: (hidden") && (strings.Contains(d, "-  key:") || strings.Contains(d, "+  key:")) {
		t.Error("an unchanged secret value shows as changed")
	}
	for _, secret := range []string{"hunter2", "c2VjcmV0LWtleQ==", "secret-key"} {
		if strings.Contains(d, secret) {
			t.Errorf("the diff shows the secret value %q", secret)
		}
	}

	if d, err := diffManifests(manifestV1, manifestV1, "a", "b"); err != nil || d != "" {
		t.Errorf("same manifests: %q, %v", d, err)
	}
	d, err = diffManifests("", manifestV1, "/dev/null", "web (planned)")
	if err != nil || !strings.Contains(d, "+kind: Deployment") || strings.Contains(d, "hunter2") {
		t.Errorf("a first install: %q, %v", d, err)
	}
	// two plans of the same change do not share masks: the masks cannot be compared
	// across runs to guess a value
	d2, _ := diffManifests("", manifestV1, "/dev/null", "web (planned)")
	if d == d2 {
		t.Error("the masks are the same in two plans")
	}
	// a Secret the diff cannot read is refused rather than shown
	if _, err := diffManifests("", "kind: Secret\nstringData: [unclosed\n", "a", "b"); err == nil {
		t.Error("an unreadable Secret was diffed")
	}
}
