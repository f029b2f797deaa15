package proxyimage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/hubctl/hubctl/internal/credentials"
	"github.com/hubctl/hubctl/internal/distclient"
	"github.com/hubctl/hubctl/internal/server/servertest"
	"github.com/hubctl/hubctl/internal/transfer"
)

const testAdminPassword = "proxyimage-test-admin"

type fixedLogin credentials.Credentials

func (f fixedLogin) Resolve(string) (credentials.Credentials, error) {
	return credentials.Credentials(f), nil
}

func randomID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestPushPull pushes the image to a real hub (hubctl serve in-process, token auth)
// under <namespace>/hubctl-proxy:<version>, pulls it back by digest, and checks an
// anonymous push is refused.
func TestPushPull(t *testing.T) {
	bin := staticHubctl(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	img, err := Build(ctx, WithBinary(bin), WithCache(openCache(t)))
	if err != nil {
		t.Fatal(err)
	}
	host := servertest.Start(t, "token", testAdminPassword)
	ref, err := Reference(host, "admin", "v9.9.9+test")
	if err != nil {
		t.Fatal(err)
	}
	if want := host + "/admin/hubctl-proxy:v9.9.9-test"; ref != want {
		t.Fatalf("Reference = %q; want %q", ref, want)
	}

	anon := &transfer.Engine{Client: distclient.New(distclient.Options{})}
	if _, err := Push(ctx, img, anon, ref, transfer.Options{}); err == nil {
		t.Fatal("an anonymous push worked")
	}

	e := &transfer.Engine{Client: distclient.New(distclient.Options{Credentials: fixedLogin{Username: "admin", Password: testAdminPassword}})}
	res, err := Push(ctx, img, e, ref, transfer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != img.Desc.Digest || res.UpToDate {
		t.Fatalf("push: %+v; want digest %s, sent", res, img.Desc.Digest)
	}
	// Pushed again (the next deploy of the same release): nothing to send.
	if res, err := Push(ctx, img, e, ref, transfer.Options{}); err != nil || !res.UpToDate {
		t.Fatalf("second push: %+v, %v; want up to date", res, err)
	}

	// Pulled by digest, as a host does: the same manifest and the same layer bytes.
	byDigest := host + "/admin/hubctl-proxy@" + img.Desc.Digest.String()
	dir := filepath.Join(t.TempDir(), "layout")
	pull, err := e.Copy(ctx, byDigest, "oci:"+dir, transfer.Options{})
	if err != nil {
		t.Fatalf("pull %s: %v", byDigest, err)
	}
	if pull.Digest != img.Desc.Digest {
		t.Fatalf("pulled %s; want %s", pull.Digest, img.Desc.Digest)
	}
	if _, err := os.Stat(filepath.Join(dir, ocispec.ImageBlobsDir, "sha256", img.Layer.Digest.Encoded())); err != nil {
		t.Errorf("the pulled layout has no layer %s: %v", img.Layer.Digest, err)
	}

	// Not a registry reference.
	if _, err := Push(ctx, img, e, "oci:"+t.TempDir(), transfer.Options{}); err == nil || !strings.Contains(err.Error(), "not a registry reference") {
		t.Errorf("push to a layout: %v", err)
	}
}

// TestLoadAndRun loads the image into the real engine without a registry, runs it
// FROM scratch (its port published on 127.0.0.1 only) and waits until the proxy
// answers there, then removes what it made.
func TestLoadAndRun(t *testing.T) {
	bin := staticHubctl(t)
	api, err := client.New(client.FromEnv)
	if err != nil {
		missing(t, "docker engine client: %v", err)
	}
	defer api.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = api.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true})
	pcancel()
	if err != nil {
		missing(t, "no Docker engine reachable (set DOCKER_HOST or start dockerd): %v", err)
	}

	// A label of this run makes an image no one else has, so the load is a real one
	// and removing it touches nothing of anyone else's.
	id := randomID(t)
	labels := map[string]string{"hubctl.test": "proxyimage-" + id}
	img, err := Build(ctx, WithBinary(bin), WithCache(openCache(t)), WithLabels(labels))
	if err != nil {
		t.Fatal(err)
	}
	ref := "hubctl-test/proxyimage-" + id + ":v1"
	name := "hubctl-test-proxyimage-" + id
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := api.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("remove container: %v", err)
		}
		for _, r := range []string{ref, "hubctl-test/proxyimage-" + id + ":again"} {
			if _, err := api.ImageRemove(ctx, r, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil && !cerrdefs.IsNotFound(err) {
				t.Errorf("remove image %s: %v", r, err)
			}
		}
	})

	imageID, err := Load(ctx, img, api, ref)
	if err != nil {
		t.Fatal(err)
	}
	if imageID != img.ConfigDesc.Digest.String() {
		t.Errorf("loaded image %s; want %s", imageID, img.ConfigDesc.Digest)
	}
	// Loaded again under another tag: the engine has it, so it is only tagged.
	if again, err := Load(ctx, img, api, "hubctl-test/proxyimage-"+id+":again"); err != nil || again != imageID {
		t.Errorf("second load: %s, %v", again, err)
	}
	// Bad names are refused before anything is sent.
	if _, err := Load(ctx, img, api, "Bad Name"); err == nil {
		t.Error("a load as 'Bad Name' worked")
	}

	port := network.MustParsePort("80/tcp")
	res, err := api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{
			Image: ref, Labels: labels,
			Env: []string{"HUBCTL_PROXY_SECRET=" + randomID(t) + randomID(t)},
		},
		HostConfig: &container.HostConfig{
			PortBindings: network.PortMap{port: {{HostIP: netip.MustParseAddr("127.0.0.1")}}},
		},
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := api.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start: %v", err)
	}
	ins, err := api.ContainerInspect(ctx, res.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := ins.Container.NetworkSettings.Ports[port]
	if len(b) == 0 || b[0].HostIP.String() != "127.0.0.1" {
		t.Fatalf("published port: %+v; want one on 127.0.0.1", b)
	}
	url := "http://127.0.0.1:" + b[0].HostPort + "/"

	// The proxy with no service yet answers every host with its own 404.
	hc := &http.Client{Timeout: 2 * time.Second}
	var last string
	for {
		resp, err := hc.Get(url)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			last = resp.Status + " " + strings.TrimSpace(string(body))
			if resp.StatusCode == http.StatusNotFound && strings.Contains(string(body), "no service answers for this host") {
				break
			}
		} else {
			last = err.Error()
		}
		if ctx.Err() != nil {
			st, _ := api.ContainerInspect(context.Background(), res.ID, client.ContainerInspectOptions{})
			state := ""
			if st.Container.State != nil {
				state = string(st.Container.State.Status) + " " + st.Container.State.Error
			}
			t.Fatalf("the proxy never answered on %s (last: %s; container %s)", url, last, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("proxy container from image %s answers on %s: %s", img.Desc.Digest, url, last)
	if err := ctx.Err(); errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
}
