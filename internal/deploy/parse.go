package deploy

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"gopkg.in/yaml.v3"

	"github.com/hubctl/hubctl/internal/deploy/proxy"
	"github.com/hubctl/hubctl/internal/tlsconf"
	"github.com/hubctl/hubctl/internal/yamlstrict"
)

var (
	envNameRe    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	hostNameRe   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)
	volumeNameRe = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)
	chartNameRe  = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$`)
	dns1123Re    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,51}[a-z0-9])?$`)
	valuePathRe  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$`)
	labelKeyRe   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._/-]{0,126}[A-Za-z0-9])?$`)
	sshUserRe    = regexp.MustCompile(`^[a-z_][a-z0-9_.-]{0,31}$`)
)

// ReservedLabelPrefix marks the labels hubctl sets on what it creates (service,
// version, task); a spec may not set them.
const ReservedLabelPrefix = "dev.hubctl."

// Parse decodes and validates a deploy file and fills its defaults. Its error, when
// not nil, is Errors: every problem found, in source order, each at its line and
// column.
func Parse(src []byte) (*Spec, error) {
	if len(src) > MaxFileSize {
		return nil, Errors{{Pos: Pos{Line: 1, Col: 1}, Msg: fmt.Sprintf("the file is larger than %d bytes (1 MiB), the most a deploy file may be", MaxFileSize)}}
	}
	root, err := parseYAML(src)
	if err != nil {
		return nil, err
	}
	d := &decoder{}
	d.errs = append(d.errs, yamlstrict.CheckTree(root)...)
	if len(d.errs) > 0 {
		return nil, d.errs.Sorted()
	}
	s := d.spec(root)
	if len(d.errs) > 0 {
		return nil, d.errs.Sorted()
	}
	return s, nil
}

func (d *decoder) spec(n *yaml.Node) *Spec {
	s := &Spec{}
	var svcNode, hostsNode, kubeNode, accNode *yaml.Node
	if !d.fields(n, "the deploy file", map[string]func(v *yaml.Node){
		"service":     func(v *yaml.Node) { svcNode = v },
		"hosts":       func(v *yaml.Node) { hostsNode = v },
		"kubernetes":  func(v *yaml.Node) { kubeNode = v },
		"accessories": func(v *yaml.Node) { accNode = v },
	}) {
		return nil
	}
	if svcNode == nil {
		d.errf(n, "the deploy file has no service")
		return s
	}
	s.Service = d.service(svcNode)
	if kubeNode != nil {
		s.Kubernetes = d.kubernetes(kubeNode, s.Service.Name)
		if hostsNode != nil {
			d.errf(hostsNode, "hosts and kubernetes exclude each other: a service runs on Docker hosts or on Kubernetes")
		}
		if accNode != nil {
			d.errf(accNode, "accessories run on Docker hosts; with kubernetes, deploy them with their own charts")
		}
		d.kubeOnly(svcNode)
		return s
	}
	if hostsNode != nil {
		s.Hosts = d.hosts(hostsNode)
	} else {
		s.Hosts = []Host{{Name: LocalHost, Replicas: -1, Pos: pos(n)}}
	}
	if accNode != nil {
		s.Accessories = d.accessories(accNode, s.Hosts)
	}
	d.checkPlacement(s, hostsNode)
	return s
}

// kubeOnly refuses the service keys that only Docker hosts use: with kubernetes the
// chart's values say them.
func (d *decoder) kubeOnly(svc *yaml.Node) {
	for _, kv := range d.pairs(svc, "service") {
		switch k := kv[0].Value; k {
		case "name", "image":
		default:
			d.errf(kv[0], "service: %s is for Docker hosts; with kubernetes, set it in the chart's values", k)
		}
	}
}

