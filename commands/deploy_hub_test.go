package commands

import (
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/deploy"
	"github.com/hubctl/hubctl/internal/deploy/hubhistory"
)

// TestDeployHubPullAuth: the hub's pull token is only ever handed to the engine for
// the spec's own repositories on that hub, and only once a deploy runs; any other
// image (another registry, another repository of the hub: the proxy image) gets the
// caller's credentials, as without a hub.
func TestDeployHubPullAuth(t *testing.T) {
	hub := &deployHub{host: "hub.example.com:5000", hist: hubhistory.New(nil, "acme")}
	s := &deploy.Spec{Service: deploy.Service{Name: "web", Image: "hub.example.com:5000/acme/web:1"},
		Accessories: []deploy.Accessory{{Name: "db", Image: "docker.io/library/postgres:17"}}}
	hist := &hubDeployHistory{History: hub.hist}
	var asked []string
	fallback := func(image string) (string, error) { asked = append(asked, image); return "caller", nil }
	auth := hub.pullAuth(t.Context(), hist, s, fallback)
	for _, im := range []string{
		"docker.io/library/postgres:17@sha256:" + strings.Repeat("a", 64),
		"hub.example.com:5000/other/hubctl-proxy:dev",
		"hub.example.com/acme/web:1", // another host: the port is part of it
		"evil.example.com/acme/web:1",
	} {
		if got, err := auth(im); err != nil || got != "caller" {
			t.Errorf("%s: %q %v, want the caller's credentials", im, got, err)
		}
	}
	if len(asked) != 4 {
		t.Errorf("fallback asked for %v", asked)
	}
	// The service's image before any deploy began: no token to mint, refused.
	if got, err := auth("hub.example.com:5000/acme/web@sha256:" + strings.Repeat("b", 64)); err == nil || got != "" || !strings.Contains(err.Error(), "no deploy is running") {
		t.Errorf("the hub's image before Begin: %q %v", got, err)
	}
}
