package dockerhost

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/hubctl/hubctl/internal/deploy"
)

// missing skips a test whose tool is not here, and fails it when CI=true.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// engine returns a Host on the local engine and a busybox image FROM scratch.
func engine(t *testing.T) (*Host, string, string) {
	t.Helper()
	ctx := t.Context()
	api, err := Dial(ctx, deploy.Host{Name: "local"})
	if err != nil {
		missing(t, "no Docker engine: %v", err)
	}
	t.Cleanup(func() { api.Close() })
	bb, err := exec.LookPath("busybox")
	if err != nil {
		missing(t, "busybox not found (apt-get install -y busybox-static): %v", err)
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	image := "hubctl-test/dockerhost-busybox:" + id
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range map[string][]byte{
		"Dockerfile": []byte("FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\"]\nCMD [\"sleep\", \"3600\"]\n"),
		"busybox":    data,
	} {
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body))})
		_, _ = tw.Write(body)
	}
	_ = tw.Close()
	res, err := api.ImageBuild(ctx, &buf, client.ImageBuildOptions{Tags: []string{image}, Version: build.BuilderV1, Remove: true, ForceRemove: true})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := readAll(res.Body)
	res.Body.Close()
	if strings.Contains(out, `"error"`) {
		t.Fatalf("build: %s", out)
	}
	service := "dh-test-" + id
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		f := make(client.Filters).Add("label", deploy.LabelService+"="+service)
		if cs, err := api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f}); err == nil {
			for _, c := range cs.Items {
				_, _ = api.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
			}
		}
		if ns, err := api.NetworkList(ctx, client.NetworkListOptions{Filters: f}); err == nil {
			for _, n := range ns.Items {
				_, _ = api.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{})
			}
		}
		_, _ = api.ImageRemove(ctx, image, client.ImageRemoveOptions{Force: true})
	})
	return New("local", api, Options{LockImage: image}), image, service
}

func readAll(r interface{ Read([]byte) (int, error) }) (string, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(r)
	return b.String(), err
}

// TestHostLock: the lock container is the mutex; the holder may take it again,
// another is refused with the holder's name, a dead local holder's and an expired
// lock are taken over, Unlock leaves a lock someone else took, Break removes any.
func TestHostLock(t *testing.T) {
	if testing.Short() {
		t.Skip("uses the Docker engine")
	}
	h, _, service := engine(t)
	ctx := t.Context()
	me, _ := os.Hostname()
	now := time.Now()
	alice := deploy.LockHolder{By: "alice", Host: me, PID: os.Getpid(), Number: 1, Acquired: now, Expires: now.Add(deploy.LockTTL)}
	if err := h.Lock(ctx, service, alice); err != nil {
		t.Fatal(err)
	}
	if err := h.Lock(ctx, service, alice); err != nil {
		t.Fatalf("the holder again: %v", err)
	}
	bob := deploy.LockHolder{By: "bob", Host: "elsewhere", PID: 7, Number: 2, Acquired: now.Add(time.Second), Expires: now.Add(deploy.LockTTL)}
	var le *deploy.LockedError
	if err := h.Lock(ctx, service, bob); !errors.As(err, &le) || le.Holder.By != "alice" || le.Holder.PID != os.Getpid() || le.Holder.Number != 1 {
		t.Fatalf("bob while alice holds it: %v", err)
	}
	// Renew keeps it alice's, with the new expiry.
	alice.Expires = now.Add(2 * deploy.LockTTL)
	if err := h.Renew(ctx, service, alice); err != nil {
		t.Fatal(err)
	}
	if cur, _, err := h.lockHolder(ctx, service); err != nil || !cur.Expires.Equal(alice.Expires) {
		t.Fatalf("after renew: %+v %v", cur, err)
	}
	if err := h.Unlock(ctx, service, bob); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.lockHolder(ctx, service); err != nil {
		t.Fatalf("bob's unlock removed alice's lock: %v", err)
	}
	if err := h.Unlock(ctx, service, alice); err != nil {
		t.Fatal(err)
	}

	// A holder on this machine whose process ended: stale at once.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	ghost := deploy.LockHolder{By: "ghost", Host: me, PID: dead.Process.Pid, Acquired: now, Expires: now.Add(time.Hour)}
	if err := h.Lock(ctx, service, ghost); err != nil {
		t.Fatal(err)
	}
	if err := h.Lock(ctx, service, bob); err != nil {
		t.Fatalf("bob after the holder died: %v", err)
	}
	// An expired lock: stale whoever held it.
	late := deploy.LockHolder{By: "carol", Host: "far", PID: 9, Acquired: now.Add(2 * time.Second), Expires: now.Add(3 * time.Second)}
	if err := h.Lock(ctx, service, late); !errors.As(err, &le) {
		t.Fatalf("carol while bob holds it: %v", err)
	}
	bob.Expires = now.Add(-time.Second)
	if err := h.Break(ctx, service); err != nil {
		t.Fatal(err)
	}
	if err := h.createLock(ctx, service, bob); err != nil {
		t.Fatal(err)
	}
	if err := h.Lock(ctx, service, late); err != nil {
		t.Fatalf("carol after bob's lock expired: %v", err)
	}
	if err := h.Break(ctx, service); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.lockHolder(ctx, service); err == nil {
		t.Fatal("the lock survived Break")
	}
}