func (d *decoder) service(n *yaml.Node) Service {
	s := Service{
		Replicas:      DefaultReplicas,
		StopTimeout:   DefaultStopTimeout,
		DrainTimeout:  DefaultDrainTimeout,
		DeployTimeout: DefaultDeployTimeout,
		Health:        HealthCheck{Interval: DefaultHealthInterval, Timeout: DefaultHealthTimeout, Threshold: DefaultHealthThreshold},
		Pos:           pos(n),
	}
	var sawName, sawImage bool
	var healthNode *yaml.Node
	if !d.fields(n, "service", map[string]func(v *yaml.Node){
		"name":          func(v *yaml.Node) { sawName = true; s.Name = d.serviceName(v, "service: name") },
		"image":         func(v *yaml.Node) { sawImage = true; s.Image = d.image(v, "service: image") },
		"replicas":      func(v *yaml.Node) { s.Replicas, _ = d.integer(v, "service: replicas", 0, MaxReplicas) },
		"command":       func(v *yaml.Node) { s.Command = d.command(v, "service: command") },
		"env":           func(v *yaml.Node) { s.Env = d.env(v, "service: env") },
		"secrets":       func(v *yaml.Node) { s.Secrets = d.secrets(v, "service: secrets") },
		"ports":         func(v *yaml.Node) { s.Ports = d.ports(v, "service: ports") },
		"volumes":       func(v *yaml.Node) { s.Volumes = d.volumes(v, "service: volumes") },
		"labels":        func(v *yaml.Node) { s.Labels = d.labels(v, "service: labels") },
		"resources":     func(v *yaml.Node) { s.Resources = d.resources(v, "service: resources") },
		"proxy":         func(v *yaml.Node) { s.Proxy = d.proxy(v) },
		"healthcheck":   func(v *yaml.Node) { healthNode = v },
		"stop-timeout":  func(v *yaml.Node) { s.StopTimeout, _ = d.duration(v, "service: stop-timeout", time.Second, maxTimeout) },
		"drain-timeout": func(v *yaml.Node) { s.DrainTimeout, _ = d.duration(v, "service: drain-timeout", 0, maxTimeout) },
		"deploy-timeout": func(v *yaml.Node) {
			s.DeployTimeout, _ = d.duration(v, "service: deploy-timeout", time.Second, maxTimeout)
		},
	}) {
		return s
	}
	if !sawName {
		d.errf(n, "service has no name")
	}
	if !sawImage {
		d.errf(n, "service has no image")
	}
	if healthNode != nil {
		d.health(healthNode, &s.Health)
		if s.Health.Path != "" && s.Proxy == nil {
			d.errf(healthNode, "service: healthcheck: path is checked on proxy.port; set proxy.port, or check with command")
		}
	}
	if s.Proxy != nil && s.Health.Path == "" && s.Health.Command == nil {
		s.Health.Path = DefaultHealthPath
	}
	if s.Health.Timeout > s.Health.Interval*time.Duration(max(1, s.Health.Threshold))+s.DeployTimeout {
		d.errf(n, "service: the health check's timeout %s is longer than the deploy timeout %s allows", s.Health.Timeout, s.DeployTimeout)
	}
	d.noDup(s.Env, s.Secrets)
	return s
}

func (d *decoder) serviceName(n *yaml.Node, what string) string {
	s, ok := d.str(n, what)
	if !ok {
		return ""
	}
	if !proxy.ServiceNameRe.MatchString(s) {
		d.errf(n, "%s %q is not a valid name: lower-case letters, digits, '.', '_' and '-', starting and ending with a letter or digit, at most 64 characters", what, yamlstrict.Clip(s))
	}
	return s
}

func (d *decoder) image(n *yaml.Node, what string) string {
	s, ok := d.str(n, what)
	if !ok {
		return ""
	}
	if _, err := name.ParseReference(s, name.StrictValidation); err != nil {
		d.errf(n, "%s %q is not an image reference (HOST/REPOSITORY:TAG or @sha256:…): %v", what, yamlstrict.Clip(s), err)
	}
	return s
}

// command reads a list of arguments, or a string split at spaces (no shell: the
// image may have none).
func (d *decoder) command(n *yaml.Node, what string) []string {
	if n.Kind == yaml.ScalarNode && !yamlstrict.IsNull(n) {
		f := strings.Fields(n.Value)
		if len(f) == 0 {
			d.errf(n, "%s is empty", what)
		}
		return f
	}
	args, _ := d.strings(n, what)
	if len(args) == 0 {
		d.errf(n, "%s is empty", what)
	}
	return args
}

func (d *decoder) env(n *yaml.Node, what string) []EnvVar {
	var out []EnvVar
	pairs := d.pairs(n, what)
	if len(pairs) > maxListLen {
		d.errf(n, "%s: %d entries; at most %d", what, len(pairs), maxListLen)
		return nil
	}
	for _, kv := range pairs {
		k := kv[0].Value
		switch {
		case !envNameRe.MatchString(k):
			d.errf(kv[0], "%s: %q is not a valid variable name: letters, digits and '_', not starting with a digit", what, yamlstrict.Clip(k))
			continue
		case strings.HasPrefix(k, "HUBCTL_"):
			d.errf(kv[0], "%s: %s: names starting with HUBCTL_ are set by hubctl", what, k)
			continue
		}
		if v, ok := d.str(kv[1], what+" "+k); ok {
			if strings.ContainsRune(v, 0) {
				d.errf(kv[1], "%s %s: a value may not hold a NUL byte", what, k)
				continue
			}
			out = append(out, EnvVar{Name: k, Value: v, Pos: pos(kv[1])})
		}
	}
	return out
}

