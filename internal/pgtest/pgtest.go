// Package pgtest starts a throwaway PostgreSQL cluster for tests, so code that talks to
// PostgreSQL is tested against the real server rather than a fake.
//
// One cluster serves a whole test binary: it is started on the first Start and stopped
// by Run when the tests end; each Start creates a fresh database in it. The cluster is
// built for speed, not durability: initdb --no-sync, fsync=off, synchronous_commit=off
// and full_page_writes=off. It listens on 127.0.0.1 only, on a free port, and on a unix
// socket in its temporary directory, and requires a password that is generated per run.
//
// PostgreSQL refuses to run as root; when the tests run as root the cluster runs as the
// "postgres" system user (runuser). When the server binaries are missing, Start skips
// the test, except when CI=true: CI must never skip silently.
//
// A package using Start must run its tests through Run:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// superuser is the cluster's superuser; the tests connect as it.
const superuser = "hubctl"

// cluster is the one running cluster of this test binary.
type cluster struct {
	bin      string // directory of initdb, pg_ctl
	dir      string // temporary root: data/, log, socket
	runAs    string // system user running the server, "" for the current one
	port     int
	password string
}

var (
	// running is set by Run; Start refuses to start a cluster nobody would stop.
	running atomic.Bool

	once     sync.Once
	shared   *cluster
	startErr error
	// missing is true when startErr means "PostgreSQL is not installed".
	missing bool

	dbSeq atomic.Int64
)

// Run runs the tests of m and then stops the cluster if one was started; TestMain
// passes its result to os.Exit.
func Run(m *testing.M) int {
	running.Store(true)
	code := m.Run()
	if shared != nil {
		if err := shared.pgctl("stop", "-m", "immediate", "-w"); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: stop cluster: %v\n", err)
		}
		if err := os.RemoveAll(shared.dir); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: remove %s: %v\n", shared.dir, err)
		}
	}
	return code
}

// Start returns the DSN (postgres://…) of a new, empty database in the test binary's
// cluster, starting the cluster on first use. The database is dropped when t ends.
func Start(t testing.TB) string {
	t.Helper()
	c := cl(t)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1))
	c.admin(t, "CREATE DATABASE "+name)
	t.Cleanup(func() {
		// WITH (FORCE) ends connections a test left open; a failure only wastes disk in
		// a cluster that goes away at the end of the run, so it is logged, not fatal.
		if err := c.exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	return c.dsn(name)
}

// Restart restarts the cluster (pg_ctl restart -m immediate), cutting every open
// connection without a goodbye, as a crash or failover would, and returns when it
// accepts connections again. Databases and their committed data survive: a CHECKPOINT
// first writes out what synchronous_commit=off may still hold in memory.
func Restart(t testing.TB) {
	t.Helper()
	c := cl(t)
	c.admin(t, "CHECKPOINT")
	if err := c.pgctl("restart", "-m", "immediate", "-w"); err != nil {
		t.Fatalf("pgtest: restart: %v", err)
	}
}

// Pause stops the cluster, as an outage would, and returns a function that starts it
// again (also called at the end of the test if the test did not), so a test can watch
// code ride out a database that is down. Committed data survives.
func Pause(t testing.TB) (resume func()) {
	t.Helper()
	c := cl(t)
	c.admin(t, "CHECKPOINT")
	if err := c.pgctl("stop", "-m", "immediate", "-w"); err != nil {
		t.Fatalf("pgtest: stop: %v", err)
	}
	var once sync.Once
	resume = func() {
		once.Do(func() {
			if err := c.pgctl("start", "-w"); err != nil {
				t.Fatalf("pgtest: start: %v", err)
			}
		})
	}
	t.Cleanup(resume)
	return resume
}

// cl returns the running cluster, starting it on first use, or ends the test.
func cl(t testing.TB) *cluster {
	t.Helper()
	if !running.Load() {
		t.Fatal("pgtest: the package's TestMain must call pgtest.Run, which stops the cluster at the end")
	}
	once.Do(func() { shared, startErr = start() })
	if startErr != nil {
		if missing && os.Getenv("CI") != "true" {
			t.Skipf("pgtest: %v (Debian: apt-get install -y postgresql)", startErr)
		}
		t.Fatalf("pgtest: %v", startErr)
	}
	return shared
}

func start() (*cluster, error) {
	bin, err := FindBin()
	if err != nil {
		missing = true
		return nil, err
	}
	c := &cluster{bin: bin}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			return nil, fmt.Errorf("running as root and there is no postgres system user to run the server as: %w", err)
		}
		c.runAs = "postgres"
	}
	// The directory's parent must be reachable by the postgres user; /tmp always is,
	// while a TMPDIR under /root is not.
	base := os.TempDir()
	if c.runAs != "" {
		base = "/tmp"
	}
	if c.dir, err = os.MkdirTemp(base, "hubctl-pgtest-"); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = c.pgctl("stop", "-m", "immediate", "-w")
			_ = os.RemoveAll(c.dir)
		}
	}()
	if c.runAs != "" {
		u, err := user.Lookup(c.runAs)
		if err != nil {
			return nil, err
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(c.dir, uid, gid); err != nil {
			return nil, err
		}
	}
	pw := make([]byte, 16)
	_, _ = rand.Read(pw)
	c.password = hex.EncodeToString(pw)
	pwfile := filepath.Join(c.dir, "pwfile")
	if err := c.writeFile(pwfile, c.password+"\n"); err != nil {
		return nil, err
	}
	// --no-sync: nothing here must survive a power cut. C.UTF-8 matches what CI images
	// have; the store's schema sets the collation it needs itself.
	if out, err := c.run(filepath.Join(bin, "initdb"), "--no-sync", "-D", c.data(), "-U", superuser,
		"--pwfile", pwfile, "--auth-host=scram-sha-256", "--auth-local=scram-sha-256",
		"-E", "UTF8", "--locale=C.UTF-8"); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	_ = os.Remove(pwfile)

	// A port that was free a moment ago may be taken by the time the server binds it;
	// try a few.
	for attempt := 0; ; attempt++ {
		if c.port, err = freePort(); err != nil {
			return nil, err
		}
		conf := fmt.Sprintf(`
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
`, c.port, c.dir)
		if err := c.writeFile(filepath.Join(c.data(), "postgresql.auto.conf"), conf); err != nil {
			return nil, err
		}
		err = c.pgctl("start", "-w", "-t", "60")
		if err == nil {
			break
		}
		if attempt == 2 {
			return nil, err
		}
	}
	if err := c.exec(context.Background(), "SELECT 1"); err != nil {
		return nil, fmt.Errorf("connect to the test cluster: %w", err)
	}
	ok = true
	return c, nil
}

