package layering

import (
	"context"
	"net/url"
	"os/exec"
	"strings"
	"time"
)

// GitInfo returns the remote URL (without credentials) and the commit of the git
// checkout dir is in, empty when it is not one or git is not installed: the image's
// source and revision annotations.
func GitInfo(ctx context.Context, dir string) (source, revision string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		return "", ""
	}
	revision = strings.TrimSpace(string(out))
	if out, err := exec.CommandContext(ctx, "git", "-C", dir, "config", "--get", "remote.origin.url").Output(); err == nil {
		source = strings.TrimSpace(string(out))
		if u, err := url.Parse(source); err == nil && u.User != nil {
			u.User = nil
			source = u.String()
		}
	}
	return source, revision
}