func (d *decoder) secrets(n *yaml.Node, what string) []Secret {
	names, ps := d.strings(n, what)
	var out []Secret
	for i, s := range names {
		switch {
		case !envNameRe.MatchString(s):
			d.errAt(ps[i], "%s: %q is not a valid secret name: letters, digits and '_', not starting with a digit (it becomes the variable's name)", what, yamlstrict.Clip(s))
		case strings.HasPrefix(s, "HUBCTL_"):
			d.errAt(ps[i], "%s: %s: names starting with HUBCTL_ are set by hubctl", what, s)
		case slices.ContainsFunc(out, func(x Secret) bool { return x.Name == s }):
			d.errAt(ps[i], "%s: %s is given twice", what, s)
		default:
			out = append(out, Secret{Name: s, Pos: ps[i]})
		}
	}
	return out
}

// noDup refuses a name both in env and secrets: which would win is not obvious.
func (d *decoder) noDup(env []EnvVar, secrets []Secret) {
	for _, s := range secrets {
		if slices.ContainsFunc(env, func(e EnvVar) bool { return e.Name == s.Name }) {
			d.errAt(s.Pos, "secret %s is also set in env: keep one", s.Name)
		}
	}
}

// ports reads "8080", "8080/udp", "9090:8080", "127.0.0.1:9090:8080/tcp".
func (d *decoder) ports(n *yaml.Node, what string) []Port {
	items, ok := d.list(n, what)
	if !ok {
		return nil
	}
	var out []Port
	for _, it := range items {
		s, ok := d.str(it, what+" entry")
		if !ok {
			continue
		}
		p, err := parsePort(s)
		if err != nil {
			d.errf(it, "%s: %q: %v", what, yamlstrict.Clip(s), err)
			continue
		}
		p.Pos = pos(it)
		for _, q := range out {
			if q.ContainerPort == p.ContainerPort && q.Protocol == p.Protocol {
				d.errf(it, "%s: container port %d/%s is given twice", what, p.ContainerPort, p.Protocol)
			}
			if p.HostPort != 0 && q.HostPort == p.HostPort && q.Protocol == p.Protocol && (q.HostIP == p.HostIP || q.HostIP == "" || p.HostIP == "") {
				d.errf(it, "%s: host port %d/%s is published twice", what, p.HostPort, p.Protocol)
			}
		}
		out = append(out, p)
	}
	return out
}

func parsePort(s string) (Port, error) {
	p := Port{Protocol: "tcp"}
	if base, proto, ok := strings.Cut(s, "/"); ok {
		if proto != "tcp" && proto != "udp" {
			return p, fmt.Errorf("the protocol is tcp or udp, not %q", yamlstrict.Clip(proto))
		}
		s, p.Protocol = base, proto
	}
	port := func(v string) (int, error) {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			return 0, fmt.Errorf("%q is not a port (1 to 65535)", yamlstrict.Clip(v))
		}
		return n, nil
	}
	var err error
	var hostIP, hostPort, ctr string
	if i := strings.LastIndex(s, ":"); i >= 0 {
		ctr = s[i+1:]
		rest := s[:i]
		if j := strings.LastIndex(rest, ":"); j >= 0 {
			hostIP, hostPort = strings.Trim(rest[:j], "[]"), rest[j+1:]
			if net.ParseIP(hostIP) == nil {
				return p, fmt.Errorf("%q is not an IP address: write IP:HOSTPORT:PORT", yamlstrict.Clip(hostIP))
			}
		} else {
			hostPort = rest
		}
	} else {
		ctr = s
	}
	if p.ContainerPort, err = port(ctr); err != nil {
		return p, err
	}
	if hostPort != "" {
		if p.HostPort, err = port(hostPort); err != nil {
			return p, err
		}
	}
	p.HostIP = hostIP
	return p, nil
}