// TestHostStartDown: tasks start on the service's network with hubctl's labels; a
// container that took a task's name is refused, never adopted; Down removes what
// the service made and leaves the rest.
func TestHostStartDown(t *testing.T) {
	if testing.Short() {
		t.Skip("uses the Docker engine")
	}
	h, image, service := engine(t)
	ctx := t.Context()
	task := deploy.TaskSpec{Service: service, Host: "local", Version: 1, Index: 1, Name: deploy.ContainerName(service, "local", 1, 1),
		Image: image, Env: []string{"A=1"}, StopTimeout: time.Second, Hash: "h1"}
	if err := h.Prepare(ctx, service, false); err != nil {
		t.Fatal(err)
	}
	if err := h.Start(ctx, task); err != nil {
		t.Fatal(err)
	}
	if err := h.Start(ctx, task); err != nil {
		t.Fatalf("start again (after a crash): %v", err)
	}
	st, err := h.Observe(ctx, service)
	if err != nil || len(st.Containers) != 1 {
		t.Fatalf("observe: %+v %v", st, err)
	}
	c := st.Containers[0]
	if c.Role != deploy.RoleTask || c.Version != 1 || c.Task != 1 || c.Hash != "h1" || !c.Running() || c.Name != task.Name {
		t.Errorf("observed %+v", c)
	}
	// A stranger takes the next task's name: refused.
	stranger := deploy.ContainerName(service, "local", 1, 2)
	res, err := h.api.ContainerCreate(ctx, client.ContainerCreateOptions{Name: stranger, Config: &container.Config{Image: image}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.api.ContainerRemove(context.Background(), res.ID, client.ContainerRemoveOptions{Force: true})
	t2 := task
	t2.Index, t2.Name = 2, stranger
	if err := h.Start(ctx, t2); err == nil || !strings.Contains(err.Error(), "not this deploy's") {
		t.Errorf("start over a stranger's container: %v", err)
	}
	if err := h.Down(ctx, service, false); err != nil {
		t.Fatal(err)
	}
	st, err = h.Observe(ctx, service)
	if err != nil || len(st.Containers) != 0 {
		t.Errorf("after down: %+v %v", st, err)
	}
	if _, err := h.api.ContainerInspect(ctx, res.ID, client.ContainerInspectOptions{}); err != nil {
		t.Errorf("down removed the stranger: %v", err)
	}
	nets, _ := h.api.NetworkList(ctx, client.NetworkListOptions{Filters: make(client.Filters).Add("label", deploy.LabelService+"="+service)})
	if len(nets.Items) != 0 {
		t.Errorf("networks after down: %d", len(nets.Items))
	}
}
