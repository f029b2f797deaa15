package credentials

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// Environment variables a workflow job's steps get from the hub (docs/workflows.md).
const (
	EnvHub       = "HUBCTL_HUB"
	EnvToken     = "HUBCTL_TOKEN"
	EnvTokenFile = "HUBCTL_TOKEN_FILE"
)

// maxTokenFile bounds what is read of $HUBCTL_TOKEN_FILE.
const maxTokenFile = 64 << 10

// JobTokenResolver answers, for the hub a workflow job runs on, the job's registry
// token: the content of TokenFile, read anew on every call because the hub rewrites
// it before the token expires, else Token. For every other host, and when neither is
// set, it asks Next: the job's token is never sent to another registry.
type JobTokenResolver struct {
	Next Resolver
	// Hub is the hub's host[:port] (NormalizeHost of $HUBCTL_HUB).
	Hub       string
	TokenFile string
	Token     string
}

// JobTokenFromEnv wraps next with the job token of a workflow step's environment
// ($HUBCTL_HUB with $HUBCTL_TOKEN_FILE or $HUBCTL_TOKEN); outside a job, or when
// $HUBCTL_HUB is not set, it returns next unchanged.
func JobTokenFromEnv(next Resolver, lookup func(string) (string, bool)) Resolver {
	hub, _ := lookup(EnvHub)
	file, _ := lookup(EnvTokenFile)
	tok, _ := lookup(EnvToken)
	if hub == "" || (file == "" && strings.TrimSpace(tok) == "") {
		return next
	}
	host := hub
	if u, err := url.Parse(hub); err == nil && u.Host != "" {
		host = u.Host
	}
	return &JobTokenResolver{Next: next, Hub: NormalizeHost(host), TokenFile: file, Token: strings.TrimSpace(tok)}
}

// Resolve returns the job's token for the hub, Next's answer for any other host.
func (r *JobTokenResolver) Resolve(host string) (Credentials, error) {
	if NormalizeHost(host) != r.Hub {
		if r.Next == nil {
			return Anonymous, nil
		}
		return r.Next.Resolve(host)
	}
	if r.TokenFile != "" {
		tok, err := readTokenFile(r.TokenFile)
		if err != nil {
			return Anonymous, err
		}
		if tok != "" {
			return Credentials{RegistryToken: tok}, nil
		}
	}
	if r.Token != "" {
		return Credentials{RegistryToken: r.Token}, nil
	}
	return Anonymous, fmt.Errorf("%s %s is empty and %s is not set", EnvTokenFile, r.TokenFile, EnvToken)
}

func readTokenFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read the job token (%s): %w", EnvTokenFile, err)
	}
	defer f.Close()
	b := make([]byte, maxTokenFile+1)
	n, _ := f.Read(b)
	for n < len(b) {
		m, err := f.Read(b[n:])
		n += m
		if err != nil || m == 0 {
			break
		}
	}
	if n > maxTokenFile {
		return "", fmt.Errorf("the job token file %s (%s) is larger than %d bytes", path, EnvTokenFile, maxTokenFile)
	}
	return string(bytes.TrimSpace(b[:n])), nil
}
