package main

import (
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
