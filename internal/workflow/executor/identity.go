package executor

import "context"

// Identified is implemented by an executor whose steps outlive the engine process
// that started them (Docker containers, Kubernetes Jobs), so that a restarted engine,
// or another replica, re-attaches to them instead of failing them.
//
// Identity names what the executor runs steps on, as it is known to every replica
// that reaches it (the Docker engine's ID from /info). A job run records it when it
// is claimed, and a job run whose lease ran out is re-claimed only by an engine whose
// executor has the same name and the same identity: another replica, driving another
// Docker engine, never starts the job's steps again. "" means no pin: every replica
// with an executor of the same name reaches the same steps (the Kubernetes executor).
type Identified interface {
	Identity(ctx context.Context) (string, error)
}
