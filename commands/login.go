package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hubctl/hubctl/internal/credentials"
	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/internal/tlsconf"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// LoginOptions are the inputs of `hubctl login`.
type LoginOptions struct {
	IO *iostreams.IOStreams
	// ConfigDir is docker's configuration directory ($DOCKER_CONFIG); "" lets docker's
	// config package choose (~/.docker).
	ConfigDir string
	// Host is the registry as typed; "" is Docker Hub, as with docker.
	Host          string
	Username      string
	Password      string
	PasswordStdin bool
	// PlainHTTP talks HTTP to the registry (loopback hosts always do, unless a CA
	// is configured for them).
	PlainHTTP bool
	// Trust verifies the registry's certificate (certs.d, --ca-file).
	Trust *tlsconf.Trust
}

// NewCmdLogin returns `hubctl login`. runF receives the parsed options instead of
// logging in, so tests can check flag handling.
func NewCmdLogin(f *Factory, runF func(*LoginOptions) error) *cobra.Command {
	opts := &LoginOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "login [HOST]",
		Short: "Log in to a registry",
		Long: `Log in to a registry and store the credentials where docker keeps them.

Credentials go to docker's config.json ($DOCKER_CONFIG or ~/.docker), or to the
credential helper it names (credsStore, credHelpers), so docker and hubctl share logins.
Without HOST, logs in to Docker Hub.

The credentials are checked first: GET /v2/ and answer the registry's challenge (a Docker
token request, or HTTP Basic). When the token service issues a refresh token, it is
stored instead of the password. Loopback hosts (localhost, 127.0.0.0/8, ::1) are reached
over plain HTTP, others over HTTPS unless --plain-http is given.

On a terminal, missing username and password are prompted for (the password hidden).
In scripts, pass the password on stdin with --password-stdin.`,
		Example: `  hubctl login registry.example.com
  echo "$TOKEN" | hubctl login registry.example.com -u ci-bot --password-stdin
  hubctl login localhost:5000 -u admin`,
		Args: checkArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Host = args[0]
			}
			if opts.Password != "" && opts.PasswordStdin {
				return usageErrorf(cmd, "--password and --password-stdin are mutually exclusive")
			}
			if opts.PasswordStdin && opts.Username == "" {
				return usageErrorf(cmd, "--password-stdin needs --username")
			}
			opts.ConfigDir, _ = f.LookupEnv("DOCKER_CONFIG")
			opts.Trust = f.Trust()
			if runF != nil {
				return runF(opts)
			}
			return loginRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.Username, "username", "u", "", "Registry user `name`")
	fl.StringVarP(&opts.Password, "password", "p", "", "Password or access token (insecure: visible to other users; prefer --password-stdin)")
	fl.BoolVar(&opts.PasswordStdin, "password-stdin", false, "Read the password or access token from stdin")
	fl.BoolVar(&opts.PlainHTTP, "plain-http", false, "Talk to the registry over plain HTTP instead of HTTPS")
	fl.BoolVar(&opts.PlainHTTP, "insecure", false, "Same as --plain-http")
	cmd.ValidArgsFunction = cobra.NoFileCompletions
	return cmd
}

func loginRun(ctx context.Context, opts *LoginOptions) error {
	key := credentials.NormalizeHost(opts.Host)
	store, err := credentials.Load(opts.ConfigDir)
	if err != nil {
		return err
	}
	creds, err := readLoginCredentials(opts, store, key)
	if err != nil {
		return err
	}
	res, err := credentials.Verify(ctx, opts.Host, creds, credentials.VerifyOptions{PlainHTTP: opts.PlainHTTP, Trust: opts.Trust})
	if err != nil {
		return err
	}
	if res.NoAuth {
		fmt.Fprintf(opts.IO.ErrOut, "%s does not require authentication; credentials stored anyway\n", key)
	}
	if err := store.Save(key, res.Credentials); err != nil {
		return err
	}
	fmt.Fprintln(opts.IO.Out, "Login Succeeded")
	return nil
}

