// Package credentials is the client's registry credential store. It is docker's own:
// config.json read and written by github.com/docker/cli's config package, with
// credsStore and credHelpers honoured, so `docker login` and `hubctl login` share
// credentials in both directions.
package credentials

import (
	"fmt"
	"strings"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	dockercreds "github.com/docker/cli/cli/config/credentials"
	"github.com/docker/cli/cli/config/types"
)

// DockerHubKey is the key under which docker stores Docker Hub credentials; keeping it
// lets hubctl and docker find each other's Docker Hub login.
const DockerHubKey = "https://index.docker.io/v1/"

// DockerHubRegistry is the host that serves Docker Hub's /v2/ API, the one a login to
// Docker Hub is checked against.
const DockerHubRegistry = "registry-1.docker.io"

// Credentials are what a registry login stores. IdentityToken, when set, is an OAuth2
// refresh token and replaces the password (docker stores it in place of one).
type Credentials struct {
	Username      string
	Password      string
	IdentityToken string
	// RegistryToken, when set, is a registry bearer token sent as it is, never
	// exchanged at a token service: a workflow job's $HUBCTL_TOKEN (JobTokenResolver).
	// It is never stored.
	RegistryToken string
}

// IsAnonymous reports whether c carries nothing to authenticate with.
func (c Credentials) IsAnonymous() bool {
	return c.Username == "" && c.Password == "" && c.IdentityToken == "" && c.RegistryToken == ""
}

// Anonymous is the absence of credentials: requests go out without authentication.
var Anonymous = Credentials{}

// Store reads and writes credentials in one docker configuration directory.
type Store struct {
	file *configfile.ConfigFile
}

// Load opens the docker configuration in dir; "" means $DOCKER_CONFIG, else ~/.docker,
// as docker decides. A missing config.json is an empty store; a malformed one is an
// error, so that saving never overwrites a file we could not read.
func Load(dir string) (*Store, error) {
	cf, err := config.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("docker config: %w", err)
	}
	return &Store{file: cf}, nil
}

// Filename is the config.json the store reads and writes, for messages to the user.
func (s *Store) Filename() string { return s.file.Filename }

// Get returns the stored credentials for host, Anonymous when there are none.
func (s *Store) Get(host string) (Credentials, error) {
	key := NormalizeHost(host)
	ac, err := s.file.GetCredentialsStore(key).Get(key)
	if err != nil {
		return Anonymous, fmt.Errorf("get credentials for %s: %w", key, err)
	}
	return Credentials{Username: ac.Username, Password: ac.Password, IdentityToken: ac.IdentityToken}, nil
}

// Save stores c for host in the credential helper configured for it (credHelpers, then
// credsStore) or, with none, in config.json itself.
func (s *Store) Save(host string, c Credentials) error {
	key := NormalizeHost(host)
	ac := types.AuthConfig{
		Username:      c.Username,
		Password:      c.Password,
		IdentityToken: c.IdentityToken,
		ServerAddress: key,
	}
	if err := s.file.GetCredentialsStore(key).Store(ac); err != nil {
		return fmt.Errorf("save credentials for %s: %w", key, err)
	}
	return nil
}

// Erase removes the credentials for host. Entries docker wrote under a URL
// ("https://host") in older versions go too, since Get would still find them.
func (s *Store) Erase(host string) error {
	key := NormalizeHost(host)
	keys := []string{key}
	if key != DockerHubKey {
		for _, legacy := range []string{"http://" + key, "https://" + key} {
			if _, ok := s.file.GetAuthConfigs()[legacy]; ok {
				keys = append(keys, legacy)
			}
		}
	}
	for _, k := range keys {
		if err := s.file.GetCredentialsStore(k).Erase(k); err != nil {
			return fmt.Errorf("erase credentials for %s: %w", k, err)
		}
	}
	return nil
}

// Resolve returns the credentials to use for the registry at host, Anonymous when
// none are stored. It makes Store a Resolver.
func (s *Store) Resolve(host string) (Credentials, error) {
	return s.Get(host)
}

// Resolver finds the credentials for a registry host, in the manner of
// go-containerregistry's authn.Keychain: transfer code asks it once per registry and
// sends requests anonymously when it answers Anonymous.
type Resolver interface {
	Resolve(host string) (Credentials, error)
}

// AnonymousResolver answers Anonymous for every host, for registries reached without
// any stored login.
type AnonymousResolver struct{}

// Resolve returns Anonymous.
func (AnonymousResolver) Resolve(string) (Credentials, error) { return Anonymous, nil }

// NormalizeHost turns what a user may type for a registry (a URL, a host with a path or
// a trailing slash) into the key docker stores its credentials under: the host[:port],
// or DockerHubKey for Docker Hub.
func NormalizeHost(host string) string {
	h := strings.TrimSpace(host)
	switch h {
	case "", "docker.io", "index.docker.io", DockerHubRegistry, DockerHubKey:
		return DockerHubKey
	}
	h = dockercreds.ConvertToHostname(h)
	switch h {
	case "docker.io", "index.docker.io", DockerHubRegistry:
		return DockerHubKey
	}
	return h
}

// RegistryHost is the host[:port] whose /v2/ API serves the registry stored under
// NormalizeHost(host): the key itself, except for Docker Hub.
func RegistryHost(host string) string {
	key := NormalizeHost(host)
	if key == DockerHubKey {
		return DockerHubRegistry
	}
	return key
}