// volumes reads "NAME:/path[:ro]" (a named volume) and "/host/path:/path[:ro]".
func (d *decoder) volumes(n *yaml.Node, what string) []Volume {
	items, ok := d.list(n, what)
	if !ok {
		return nil
	}
	var out []Volume
	for _, it := range items {
		s, ok := d.str(it, what+" entry")
		if !ok {
			continue
		}
		parts := strings.Split(s, ":")
		if len(parts) == 3 {
			if parts[2] != "ro" && parts[2] != "rw" {
				d.errf(it, "%s: %q: the mode is ro or rw, not %q", what, yamlstrict.Clip(s), yamlstrict.Clip(parts[2]))
				continue
			}
		}
		if len(parts) < 2 || len(parts) > 3 {
			d.errf(it, "%s: %q: write NAME:/path or /host/path:/path, with :ro to mount read-only", what, yamlstrict.Clip(s))
			continue
		}
		v := Volume{Source: parts[0], Target: parts[1], ReadOnly: len(parts) == 3 && parts[2] == "ro", Pos: pos(it)}
		switch {
		case strings.HasPrefix(v.Source, "/"):
			if !cleanAbs(v.Source) {
				d.errf(it, "%s: %q: the host path must be absolute and clean (no .. or //)", what, yamlstrict.Clip(s))
				continue
			}
		case volumeNameRe.MatchString(v.Source):
			v.Named = true
		default:
			d.errf(it, "%s: %q: %q is neither an absolute host path nor a volume name (letters, digits, '_', '.', '-')", what, yamlstrict.Clip(s), yamlstrict.Clip(v.Source))
			continue
		}
		if !cleanAbs(v.Target) || v.Target == "/" {
			d.errf(it, "%s: %q: the mount point must be an absolute, clean path other than /", what, yamlstrict.Clip(s))
			continue
		}
		if slices.ContainsFunc(out, func(o Volume) bool { return o.Target == v.Target }) {
			d.errf(it, "%s: %s is mounted twice", what, v.Target)
			continue
		}
		out = append(out, v)
	}
	return out
}

