package benchhub

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/pgtest"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to create the replicas' database
)

// Postgres is a throwaway PostgreSQL cluster on loopback (as internal/pgtest makes
// for the tests), run as the postgres system user when we are root: the shared
// database of the benchmarks' replicas.
type Postgres struct {
	bin, dir, runAs string
	port            int
	// PID is the postmaster's process id (0 when unknown), for its CPU time.
	PID int
}

// StartPostgres initialises and starts a cluster under a new directory of /tmp named
// after prefix.
func StartPostgres(prefix string) (*Postgres, error) {
	c := &Postgres{}
	bin, err := pgtest.FindBin()
	if err != nil {
		return nil, fmt.Errorf("%w, or give -pg", err)
	}
	c.bin = bin
	if c.dir, err = os.MkdirTemp("/tmp", prefix+"-pg-"); err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root without a postgres system user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(c.dir, uid, gid); err != nil {
			return nil, err
		}
		c.runAs = "postgres"
	}
	if out, err := c.run(filepath.Join(c.bin, "initdb"), "--no-sync", "-D", c.dir+"/data", "-U", "postgres",
		"--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	// Durable settings, as a production cluster has them: the push's commit waits for
	// the WAL flush, which is what the outbox row adds to.
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s -c max_connections=200", c.port, c.dir)
	if out, err := c.run(filepath.Join(c.bin, "pg_ctl"), "-D", c.dir+"/data", "-l", c.dir+"/server.log", "-w", "-t", "60", "-o", opts, "start"); err != nil {
		return nil, fmt.Errorf("pg_ctl start: %w\n%s", err, out)
	}
	if b, err := os.ReadFile(c.dir + "/data/postmaster.pid"); err == nil {
		c.PID, _ = strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	}
	return c, nil
}

func (c *Postgres) run(name string, args ...string) ([]byte, error) {
	if c.runAs != "" {
		args = append([]string{"-u", c.runAs, "--", name}, args...)
		name = "runuser"
	}
	return exec.Command(name, args...).CombinedOutput()
}

// URL is the URL of database name.
func (c *Postgres) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, name)
}

// Stop stops the cluster and removes its directory.
func (c *Postgres) Stop() {
	_, _ = c.run(filepath.Join(c.bin, "pg_ctl"), "-D", c.dir+"/data", "-m", "fast", "-w", "stop")
	_ = os.RemoveAll(c.dir)
}

// CreateDatabase creates database name on the server of url (a postgres:// URL of
// any database there) and returns the new database's URL.
func CreateDatabase(server, name string) (string, error) {
	db, err := sql.Open("pgx", server)
	if err != nil {
		return "", err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	i := strings.LastIndex(server, "/")
	j := strings.IndexByte(server[i:], '?')
	if j < 0 {
		return server[:i+1] + name, nil
	}
	return server[:i+1] + name + server[i+j:], nil
}