// readLoginCredentials gathers username and password from flags, stdin or prompts, the
// way docker login does.
func readLoginCredentials(opts *LoginOptions, store *credentials.Store, key string) (credentials.Credentials, error) {
	ios := opts.IO
	user, pass := strings.TrimSpace(opts.Username), opts.Password
	if pass != "" {
		fmt.Fprintln(ios.ErrOut, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
	}
	if opts.PasswordStdin {
		b, err := readAll(ios.In)
		if err != nil {
			return credentials.Anonymous, fmt.Errorf("read password from stdin: %w", err)
		}
		pass = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if pass == "" {
			return credentials.Anonymous, errors.New("--password-stdin: stdin is empty")
		}
	}
	if user != "" && pass != "" {
		return credentials.Credentials{Username: user, Password: pass}, nil
	}
	if !ios.IsStdinTTY() {
		return credentials.Anonymous, fmt.Errorf("cannot prompt for credentials: stdin is not a terminal; use -u USER --password-stdin (e.g. echo \"$TOKEN\" | hubctl login %s -u USER --password-stdin)", loginArg(key))
	}
	if user == "" {
		// A stored login suggests the username, as docker does.
		prev, _ := store.Get(key)
		if prev.Username != "" {
			fmt.Fprintf(ios.ErrOut, "Username (%s): ", prev.Username)
		} else {
			fmt.Fprint(ios.ErrOut, "Username: ")
		}
		line, err := readLine(ios.In)
		if err != nil {
			return credentials.Anonymous, fmt.Errorf("read username: %w", err)
		}
		if user = strings.TrimSpace(line); user == "" {
			user = prev.Username
		}
		if user == "" {
			return credentials.Anonymous, errors.New("username is required")
		}
	}
	if pass == "" {
		fmt.Fprint(ios.ErrOut, "Password: ")
		p, err := readSecret(ios.In)
		fmt.Fprintln(ios.ErrOut)
		if err != nil {
			return credentials.Anonymous, fmt.Errorf("read password: %w", err)
		}
		if pass = p; pass == "" {
			return credentials.Anonymous, errors.New("password is required")
		}
	}
	return credentials.Credentials{Username: user, Password: pass}, nil
}

// loginArg is how the user would name key on the command line.
func loginArg(key string) string {
	if key == credentials.DockerHubKey {
		return "docker.io"
	}
	return key
}

// readSecret reads a line without echo when in is a terminal; other readers (tests with
// a simulated TTY) are read as a plain line.
func readSecret(in io.Reader) (string, error) {
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b, err := term.ReadPassword(int(f.Fd()))
		return string(b), err
	}
	return readLine(in)
}

// readLine reads up to a newline one byte at a time, so nothing past the line is
// consumed from a terminal that the hidden password read uses next.
func readLine(in io.Reader) (string, error) {
	var b strings.Builder
	buf := make([]byte, 1)
	for {
		n, err := in.Read(buf)
		if n == 1 {
			if buf[0] == '\n' {
				return strings.TrimSuffix(b.String(), "\r"), nil
			}
			b.WriteByte(buf[0])
		}
		if errors.Is(err, io.EOF) {
			if b.Len() == 0 {
				return "", io.ErrUnexpectedEOF
			}
			return b.String(), nil
		}
		if err != nil {
			return "", err
		}
	}
}

// readAll reads stdin for --password-stdin, bounded because a password is small and a
// mistaken pipe should not fill memory.
func readAll(in io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(in, 64<<10+1))
	if err == nil && len(b) > 64<<10 {
		return nil, errors.New("more than 64KiB on stdin")
	}
	return b, err
}

// LogoutOptions are the inputs of `hubctl logout`.
type LogoutOptions struct {
	IO *iostreams.IOStreams
	// ConfigDir is docker's configuration directory, as for LoginOptions.
	ConfigDir string
	// Host is the registry as typed; "" is Docker Hub.
	Host string
}

// NewCmdLogout returns `hubctl logout`. runF receives the parsed options instead of
// logging out.
func NewCmdLogout(f *Factory, runF func(*LogoutOptions) error) *cobra.Command {
	opts := &LogoutOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "logout [HOST]",
		Short: "Log out from a registry",
		Long: `Remove the stored credentials for a registry from docker's config.json or its
credential helper. Without HOST, logs out from Docker Hub. Not being logged in is not
an error.`,
		Example: `  hubctl logout registry.example.com`,
		Args:    checkArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Host = args[0]
			}
			opts.ConfigDir, _ = f.LookupEnv("DOCKER_CONFIG")
			if runF != nil {
				return runF(opts)
			}
			return logoutRun(opts)
		},
	}
	cmd.ValidArgsFunction = cobra.NoFileCompletions
	return cmd
}

func logoutRun(opts *LogoutOptions) error {
	key := credentials.NormalizeHost(opts.Host)
	store, err := credentials.Load(opts.ConfigDir)
	if err != nil {
		return err
	}
	prev, err := store.Get(key)
	if err != nil {
		return err
	}
	if prev.IsAnonymous() {
		fmt.Fprintf(opts.IO.Out, "Not logged in to %s\n", key)
		return nil
	}
	fmt.Fprintf(opts.IO.Out, "Removing login credentials for %s\n", key)
	return store.Erase(key)
}