func cleanAbs(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.Contains(p, "//") || (len(p) > 1 && strings.HasSuffix(p, "/")) {
		return false
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

func (d *decoder) labels(n *yaml.Node, what string) map[string]string {
	pairs := d.pairs(n, what)
	if len(pairs) > maxListLen {
		d.errf(n, "%s: %d entries; at most %d", what, len(pairs), maxListLen)
		return nil
	}
	out := map[string]string{}
	for _, kv := range pairs {
		k := kv[0].Value
		switch {
		case !labelKeyRe.MatchString(k):
			d.errf(kv[0], "%s: %q is not a valid label key: letters, digits, '.', '_', '/' and '-', at most 128 characters", what, yamlstrict.Clip(k))
			continue
		case strings.HasPrefix(k, ReservedLabelPrefix):
			d.errf(kv[0], "%s: %s: labels starting with %s are set by hubctl", what, k, ReservedLabelPrefix)
			continue
		}
		if v, ok := d.str(kv[1], what+" "+k); ok {
			if len(v) > 4096 {
				d.errf(kv[1], "%s %s: at most 4096 bytes", what, k)
				continue
			}
			out[k] = v
		}
	}
	return out
}

// resources reads {cpu, memory}: cpu as 0.5, 2 or 500m; memory as 512Mi, 2Gi or
// 256M (as workflows write them).
func (d *decoder) resources(n *yaml.Node, what string) Resources {
	var r Resources
	d.fields(n, what, map[string]func(v *yaml.Node){
		"cpu": func(v *yaml.Node) {
			s, ok := d.str(v, what+": cpu")
			if !ok {
				return
			}
			if r.MilliCPU = yamlstrict.MilliCPU(s); r.MilliCPU <= 0 || r.MilliCPU > 256_000 {
				d.errf(v, "%s: cpu %q: write CPUs as 0.5, 2 or 500m (at most 256)", what, yamlstrict.Clip(s))
			}
		},
		"memory": func(v *yaml.Node) {
			s, ok := d.str(v, what+": memory")
			if !ok {
				return
			}
			if r.Memory = yamlstrict.Bytes(s); r.Memory < 6<<20 || r.Memory > 1<<40 {
				d.errf(v, "%s: memory %q: write it as 512Mi, 2Gi or 256M (between 6Mi, Docker's least, and 1Ti)", what, yamlstrict.Clip(s))
			}
		},
	})
	return r
}

func (d *decoder) proxy(n *yaml.Node) *Proxy {
	p := &Proxy{}
	var sawPort bool
	if !d.fields(n, "service: proxy", map[string]func(v *yaml.Node){
		"port": func(v *yaml.Node) { sawPort = true; p.Port, _ = d.integer(v, "service: proxy: port", 1, 65535) },
		"hosts": func(v *yaml.Node) {
			hs, ps := d.strings(v, "service: proxy: hosts")
			for i, h := range hs {
				h = strings.ToLower(strings.TrimSuffix(h, "."))
				if err := proxy.CheckHost(h); err != nil {
					d.errAt(ps[i], "service: proxy: hosts: %q is not a DNS name (no scheme, port or path)", yamlstrict.Clip(hs[i]))
					continue
				}
				if slices.Contains(p.Hosts, h) {
					d.errAt(ps[i], "service: proxy: hosts: %s is given twice", h)
					continue
				}
				p.Hosts = append(p.Hosts, h)
			}
			if len(p.Hosts) > proxy.MaxHosts {
				d.errf(v, "service: proxy: hosts: at most %d", proxy.MaxHosts)
			}
		},
		"tls": func(v *yaml.Node) { p.TLS = d.proxyTLS(v) },
	}) {
		return nil
	}
	if !sawPort {
		d.errf(n, "service: proxy has no port: the tasks' HTTP port")
	}
	return p
}

func (d *decoder) proxyTLS(n *yaml.Node) *ProxyTLS {
	const what = "service: proxy: tls"
	t := &ProxyTLS{}
	if !d.fields(n, what, map[string]func(v *yaml.Node){
		"cert": func(v *yaml.Node) { t.Cert, _ = d.str(v, what+": cert") },
		"key":  func(v *yaml.Node) { t.Key, _ = d.str(v, what+": key") },
		"acme": func(v *yaml.Node) { t.ACME = d.acme(v) },
	}) {
		return t
	}
	switch {
	case t.ACME != nil && (t.Cert != "" || t.Key != ""):
		d.errf(n, "%s: cert and key, or acme: certificate files or ACME, not both", what)
	case t.ACME == nil && (t.Cert == "" || t.Key == ""):
		d.errf(n, "%s needs cert and key (PEM files), or acme", what)
	}
	return t
}

func (d *decoder) acme(n *yaml.Node) *ACME {
	const what = "service: proxy: tls: acme"
	a := &ACME{}
	if !d.fields(n, what, map[string]func(v *yaml.Node){
		"domains": func(v *yaml.Node) {
			ds, ps := d.strings(v, what+": domains")
			for i, s := range ds {
				s = strings.ToLower(strings.TrimSuffix(s, "."))
				if tlsconf.CheckACMEDomain(s) != nil || proxy.CheckHost(s) != nil {
					d.errAt(ps[i], "%s: domains: %q is not a DNS name with a dot (no scheme, port, path or wildcard)", what, yamlstrict.Clip(ds[i]))
					continue
				}
				if slices.Contains(a.Domains, s) {
					d.errAt(ps[i], "%s: domains: %s is given twice", what, s)
					continue
				}
				a.Domains = append(a.Domains, s)
			}
			if len(a.Domains) > proxy.MaxHosts {
				d.errf(v, "%s: domains: at most %d", what, proxy.MaxHosts)
			}
		},
		"directory": func(v *yaml.Node) {
			s, ok := d.str(v, what+": directory")
			if ok {
				if tlsconf.CheckACMEDirectory(s) != nil || len(s) > 2048 {
					d.errf(v, "%s: directory %q must be an https URL", what, yamlstrict.Clip(s))
				}
			}
			a.Directory = s
		},
		"email": func(v *yaml.Node) {
			s, ok := d.str(v, what+": email")
			if ok && (len(s) > 254 || !strings.Contains(s, "@") || strings.ContainsAny(s, " \t\r\n,<>")) {
				d.errf(v, "%s: email %q is not an address", what, yamlstrict.Clip(s))
			}
			a.Email = s
		},
	}) {
		return a
	}
	if len(a.Domains) == 0 {
		d.errf(n, "%s needs domains: the names to get certificates for", what)
	}
	return a
}

func (d *decoder) health(n *yaml.Node, h *HealthCheck) {
	d.fields(n, "service: healthcheck", map[string]func(v *yaml.Node){
		"path": func(v *yaml.Node) {
			s, ok := d.str(v, "service: healthcheck: path")
			if ok && (!strings.HasPrefix(s, "/") || len(s) > 1024 || strings.ContainsAny(s, " \t\r\n#")) {
				d.errf(v, "service: healthcheck: path %q must start with / and hold no spaces or '#'", yamlstrict.Clip(s))
			}
			h.Path = s
		},
		"command": func(v *yaml.Node) { h.Command = d.command(v, "service: healthcheck: command") },
		"interval": func(v *yaml.Node) {
			h.Interval, _ = d.duration(v, "service: healthcheck: interval", 100*time.Millisecond, 5*time.Minute)
		},
		"timeout": func(v *yaml.Node) {
			h.Timeout, _ = d.duration(v, "service: healthcheck: timeout", 100*time.Millisecond, 5*time.Minute)
		},
		"threshold": func(v *yaml.Node) { h.Threshold, _ = d.integer(v, "service: healthcheck: threshold", 1, 100) },
	})
	if h.Path != "" && h.Command != nil {
		d.errf(n, "service: healthcheck: give path or command, not both")
	}
}

func (d *decoder) hosts(n *yaml.Node) []Host {
	items, ok := d.list(n, "hosts")
	if !ok {
		return nil
	}
	if len(items) == 0 {
		d.errf(n, "hosts is empty: leave it out to deploy to the local engine")
	}
	if len(items) > MaxHostsList {
		d.errf(n, "hosts: at most %d", MaxHostsList)
		return nil
	}
	var out []Host
	for i, it := range items {
		what := fmt.Sprintf("hosts[%d]", i)
		h := Host{Replicas: -1, Pos: pos(it)}
		var sawName bool
		if !d.fields(it, what, map[string]func(v *yaml.Node){
			"name": func(v *yaml.Node) {
				sawName = true
				s, ok := d.str(v, what+": name")
				if ok && !hostNameRe.MatchString(s) {
					d.errf(v, "%s: name %q: lower-case letters, digits and '-', at most 32 characters", what, yamlstrict.Clip(s))
				}
				h.Name = s
			},
			"docker":    func(v *yaml.Node) { h.Docker = d.dockerURL(v, what+": docker") },
			"tls":       func(v *yaml.Node) { h.TLS = d.dockerTLS(v, what+": tls") },
			"replicas":  func(v *yaml.Node) { h.Replicas, _ = d.integer(v, what+": replicas", 0, MaxReplicas) },
			"env":       func(v *yaml.Node) { h.Env = d.env(v, what+": env") },
			"labels":    func(v *yaml.Node) { h.Labels = d.labels(v, what+": labels") },
			"resources": func(v *yaml.Node) { r := d.resources(v, what+": resources"); h.Resources = &r },
			"command":   func(v *yaml.Node) { h.Command = d.command(v, what+": command") },
		}) {
			continue
		}
		if !sawName {
			d.errf(it, "%s has no name", what)
		}
		if h.Docker == "" && sawName && h.Name != LocalHost {
			d.errf(it, "%s (%s) has no docker address: unix:///var/run/docker.sock, ssh://user@host or tcp://host:2376", what, h.Name)
		}
		if h.TLS != nil && !strings.HasPrefix(h.Docker, "tcp://") {
			d.errf(it, "%s: tls is for tcp:// engines", what)
		}
		if strings.HasPrefix(h.Docker, "tcp://") && h.TLS == nil {
			d.errf(it, "%s: a tcp:// engine needs tls (ca, cert, key): an engine's TCP port without TLS gives root on the host to anyone who reaches it", what)
		}
		if slices.ContainsFunc(out, func(o Host) bool { return o.Name == h.Name }) {
			d.errf(it, "%s: the name %s is given twice", what, h.Name)
		}
		out = append(out, h)
	}
	return out
}

func (d *decoder) dockerURL(n *yaml.Node, what string) string {
	s, ok := d.str(n, what)
	if !ok {
		return ""
	}
	u, err := url.Parse(s)
	bad := func(why string) string {
		d.errf(n, "%s %q: %s", what, yamlstrict.Clip(s), why)
		return s
	}
	if err != nil {
		return bad("not a URL: write unix:///var/run/docker.sock, ssh://user@host or tcp://host:2376")
	}
	switch u.Scheme {
	case "unix":
		if u.Host != "" || !cleanAbs(u.Path) {
			return bad("write unix:///absolute/path")
		}
	case "ssh":
		if u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return bad("write ssh://user@host or ssh://user@host:port")
		}
		if _, hasPw := u.User.Password(); hasPw {
			return bad("no password in the address: the engine over SSH uses your SSH keys or agent")
		}
		if u.User != nil && !sshUserRe.MatchString(u.User.Username()) {
			return bad("the user name is not valid")
		}
		if strings.HasPrefix(u.Hostname(), "-") || strings.HasPrefix(u.User.Username(), "-") {
			return bad("a host or user may not start with '-'")
		}
	case "tcp":
		if u.Hostname() == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") || u.User != nil {
			return bad("write tcp://host:port")
		}
	default:
		return bad("the scheme is unix://, ssh:// or tcp://")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return bad("the port must be 1 to 65535")
		}
	}
	return s
}

