package docker

import (
	"context"
	"errors"
	"fmt"

	"github.com/moby/moby/client"

	"github.com/hubctl/hubctl/internal/workflow/executor"
)

var _ executor.Identified = (*Executor)(nil)

// Identity is the Docker engine's ID (its /info): the engine a job run's containers
// live on. The workflow engine records it with the job run and re-claims a job run
// whose lease ran out only through an executor driving the same engine, since no
// other engine knows its containers.
func (e *Executor) Identity(ctx context.Context) (string, error) {
	res, err := e.api.Info(ctx, client.InfoOptions{})
	if err != nil {
		return "", fmt.Errorf("docker executor: engine info: %w", err)
	}
	if res.Info.ID == "" {
		return "", errors.New("docker executor: the engine reported no ID")
	}
	return res.Info.ID, nil
}
