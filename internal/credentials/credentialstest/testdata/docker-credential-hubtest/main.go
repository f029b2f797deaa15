// Command docker-credential-hubtest is a docker credential helper for tests: it speaks
// the helper protocol (store, get, erase, list on stdin/stdout) and keeps credentials in
// store.json next to its executable, so a test can read what was stored.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

type creds struct {
	ServerURL string `json:"ServerURL"`
	Username  string `json:"Username"`
	Secret    string `json:"Secret"`
}

func main() {
	if err := run(); err != nil {
		// The protocol reads errors from stdout; this exact text means "not found".
		fmt.Println(err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) != 2 {
		return errors.New("usage: docker-credential-hubtest store|get|erase|list")
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	file := filepath.Join(filepath.Dir(exe), "store.json")
	all := map[string]creds{}
	if b, err := os.ReadFile(file); err == nil {
		if err := json.Unmarshal(b, &all); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	switch os.Args[1] {
	case "store":
		var c creds
		if err := json.Unmarshal(in, &c); err != nil {
			return err
		}
		if c.ServerURL == "" {
			return errors.New("no credentials server URL")
		}
		all[c.ServerURL] = c
	case "get":
		c, ok := all[strings.TrimSpace(string(in))]
		if !ok {
			return errors.New("credentials not found in native keychain")
		}
		return json.NewEncoder(os.Stdout).Encode(c)
	case "erase":
		delete(all, strings.TrimSpace(string(in)))
	case "list":
		out := map[string]string{}
		for k, c := range all {
			out[k] = c.Username
		}
		return json.NewEncoder(os.Stdout).Encode(out)
	default:
		return fmt.Errorf("unknown action %q", os.Args[1])
	}
	b, err := json.Marshal(all)
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o600)
}