func (d *decoder) dockerTLS(n *yaml.Node, what string) *DockerTLS {
	t := &DockerTLS{}
	if d.fields(n, what, map[string]func(v *yaml.Node){
		"ca":   func(v *yaml.Node) { t.CA, _ = d.str(v, what+": ca") },
		"cert": func(v *yaml.Node) { t.Cert, _ = d.str(v, what+": cert") },
		"key":  func(v *yaml.Node) { t.Key, _ = d.str(v, what+": key") },
	}) && (t.CA == "" || t.Cert == "" || t.Key == "") {
		d.errf(n, "%s needs ca, cert and key (PEM files, as docker --tlsverify uses)", what)
	}
	return t
}

// checkPlacement checks that the replicas fit the hosts, and that ports published
// on a host are not asked of two tasks there.
func (d *decoder) checkPlacement(s *Spec, hostsNode *yaml.Node) {
	at := s.Service.Pos
	if hostsNode != nil {
		at = pos(hostsNode)
	}
	fixed, free := 0, 0
	for _, h := range s.Hosts {
		if h.Replicas >= 0 {
			fixed += h.Replicas
		} else {
			free++
		}
	}
	switch {
	case fixed > s.Service.Replicas:
		d.errAt(at, "the hosts' replicas add up to %d, more than service: replicas (%d)", fixed, s.Service.Replicas)
		return
	case fixed < s.Service.Replicas && free == 0:
		d.errAt(at, "the hosts' replicas add up to %d, fewer than service: replicas (%d), and no host takes the rest: leave replicas out on one", fixed, s.Service.Replicas)
		return
	}
	for i, n := range s.Placement() {
		if n < 2 {
			continue
		}
		for _, p := range s.Service.Ports {
			if p.HostPort != 0 {
				d.errAt(p.Pos, "service: ports: %d tasks on host %s cannot all publish port %d; route HTTP through proxy.port, or place one task per host", n, s.Hosts[i].Name, p.HostPort)
			}
		}
	}
}

