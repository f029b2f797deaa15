package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/hubctl/hubctl/bench/internal/benchhub"
)

// adminPassword is the admin password of the hubs the benchmark starts.
const adminPassword = "webhookbench-admin"

// hub is one `hubctl serve` process.
type hub = benchhub.Hub

// pgCluster is the replicas' PostgreSQL.
type pgCluster = benchhub.Postgres

func startPostgres() (*pgCluster, error) { return benchhub.StartPostgres("webhookbench") }

var createDatabase = benchhub.CreateDatabase

// startHub starts `hubctl serve` on a free port with data directory data and the
// extra environment env, and waits until /readyz answers 200.
func startHub(bin, data string, env []string) (*hub, error) {
	return benchhub.Start(bin, data, adminPassword, env)
}

// procCPU is the CPU seconds (user + system) of pid and its descendants, from
// /proc/PID/stat: a PostgreSQL server works in one child per connection.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 15 {
		return 0
	}
	var sum float64
	for _, i := range []int{11, 12, 13, 14} { // utime, stime, cutime, cstime
		n, _ := strconv.ParseInt(f[i], 10, 64)
		sum += float64(n) / 100 // USER_HZ
	}
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range tasks {
		kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		for _, k := range strings.Fields(string(kids)) {
			if kid, err := strconv.Atoi(k); err == nil {
				sum += procCPU(kid)
			}
		}
	}
	return sum
}
