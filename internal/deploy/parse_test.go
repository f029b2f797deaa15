package deploy

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func mustParse(t *testing.T, src string) *Spec {
	t.Helper()
	s, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	return s
}

// TestParseDefaults: what a minimal file leaves out is filled in.
func TestParseDefaults(t *testing.T) {
	b, err := os.ReadFile("testdata/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := mustParse(t, string(b))
	svc := s.Service
	if svc.Name != "web" || svc.Image != "localhost:5000/acme/web:1.0" || svc.Replicas != 1 {
		t.Errorf("service = %+v", svc)
	}
	if svc.Proxy == nil || svc.Proxy.Port != 8080 || len(svc.Proxy.Hosts) != 0 {
		t.Errorf("proxy = %+v", svc.Proxy)
	}
	want := HealthCheck{Path: "/", Interval: time.Second, Timeout: 5 * time.Second, Threshold: 2}
	if svc.Health.Path != want.Path || svc.Health.Interval != want.Interval || svc.Health.Timeout != want.Timeout || svc.Health.Threshold != want.Threshold {
		t.Errorf("health = %+v, want %+v", svc.Health, want)
	}
	if svc.StopTimeout != 10*time.Second || svc.DrainTimeout != 30*time.Second || svc.DeployTimeout != time.Minute {
		t.Errorf("timeouts: stop %s drain %s deploy %s", svc.StopTimeout, svc.DrainTimeout, svc.DeployTimeout)
	}
	if len(s.Hosts) != 1 || s.Hosts[0].Name != LocalHost || s.Hosts[0].Docker != "" || s.Hosts[0].Replicas != -1 {
		t.Errorf("hosts = %+v; want the local engine", s.Hosts)
	}
	if p := s.Placement(); len(p) != 1 || p[0] != 1 {
		t.Errorf("placement = %v", p)
	}
}

// TestParseFull reads every key of the Docker example.
func TestParseFull(t *testing.T) {
	b, err := os.ReadFile("testdata/web.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := mustParse(t, string(b))
	svc := s.Service
	if strings.Join(svc.Command, " ") != "/web --listen :8080" {
		t.Errorf("command = %q", svc.Command)
	}
	if len(svc.Env) != 2 || svc.Env[1] != (EnvVar{Name: "FEATURE_X", Value: "true", Pos: Pos{Line: 9, Col: 16}}) {
		t.Errorf("env = %+v", svc.Env)
	}
	if len(svc.Secrets) != 2 || svc.Secrets[0].Name != "DATABASE_URL" {
		t.Errorf("secrets = %+v", svc.Secrets)
	}
	if len(svc.Ports) != 2 || svc.Ports[0].ContainerPort != 9090 || svc.Ports[0].HostPort != 0 ||
		svc.Ports[1] != (Port{HostIP: "127.0.0.1", HostPort: 9125, ContainerPort: 9125, Protocol: "udp", Pos: svc.Ports[1].Pos}) {
		t.Errorf("ports = %+v", svc.Ports)
	}
	if len(svc.Volumes) != 2 || !svc.Volumes[0].Named || svc.Volumes[1].Named || !svc.Volumes[1].ReadOnly {
		t.Errorf("volumes = %+v", svc.Volumes)
	}
	if svc.Resources.MilliCPU != 500 || svc.Resources.Memory != 256<<20 {
		t.Errorf("resources = %+v", svc.Resources)
	}
	if svc.Proxy.TLS == nil || svc.Proxy.TLS.Key != "/etc/hubctl/web.key" || len(svc.Proxy.Hosts) != 2 {
		t.Errorf("proxy = %+v", svc.Proxy)
	}
	if svc.Health.Threshold != 3 || svc.Health.Interval != 2*time.Second || svc.DrainTimeout != 45*time.Second || svc.DeployTimeout != 2*time.Minute {
		t.Errorf("health = %+v, drain %s", svc.Health, svc.DrainTimeout)
	}
	if len(s.Hosts) != 3 || s.Hosts[1].Docker != "ssh://deploy@edge-1.example.com" || s.Hosts[2].TLS == nil || s.Hosts[2].Resources.Memory != 512<<20 {
		t.Errorf("hosts = %+v", s.Hosts)
	}
	if p := s.Placement(); len(p) != 3 || p[0] != 1 || p[1] != 1 || p[2] != 1 {
		t.Errorf("placement = %v; want 1 1 1", p)
	}
	if len(s.Accessories) != 2 || s.Accessories[0].Name != "db" || s.Accessories[1].Host != "local" || len(s.Accessories[1].Command) != 3 {
		t.Errorf("accessories = %+v", s.Accessories)
	}
}

func TestParseKubernetes(t *testing.T) {
	b, err := os.ReadFile("testdata/kube.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := mustParse(t, string(b))
	k := s.Kubernetes
	if k == nil || k.Release != "web" || k.Namespace != "shop" || k.ImagePath != "app.image" || k.Timeout != 10*time.Minute {
		t.Fatalf("kubernetes = %+v", k)
	}
	if k.Values["replicaCount"] != 3 {
		t.Errorf("values = %v", k.Values)
	}
	if len(s.Hosts) != 0 {
		t.Errorf("hosts = %+v; want none with kubernetes", s.Hosts)
	}
}

func TestPlacement(t *testing.T) {
	for _, tt := range []struct {
		replicas int
		fixed    []int // -1: a share of the rest
		want     []int
	}{
		{1, []int{-1}, []int{1}},
		{5, []int{-1, -1}, []int{3, 2}},
		{5, []int{-1, 1, -1}, []int{2, 1, 2}},
		{4, []int{2, 2}, []int{2, 2}},
		{2, []int{-1, -1, -1}, []int{1, 1, 0}},
		{0, []int{-1}, []int{0}},
	} {
		s := &Spec{Service: Service{Replicas: tt.replicas}}
		for _, f := range tt.fixed {
			s.Hosts = append(s.Hosts, Host{Replicas: f})
		}
		if got := s.Placement(); !slices.Equal(got, tt.want) {
			t.Errorf("replicas %d over %v = %v, want %v", tt.replicas, tt.fixed, got, tt.want)
		}
	}
}

const base = `service:
  name: web
  image: localhost:5000/acme/web:1
  proxy: {port: 8080}
`

// TestParseErrors: each mistake is reported at its line:column with a message that
// says what to write instead.
func TestParseErrors(t *testing.T) {
	for _, tt := range []struct {
		name, src, want string
	}{
		{"empty", "", "1:1: the file is empty"},
		{"two documents", base + "---\n" + base, "a deploy file holds one YAML document"},
		{"syntax", "service: [", "YAML:"},
		{"unknown top", base + "servce: {}\n", `5:1: the deploy file: unknown key "servce" (did you mean "service"?)`},
		{"no service", "hosts: [{name: local}]\n", "1:1: the deploy file has no service"},
		{"unknown service key", base + "  replica: 2\n", `5:3: service: unknown key "replica" (did you mean "replicas"?)`},
		{"no image", "service:\n  name: web\n", "2:3: service has no image"},
		{"bad name", strings.Replace(base, "name: web", "name: Web!", 1), `2:9: service: name "Web!" is not a valid name`},
		{"bad image", strings.Replace(base, "localhost:5000/acme/web:1", "UPPER/Case", 1), "3:10: service: image \"UPPER/Case\" is not an image reference"},
		{"replicas range", base + "  replicas: 1000\n", "5:13: service: replicas must be between 0 and 100"},
		{"replicas type", base + "  replicas: two\n", "5:13: service: replicas must be a whole number"},
		{"env name", base + "  env: {1X: a}\n", `5:9: service: env: "1X" is not a valid variable name`},
		{"env reserved", base + "  env: {HUBCTL_TOKEN: a}\n", "names starting with HUBCTL_ are set by hubctl"},
		{"env map", base + "  env: [A=1]\n", "5:8: service: env must be a mapping, not a list"},
		{"secret twice", base + "  secrets: [A, A]\n", "5:16: service: secrets: A is given twice"},
		{"secret and env", base + "  env: {A: x}\n  secrets: [A]\n", "6:13: secret A is also set in env"},
		{"port", base + "  ports: [\"70000\"]\n", `5:11: service: ports: "70000": "70000" is not a port`},
		{"port proto", base + "  ports: [\"53/sctp\"]\n", "the protocol is tcp or udp"},
		{"port ip", base + "  ports: [\"localhost:80:80\"]\n", "is not an IP address"},
		{"port twice", base + "  ports: [\"9000:80\", \"9000:81\"]\n", "host port 9000/tcp is published twice"},
		{"volume", base + "  volumes: [\"data\"]\n", "write NAME:/path or /host/path:/path"},
		{"volume relative", base + "  volumes: [\"./x:/y\"]\n", "is neither an absolute host path nor a volume name"},
		{"volume dotdot", base + "  volumes: [\"/a/../etc:/y\"]\n", "absolute and clean"},
		{"volume root", base + "  volumes: [\"data:/\"]\n", "other than /"},
		{"volume mode", base + "  volumes: [\"data:/d:rx\"]\n", "the mode is ro or rw"},
		{"label reserved", base + "  labels: {dev.hubctl.service: x}\n", "labels starting with dev.hubctl. are set by hubctl"},
		{"cpu", base + "  resources: {cpu: lots}\n", `service: resources: cpu "lots"`},
		{"memory", base + "  resources: {memory: 1Ki}\n", "between 6Mi"},
		{"no proxy port", strings.Replace(base, "{port: 8080}", "{hosts: [a.example]}", 1), "4:10: service: proxy has no port"},
		{"proxy host", strings.Replace(base, "{port: 8080}", "{port: 8080, hosts: [\"https://a.example\"]}", 1), "is not a DNS name"},
		{"proxy tls", strings.Replace(base, "{port: 8080}", "{port: 8080, tls: {cert: c.pem}}", 1), "tls needs cert and key"},
		{"proxy tls empty", strings.Replace(base, "{port: 8080}", "{port: 8080, tls: {}}", 1), "tls needs cert and key (PEM files), or acme"},
		{"proxy tls both", strings.Replace(base, "{port: 8080}", "{port: 8080, tls: {cert: c.pem, key: k.pem, acme: {domains: [a.example.com]}}}", 1), "cert and key, or acme: certificate files or ACME, not both"},
		{"proxy tls key and acme", strings.Replace(base, "{port: 8080}", "{port: 8080, tls: {key: k.pem, acme: {domains: [a.example.com]}}}", 1), "not both"},
		{"acme no domains", strings.Replace(base, "{port: 8080}", "{port: 8080, tls: {acme: {email: a@example.com}}}", 1), "acme needs domains"},
		{"acme domain", strings.Replace(base, "{port: 8080}", "{port: 8080, tls: {acme: {domains: [localhost]}}}", 1), `domains: "localhost" is not a DNS name with a dot`},
		{"acme wildcard", strings.Replace(base, "{port: 8080}", "{port: 8080, tls: {acme: {domains: [\"*.example.com\"]}}}", 1), "not a DNS name"},
		{"acme twice", strings.Replace(base, "{port: 8080}", "{port: 8080, tls: {acme: {domains: [a.example.com, A.example.com]}}}", 1), "a.example.com is given twice"},
		{"acme directory", strings.Replace(base, "{port: 8080}", "{port: 8080, tls: {acme: {domains: [a.example.com], directory: \"http://ca/dir\"}}}", 1), "must be an https URL"},
		{"acme email", strings.Replace(base, "{port: 8080}", "{port: 8080, tls: {acme: {domains: [a.example.com], email: nobody}}}", 1), `email "nobody" is not an address`},
		{"acme unknown", strings.Replace(base, "{port: 8080}", "{port: 8080, tls: {acme: {domains: [a.example.com], challenge: dns}}}", 1), "unknown key"},
		{"health both", base + "  healthcheck: {path: /up, command: [true]}\n", "give path or command, not both"},
		{"health path", base + "  healthcheck: {path: up}\n", "must start with /"},
		{"health path no proxy", "service: {name: w, image: a/b, healthcheck: {path: /up}}\n", "path is checked on proxy.port"},
		{"health interval", base + "  healthcheck: {interval: 1ms}\n", "service: healthcheck: interval must be between 100ms and 5m0s"},
		{"health threshold", base + "  healthcheck: {threshold: 0}\n", "threshold must be between 1 and 100"},
		{"duration", base + "  drain-timeout: 30\n", `service: drain-timeout "30" is not a duration`},
		{"stop timeout", base + "  stop-timeout: 2h\n", "stop-timeout must be between 1s and 1h0m0s"},
		{"hosts empty", base + "hosts: []\n", "hosts is empty"},
		{"host no name", base + "hosts: [{docker: \"unix:///run/docker.sock\"}]\n", "hosts[0] has no name"},
		{"host no docker", base + "hosts: [{name: edge}]\n", "hosts[0] (edge) has no docker address"},
		{"host twice", base + "hosts: [{name: local}, {name: local}]\n", "the name local is given twice"},
		{"host scheme", base + "hosts: [{name: a, docker: \"http://a:2375\"}]\n", "the scheme is unix://, ssh:// or tcp://"},
		{"host tcp without tls", base + "hosts: [{name: a, docker: \"tcp://a:2375\"}]\n", "a tcp:// engine needs tls"},
		{"host tls on ssh", base + "hosts: [{name: a, docker: \"ssh://u@a\", tls: {ca: a, cert: b, key: c}}]\n", "tls is for tcp:// engines"},
		{"host ssh password", base + "hosts: [{name: a, docker: \"ssh://u:pw@a\"}]\n", "no password in the address"},
		{"host ssh option", base + "hosts: [{name: a, docker: \"ssh://-oProxyCommand=x\"}]\n", "ssh://"},
		{"host unix relative", base + "hosts: [{name: a, docker: \"unix://docker.sock\"}]\n", "write unix:///absolute/path"},
		{"replicas over", base + "hosts: [{name: local, replicas: 3}]\n", "the hosts' replicas add up to 3, more than service: replicas (1)"},
		{"replicas under", base + "  replicas: 3\nhosts: [{name: local, replicas: 1}]\n", "no host takes the rest"},
		{"published port with two tasks", base + "  replicas: 2\n  ports: [\"9000:9000\"]\n", "2 tasks on host local cannot all publish port 9000"},
		{"kube and hosts", "service: {name: w, image: a/b}\nhosts: [{name: local}]\nkubernetes: {chart: oci://h/c}\n", "2:8: hosts and kubernetes exclude each other"},
		{"kube service key", "service: {name: w, image: a/b, replicas: 2}\nkubernetes: {chart: oci://h/c}\n", "1:32: service: replicas is for Docker hosts"},
		{"kube chart", "service: {name: w, image: a/b}\nkubernetes: {chart: web}\n", "write oci://HOST/REPOSITORY/CHART"},
		{"kube repo chart", "service: {name: w, image: a/b}\nkubernetes: {chart: oci://h/c, repo: https://x}\n", "with repo, the chart is a name"},
		{"kube repo url", "service: {name: w, image: a/b}\nkubernetes: {chart: c, repo: \"ftp://x\"}\n", "is not an http(s):// URL"},
		{"kube repo creds", "service: {name: w, image: a/b}\nkubernetes: {chart: c, repo: \"https://u:p@x\"}\n", "without credentials"},
		{"kube no chart", "service: {name: w, image: a/b}\nkubernetes: {version: 1.0.0}\n", "kubernetes has no chart"},
		{"kube values", "service: {name: w, image: a/b}\nkubernetes: {chart: oci://h/c, values: [1]}\n", "values must be a mapping"},
		{"kube values dup", "service: {name: w, image: a/b}\nkubernetes: {chart: oci://h/c, values: {a: 1, a: 2}}\n", `"a" is given twice`},
		{"kube image path", "service: {name: w, image: a/b}\nkubernetes: {chart: oci://h/c, image-path: \"a..b\"}\n", "image-path"},
		{"kube release", "service: {name: w.x, image: a/b}\nkubernetes: {chart: oci://h/c}\n", "cannot be a helm release name"},
		{"kube accessories", "service: {name: w, image: a/b}\nkubernetes: {chart: oci://h/c}\naccessories: {db: {image: p}}\n", "accessories run on Docker hosts"},
		{"accessory no image", base + "accessories: {db: {}}\n", "accessories: db has no image"},
		{"accessory host", base + "accessories: {db: {image: p, host: nope}}\n", `host "nope" is not one of hosts`},
		{"accessory name", base + "accessories: {DB: {image: p}}\n", `accessories: "DB" is not a valid name`},
		{"alias", "service: &s {name: w, image: a/b}\naccessories: {db: *s}\n", "YAML aliases"},
		{"tag", base + "  replicas: !!binary aGk=\n", "the tag !!binary is not supported"},
		{"key twice", base + "  name: other\n", `5:3: service: "name" is given twice`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.src))
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("Parse = %v; want Errors", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("errors:\n%v\nwant one containing %q", err, tt.want)
			}
		})
	}
}

// TestParseBounds: a file too large, too deep or with too many errors is refused
// with a bounded answer.
func TestParseBounds(t *testing.T) {
	if _, err := Parse(make([]byte, MaxFileSize+1)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("huge file: %v", err)
	}
	deep := "service: " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n"
	if _, err := Parse([]byte(deep)); err == nil || !strings.Contains(err.Error(), "nested more than 64") {
		t.Errorf("deep file: %v", err)
	}
	var b strings.Builder
	b.WriteString(base)
	for i := range 500 {
		b.WriteString("  bad" + strconv.Itoa(i) + ": 1\n")
	}
	_, err := Parse([]byte(b.String()))
	var es Errors
	if !errors.As(err, &es) || len(es) != maxErrors+1 || !strings.Contains(es[maxErrors].Msg, "more errors") {
		t.Errorf("500 errors gave %d", len(es))
	}
}