func (d *decoder) kubernetes(n *yaml.Node, service string) *Kubernetes {
	k := &Kubernetes{ImagePath: DefaultImagePath, Timeout: DefaultKubeTimeout}
	var sawChart bool
	var chartNode *yaml.Node
	what := "kubernetes"
	if !d.fields(n, what, map[string]func(v *yaml.Node){
		"chart":   func(v *yaml.Node) { sawChart, chartNode = true, v; k.Chart, _ = d.str(v, what+": chart") },
		"repo":    func(v *yaml.Node) { k.Repo = d.httpURL(v, what+": repo") },
		"version": func(v *yaml.Node) { k.Version = d.token(v, what+": version") },
		"release": func(v *yaml.Node) {
			k.Release, _ = d.str(v, what+": release")
			if !dns1123Re.MatchString(k.Release) {
				d.errf(v, "%s: release %q: lower-case letters, digits and '-', at most 53 characters", what, yamlstrict.Clip(k.Release))
			}
		},
		"namespace": func(v *yaml.Node) {
			k.Namespace, _ = d.str(v, what+": namespace")
			if !dns1123Re.MatchString(k.Namespace) {
				d.errf(v, "%s: namespace %q: lower-case letters, digits and '-'", what, yamlstrict.Clip(k.Namespace))
			}
		},
		"context":    func(v *yaml.Node) { k.Context = d.token(v, what+": context") },
		"kubeconfig": func(v *yaml.Node) { k.Kubeconfig, _ = d.str(v, what+": kubeconfig") },
		"values": func(v *yaml.Node) {
			if v.Kind != yaml.MappingNode {
				d.errf(v, "%s: values must be a mapping, not %s", what, yamlstrict.Describe(v))
				return
			}
			d.pairs(v, what+": values") // keys given twice are errors here too
			if err := v.Decode(&k.Values); err != nil {
				d.errf(v, "%s: values: %v", what, err)
			}
		},
		"image-path": func(v *yaml.Node) {
			k.ImagePath, _ = d.str(v, what+": image-path")
			if !valuePathRe.MatchString(k.ImagePath) {
				d.errf(v, "%s: image-path %q: a dotted path of value names, such as image or app.image", what, yamlstrict.Clip(k.ImagePath))
			}
		},
		"timeout": func(v *yaml.Node) { k.Timeout, _ = d.duration(v, what+": timeout", time.Second, maxTimeout) },
	}) {
		return nil
	}
	if !sawChart {
		d.errf(n, "kubernetes has no chart")
		return k
	}
	switch {
	case k.Repo != "":
		if !chartNameRe.MatchString(k.Chart) {
			d.errf(chartNode, "%s: chart %q: with repo, the chart is a name in that repository", what, yamlstrict.Clip(k.Chart))
		}
	case strings.HasPrefix(k.Chart, "oci://"):
		if _, err := name.NewRepository(strings.TrimPrefix(k.Chart, "oci://"), name.StrictValidation); err != nil {
			d.errf(chartNode, "%s: chart %q is not oci://HOST/REPOSITORY/CHART: %v", what, yamlstrict.Clip(k.Chart), err)
		}
	default:
		d.errf(chartNode, "%s: chart %q: write oci://HOST/REPOSITORY/CHART (a hub's or any OCI registry's), or a chart name with repo: https://…", what, yamlstrict.Clip(k.Chart))
	}
	if k.Release == "" {
		k.Release = service
		if len(service) > 53 || !dns1123Re.MatchString(service) {
			d.errf(n, "%s: the service name %q cannot be a helm release name (lower-case letters, digits and '-', at most 53 characters): set release", what, yamlstrict.Clip(service))
		}
	}
	return k
}

