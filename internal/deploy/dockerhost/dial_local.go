package dockerhost

import (
	"context"
	"fmt"

	"github.com/moby/moby/client"

	"github.com/hubctl/hubctl/internal/deploy"
)

// Dial connects to the local engine (DOCKER_HOST, or the default socket, or a
// unix:// address) and negotiates the API version. Temporary: dial.go, with ssh://
// and tcp+TLS, replaces this file.
func Dial(ctx context.Context, h deploy.Host) (*client.Client, error) {
	opts := []client.Opt{client.FromEnv}
	if h.Docker != "" {
		if len(h.Docker) < 7 || h.Docker[:7] != "unix://" {
			return nil, fmt.Errorf("host %s: %s engines are not supported by this build (only the local engine)", h.Name, h.Docker)
		}
		opts = append(opts, client.WithHost(h.Docker))
	}
	api, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name, err)
	}
	if _, err := api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		api.Close()
		return nil, fmt.Errorf("host %s: the Docker engine does not answer: %w", h.Name, err)
	}
	return api, nil
}
