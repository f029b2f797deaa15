package proxy

import (
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults of a deploy request's zero fields; the deploy spec documents the same.
const (
	DefaultHealthPath      = "/"
	DefaultHealthInterval  = time.Second
	DefaultHealthTimeout   = 5 * time.Second
	DefaultHealthThreshold = 2
	DefaultDeployTimeout   = time.Minute
	DefaultDrainTimeout    = 30 * time.Second
)

// Bounds of a deploy request.
const (
	MaxTargets   = 64
	MaxHosts     = 32
	maxTimeout   = time.Hour
	minInterval  = 10 * time.Millisecond
	maxPathBytes = 1024
)

// HealthCheck is how a target is judged: GET Path every Interval, each answer within
// Timeout; Threshold answers in a row with a status of 200–399 make it healthy, and
// once serving, Threshold failures in a row make it unhealthy (no requests) until it
// passes again.
type HealthCheck struct {
	Path      string   `json:"path"`
	Interval  Duration `json:"interval"`
	Timeout   Duration `json:"timeout"`
	Threshold int      `json:"threshold"`
}

// DeployRequest is the new state of one service.
type DeployRequest struct {
	// Hosts are the request hosts (names, without port) routed to the service; none
	// makes it the service of every host no other service names.
	Hosts []string `json:"hosts,omitempty"`
	// Targets are the tasks' HOST:PORT, reached over plain HTTP.
	Targets []string    `json:"targets"`
	Health  HealthCheck `json:"health"`
	// DeployTimeout bounds the wait for the new targets to become healthy.
	DeployTimeout Duration `json:"deploy_timeout,omitempty"`
	// DrainTimeout bounds the wait for requests in flight on the old targets.
	DrainTimeout Duration `json:"drain_timeout,omitempty"`
}

// Duration is a time.Duration written as Go writes it ("1.5s") in JSON.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes "1.5s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "1.5s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"5s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (write 500ms, 5s or 1m)", s)
	}
	*d = Duration(v)
	return nil
}

// ServiceNameRe is what a service name may be: lower-case letters, digits, '.', '_'
// and '-', starting and ending with a letter or digit, at most 64 characters.
var ServiceNameRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$`)

var hostLabelRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// CheckServiceName returns an error when name is not a valid service name.
func CheckServiceName(name string) error {
	if !ServiceNameRe.MatchString(name) {
		return fmt.Errorf("%q is not a valid service name: lower-case letters, digits, '.', '_' and '-', starting and ending with a letter or digit, at most 64 characters: %w", clip(name), ErrInvalid)
	}
	return nil
}

// CheckHost returns an error when h is not a DNS name the proxy can route.
func CheckHost(h string) error {
	if len(h) > 253 || h == "" {
		return fmt.Errorf("host %q is not a DNS name: %w", clip(h), ErrInvalid)
	}
	for l := range strings.SplitSeq(h, ".") {
		if !hostLabelRe.MatchString(l) {
			return fmt.Errorf("host %q is not a DNS name (lower-case labels of letters, digits and '-', without port): %w", clip(h), ErrInvalid)
		}
	}
	return nil
}

// CheckTarget returns an error when t is not HOST:PORT.
func CheckTarget(t string) error {
	host, port, err := net.SplitHostPort(t)
	if err != nil || host == "" || strings.ContainsAny(host, "/@?#% ") {
		return fmt.Errorf("target %q is not HOST:PORT: %w", clip(t), ErrInvalid)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("target %q: the port must be 1 to 65535: %w", clip(t), ErrInvalid)
	}
	return nil
}

// normalize checks the request and fills defaults.
func (r DeployRequest) normalize(name string) (DeployRequest, error) {
	if err := CheckServiceName(name); err != nil {
		return r, err
	}
	if len(r.Targets) == 0 {
		return r, fmt.Errorf("service %s: no targets: %w", name, ErrInvalid)
	}
	if len(r.Targets) > MaxTargets {
		return r, fmt.Errorf("service %s: %d targets; at most %d: %w", name, len(r.Targets), MaxTargets, ErrInvalid)
	}
	if len(r.Hosts) > MaxHosts {
		return r, fmt.Errorf("service %s: %d hosts; at most %d: %w", name, len(r.Hosts), MaxHosts, ErrInvalid)
	}
	r.Targets = slices.Clone(r.Targets)
	for i, t := range r.Targets {
		if err := CheckTarget(t); err != nil {
			return r, err
		}
		if slices.Contains(r.Targets[:i], t) {
			return r, fmt.Errorf("target %s is given twice: %w", t, ErrInvalid)
		}
	}
	hosts := make([]string, 0, len(r.Hosts))
	for _, h := range r.Hosts {
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		if err := CheckHost(h); err != nil {
			return r, err
		}
		if slices.Contains(hosts, h) {
			return r, fmt.Errorf("host %s is given twice: %w", h, ErrInvalid)
		}
		hosts = append(hosts, h)
	}
	r.Hosts = hosts
	hc := &r.Health
	if hc.Path == "" {
		hc.Path = DefaultHealthPath
	}
	if !strings.HasPrefix(hc.Path, "/") || len(hc.Path) > maxPathBytes || strings.ContainsAny(hc.Path, " \t\r\n#") {
		return r, fmt.Errorf("health path %q must start with / and hold no spaces or '#' (at most %d bytes): %w", clip(hc.Path), maxPathBytes, ErrInvalid)
	}
	for _, d := range []struct {
		v    *Duration
		def  time.Duration
		min  time.Duration
		what string
	}{
		{&hc.Interval, DefaultHealthInterval, minInterval, "health interval"},
		{&hc.Timeout, DefaultHealthTimeout, minInterval, "health timeout"},
		{&r.DeployTimeout, DefaultDeployTimeout, minInterval, "deploy timeout"},
		{&r.DrainTimeout, DefaultDrainTimeout, 0, "drain timeout"},
	} {
		if *d.v == 0 {
			*d.v = Duration(d.def)
		}
		if d.v.D() < d.min || d.v.D() > maxTimeout {
			return r, fmt.Errorf("%s %s must be between %s and %s: %w", d.what, d.v.D(), d.min, maxTimeout, ErrInvalid)
		}
	}
	if hc.Threshold == 0 {
		hc.Threshold = DefaultHealthThreshold
	}
	if hc.Threshold < 1 || hc.Threshold > 100 {
		return r, fmt.Errorf("health threshold %d must be between 1 and 100: %w", hc.Threshold, ErrInvalid)
	}
	return r, nil
}

// clip shortens a value quoted in an error.
func clip(s string) string {
	if r := []rune(s); len(r) > 60 {
		return string(r[:57]) + "…"
	}
	return s
}