// FindBin returns the newest /usr/lib/postgresql/*/bin holding initdb and pg_ctl, or
// the directory of pg_ctl on PATH.
func FindBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { // "9.6" < "15" < "16": by number
		va, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(a)), 64)
		vb, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(b)), 64)
		switch {
		case va < vb:
			return 1
		case va > vb:
			return -1
		}
		return 0
	})
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, d := range dirs {
		if isFile(filepath.Join(d, "initdb")) && isFile(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin or PATH")
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (c *cluster) data() string { return filepath.Join(c.dir, "data") }

// dsn is the URL of database name over TCP on loopback.
func (c *cluster) dsn(name string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(superuser, c.password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)),
		Path:     "/" + name,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// run runs a server program, as the postgres user when we are root, in the cluster's
// directory (the postgres user may not be able to enter the test's working directory).
func (c *cluster) run(prog string, args ...string) ([]byte, error) {
	if c.runAs != "" {
		args = append([]string{"-u", c.runAs, "--", prog}, args...)
		prog = "runuser"
	}
	cmd := exec.Command(prog, args...)
	cmd.Dir = c.dir
	// LC_ALL keeps initdb from failing on a locale the environment names but the
	// system does not have.
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "LANG=C.UTF-8")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// pgctl runs pg_ctl on the cluster with the server log in the cluster's directory, and
// reports the log's tail when it fails.
func (c *cluster) pgctl(args ...string) error {
	logfile := filepath.Join(c.dir, "server.log")
	args = append(args, "-D", c.data(), "-l", logfile)
	out, err := c.run(filepath.Join(c.bin, "pg_ctl"), args...)
	if err != nil {
		log, _ := os.ReadFile(logfile)
		if len(log) > 4000 {
			log = log[len(log)-4000:]
		}
		return fmt.Errorf("pg_ctl %s: %w\n%s\nserver log:\n%s", args[0], err, out, log)
	}
	return nil
}

// writeFile writes a file the server reads, owned by the user the server runs as.
func (c *cluster) writeFile(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return err
	}
	if c.runAs == "" {
		return nil
	}
	u, err := user.Lookup(c.runAs)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(path, uid, gid)
}

// exec runs one statement in the maintenance database.
func (c *cluster) exec(ctx context.Context, stmt string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.dsn("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, stmt)
	return err
}

func (c *cluster) admin(t testing.TB, stmt string) {
	t.Helper()
	if err := c.exec(context.Background(), stmt); err != nil {
		t.Fatalf("pgtest: %s: %v", strings.Fields(stmt)[0], err)
	}
}
