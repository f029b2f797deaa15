package distclient

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// quotaRe reads the numbers of the quota refusal hubctl serve sends ("namespace alice
// would exceed its storage quota of 10240 bytes: 2197 bytes used, blob of 1055669
// bytes"), to say them in human sizes.
var quotaRe = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`namespace (\S+) would exceed its storage quota of (\d+) bytes: (\d+) bytes used, blob of (\d+) bytes`)
})

// Summary is the error in one short line for people: what was refused, who was
// logged in, and what to do, without methods, URLs or digests (Error has those, for
// --debug).
func (e *Error) Summary() string {
	if q := e.quotaSummary(); q != "" {
		return q
	}
	repo := e.Repository
	if repo == "" {
		repo = e.Host
	}
	switch e.Status {
	case http.StatusUnauthorized:
		if e.User == "" {
			return fmt.Sprintf("unauthorized: %s needs a login to %s %s: run 'hubctl login %s'", e.Host, e.actionVerb(), repo, e.Host)
		}
		return fmt.Sprintf("unauthorized: %s refused the login of %s: run 'hubctl login %s' again", e.Host, e.User, e.Host)
	case http.StatusForbidden:
		if e.User == "" {
			return fmt.Sprintf("denied: anonymous users may not %s %s: run 'hubctl login %s'", e.actionVerb(), repo, e.Host)
		}
		if e.Action == "list" {
			return fmt.Sprintf("denied: logged in to %s as %s, who may not list its repositories; name one instead ('hubctl tags %s/REPO')", e.Host, e.User, e.Host)
		}
		return fmt.Sprintf("denied: logged in to %s as %s, who may not %s %s; check the name, or ask for %s access", e.Host, e.User, e.actionVerb(), repo, e.needed())
	}
	s := fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status))
	if len(e.Codes) > 0 {
		s += ": " + e.Codes[0].Code
		if e.Codes[0].Message != "" {
			s += " " + e.Codes[0].Message
		}
	}
	if repo != "" {
		s += " (" + repo + ")"
	}
	return s
}

// quotaSummary says a quota refusal with human sizes, "" for other errors.
func (e *Error) quotaSummary() string {
	for _, d := range e.Codes {
		if !strings.Contains(d.Message, "quota") {
			continue
		}
		m := quotaRe().FindStringSubmatch(d.Message)
		if m == nil {
			return "storage quota exceeded: " + d.Message
		}
		limit, _ := strconv.ParseUint(m[2], 10, 64)
		used, _ := strconv.ParseUint(m[3], 10, 64)
		blob, _ := strconv.ParseUint(m[4], 10, 64)
		return fmt.Sprintf("storage quota exceeded: namespace %s uses %s of its %s quota, and a blob of %s does not fit; delete images (then hubctl gc on the host) or ask an admin to raise it (hubctl quota set %s SIZE)",
			m[1], ibytes(used), ibytes(limit), ibytes(blob), m[1])
	}
	return ""
}

// actionVerb is what the request tried, in words: "push to", "delete from", "pull".
func (e *Error) actionVerb() string {
	switch e.Action {
	case "push":
		return "push to"
	case "delete":
		return "delete from"
	case "list":
		return "list the repositories of"
	}
	return "pull"
}

// needed is the right the refused request needed.
func (e *Error) needed() string {
	switch e.Action {
	case "push":
		return "write"
	case "delete":
		return "admin"
	}
	return "read"
}

// actionOf is the strongest action the scopes of a request ask for.
func actionOf(scopes []string) string {
	action := "pull"
	for _, s := range scopes {
		if strings.HasPrefix(s, "registry:catalog:") {
			return "list"
		}
		_, actions, _ := cutLast(s, ":")
		for _, a := range strings.Split(actions, ",") {
			switch a {
			case "delete", "*":
				return "delete"
			case "push":
				action = "push"
			}
		}
	}
	return action
}

// repositoryOf is the repository named in a /v2/ path (or URL), "" when none is.
func repositoryOf(path string) string {
	if i := strings.Index(path, "/v2/"); i >= 0 {
		path = path[i+len("/v2/"):]
	} else {
		return ""
	}
	for _, kw := range []string{"/blobs/", "/manifests/", "/tags/", "/referrers/"} {
		if i := strings.LastIndex(path, kw); i > 0 {
			return path[:i]
		}
	}
	return ""
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// ibytes is n in binary units with one decimal ("10.0 KiB"), as the progress views
// write sizes.
func ibytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