func (d *decoder) httpURL(n *yaml.Node, what string) string {
	s, ok := d.str(n, what)
	if !ok {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		d.errf(n, "%s %q is not an http(s):// URL (without credentials: they come from hubctl login or helm's repository config)", what, yamlstrict.Clip(s))
	}
	return s
}

// token reads a short string without spaces or control characters.
func (d *decoder) token(n *yaml.Node, what string) string {
	s, ok := d.str(n, what)
	if ok && (len(s) > 253 || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f })) {
		d.errf(n, "%s %q: at most 253 characters, without spaces", what, yamlstrict.Clip(s))
	}
	return s
}

func (d *decoder) accessories(n *yaml.Node, hosts []Host) []Accessory {
	pairs := d.pairs(n, "accessories")
	if len(pairs) > 32 {
		d.errf(n, "accessories: at most 32")
		return nil
	}
	var out []Accessory
	for _, kv := range pairs {
		what := "accessories: " + yamlstrict.Clip(kv[0].Value)
		a := Accessory{Name: kv[0].Value, Pos: pos(kv[0])}
		if !proxy.ServiceNameRe.MatchString(a.Name) {
			d.errf(kv[0], "accessories: %q is not a valid name: lower-case letters, digits, '.', '_' and '-'", yamlstrict.Clip(a.Name))
		}
		var sawImage bool
		var hostNode *yaml.Node
		if !d.fields(kv[1], what, map[string]func(v *yaml.Node){
			"image":     func(v *yaml.Node) { sawImage = true; a.Image = d.image(v, what+": image") },
			"host":      func(v *yaml.Node) { hostNode = v; a.Host, _ = d.str(v, what+": host") },
			"command":   func(v *yaml.Node) { a.Command = d.command(v, what+": command") },
			"env":       func(v *yaml.Node) { a.Env = d.env(v, what+": env") },
			"secrets":   func(v *yaml.Node) { a.Secrets = d.secrets(v, what+": secrets") },
			"ports":     func(v *yaml.Node) { a.Ports = d.ports(v, what+": ports") },
			"volumes":   func(v *yaml.Node) { a.Volumes = d.volumes(v, what+": volumes") },
			"labels":    func(v *yaml.Node) { a.Labels = d.labels(v, what+": labels") },
			"resources": func(v *yaml.Node) { a.Resources = d.resources(v, what+": resources") },
		}) {
			continue
		}
		if !sawImage {
			d.errf(kv[1], "%s has no image", what)
		}
		if hostNode == nil && len(hosts) > 0 {
			a.Host = hosts[0].Name
		} else if hostNode != nil && !slices.ContainsFunc(hosts, func(h Host) bool { return h.Name == a.Host }) {
			d.errf(hostNode, "%s: host %q is not one of hosts", what, yamlstrict.Clip(a.Host))
		}
		d.noDup(a.Env, a.Secrets)
		out = append(out, a)
	}
	return out
}
