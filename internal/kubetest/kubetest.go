// Package kubetest starts a real Kubernetes control plane on loopback for tests, the
// way internal/pgtest starts PostgreSQL: etcd, kube-apiserver, kube-controller-manager
// and kube-scheduler built from the Go module proxy, and kwok playing the kubelet of one
// fake Node (FACTS.md, "Kubernetes"; e2e/install-tools.sh installs them into
// $HOME/.cache/hubctl/bin). Everything listens on 127.0.0.1 at free ports, keys and
// certificates are made in the test's temporary directory, and everything is stopped
// at the test's cleanup.
//
// What it proves and what it cannot: objects are admitted and validated by the real
// API server, pods are scheduled and Jobs are driven by the real controllers; kwok runs
// no container, so pods go Running and Completed as its stages say (exit code 0), no
// program runs, and there are no logs. A test holds a pod running for as long as it
// wants with HoldEnv and lets it end with Cluster.Release (hold.go).
package kubetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Binaries are the programs Start runs, as e2e/install-tools.sh names them.
var Binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}

// StagesFile is kwok's stage configuration that install-tools.sh writes beside the
// binaries (node/fast and pod/general of the kwok module, one YAML stream).
const StagesFile = "kwok-stages.yaml"

// NodeName is the fake Node kwok manages.
const NodeName = "kwok-node-0"

// Cluster is a running control plane.
type Cluster struct {
	// Config is an administrator's client configuration (system:masters).
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file with the same credentials.
	Kubeconfig string
	// Client is a clientset for Config.
	Client kubernetes.Interface
	// Dir holds the control plane's files, including each component's log
	// (<name>.log).
	Dir string
}

// ToolsDir is where install-tools.sh puts the binaries.
func ToolsDir() string {
	if d := os.Getenv("HUBCTL_TOOLS_BIN"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "hubctl", "bin")
}

// FindBin returns the path of a control-plane binary: in ToolsDir, or on PATH.
func FindBin(name string) (string, error) {
	p := filepath.Join(ToolsDir(), name)
	if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found in %s or on PATH (run e2e/install-tools.sh)", name, ToolsDir())
}

// Start starts a control plane with one Ready fake Node and returns it once the API
// server answers, the Node is Ready and the default namespace has its service
// account. It skips the test when a binary is missing, unless CI=true (then it fails).
func Start(t testing.TB) *Cluster {
	t.Helper()
	return StartWithStages(t)
}

// StartWithStages is Start with more kwok stages (YAML documents, such as
// NeverReadyStage) after the installed ones.
func StartWithStages(t testing.TB, extra ...string) *Cluster {
	t.Helper()
	bins := map[string]string{}
	for _, name := range Binaries {
		p, err := FindBin(name)
		if err != nil {
			missing(t, err)
			return nil
		}
		bins[name] = p
	}
	stages := filepath.Join(ToolsDir(), StagesFile)
	if _, err := os.Stat(stages); err != nil {
		missing(t, fmt.Errorf("kwok stages %s: %w (run e2e/install-tools.sh)", stages, err))
		return nil
	}

	dir, err := os.MkdirTemp("", "kubetest-")
	if err != nil {
		t.Fatal(err)
	}
	if len(extra) > 0 {
		if stages, err = joinStages(stages, dir, extra); err != nil {
			os.RemoveAll(dir)
			t.Fatalf("kubetest: %v", err)
		}
	}
	c := &Cluster{Dir: dir}
	p := &procs{t: t, dir: dir}
	t.Cleanup(func() {
		p.stopAll()
		if !t.Failed() {
			os.RemoveAll(dir)
		} else {
			t.Logf("kubetest: control plane files kept in %s", dir)
		}
	})
	fail := func(format string, args ...any) {
		t.Helper()
		p.dumpLogs()
		t.Fatalf("kubetest: "+format, args...)
	}

	pki, err := makePKI(dir)
	if err != nil {
		fail("%v", err)
	}
	token := randomHex(32)
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(token+",admin,admin-uid,system:masters\n"), 0o600); err != nil {
		fail("%v", err)
	}

	etcdPort, peerPort, apiPort := freePort(t), freePort(t), freePort(t)
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	p.start("etcd", bins["etcd"],
		"--name=kubetest", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kubetest="+peerURL, "--unsafe-no-fsync=true",
		"--log-level=warn")

	p.start("kube-apiserver", bins["kube-apiserver"],
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(apiPort),
		"--endpoint-reconciler-type=none",
		"--tls-cert-file="+pki.serverCert, "--tls-private-key-file="+pki.serverKey,
		"--client-ca-file="+pki.caCert,
		"--token-auth-file="+tokens,
		"--authorization-mode=Node,RBAC",
		"--service-account-key-file="+pki.saPub, "--service-account-signing-key-file="+pki.saKey,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range=10.96.0.0/24",
		"--enable-priority-and-fairness=false",
		"--profiling=false")

	server := "https://127.0.0.1:" + strconv.Itoa(apiPort)
	c.Config = &rest.Config{Host: server, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAFile: pki.caCert}, QPS: 100, Burst: 200}
	c.Kubeconfig = filepath.Join(dir, "kubeconfig")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: server, CertificateAuthority: pki.caCert}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: token}
	kc.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: "admin"}
	kc.CurrentContext = "kubetest"
	if err := clientcmd.WriteToFile(*kc, c.Kubeconfig); err != nil {
		fail("%v", err)
	}
	client, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		fail("%v", err)
	}
	c.Client = client

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := poll(ctx, p, func() (bool, error) {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && bytes.Equal(body, []byte("ok")), nil
	}); err != nil {
		fail("the API server did not become ready: %v", err)
	}

	p.start("kube-controller-manager", bins["kube-controller-manager"],
		"--kubeconfig="+c.Kubeconfig,
		"--controllers=*,-nodeipam", // keep node-lifecycle: it lifts the not-ready taint
		// kwok is the kubelet: on a loaded machine its node heartbeat can lag past
		// the default 50 s grace, and node-lifecycle then marks the node NotReady
		// and every pod on it Ready=False, which no kubelet ever undoes (kwok's
		// stages ready Pending pods only): rollouts would hang until their timeout
		// (CI saw TestRelease's rollback stuck on "Pending termination: 1").
		"--node-monitor-grace-period=10m",
		"--leader-elect=false", "--secure-port=0",
		"--service-account-private-key-file="+pki.saKey, "--root-ca-file="+pki.caCert,
		"--use-service-account-credentials=false",
		"--profiling=false")
	p.start("kube-scheduler", bins["kube-scheduler"],
		"--kubeconfig="+c.Kubeconfig, "--leader-elect=false", "--secure-port=0", "--profiling=false")
	held, err := writeStages(stages, dir)
	if err != nil {
		fail("%v", err)
	}
	p.start("kwok", bins["kwok"],
		"--kubeconfig="+c.Kubeconfig, "--config="+held,
		"--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--cidr=127.20.0.0/16", "--node-ip=127.0.0.20")

	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        NodeName,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels:      map[string]string{"type": "kwok", "kubernetes.io/hostname": NodeName, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"},
		},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("256Gi"), corev1.ResourcePods: resource.MustParse("110")},
			Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("256Gi"), corev1.ResourcePods: resource.MustParse("110")},
		},
	}
	if _, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		fail("create node: %v", err)
	}
	if err := poll(ctx, p, func() (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				for _, taint := range n.Spec.Taints {
					if taint.Key == "node.kubernetes.io/not-ready" {
						return false, nil
					}
				}
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		fail("node %s did not become Ready: %v", NodeName, err)
	}
	if err := c.waitServiceAccount(ctx, p, "default"); err != nil {
		fail("%v", err)
	}
	return c
}

// Namespace creates namespace name and waits for its default service account (pods
// are admitted only once it exists).
func (c *Cluster) Namespace(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("kubetest: create namespace %s: %v", name, err)
	}
	if err := c.waitServiceAccount(ctx, nil, name); err != nil {
		t.Fatalf("kubetest: %v", err)
	}
}

func (c *Cluster) waitServiceAccount(ctx context.Context, p *procs, ns string) error {
	if err := poll(ctx, p, func() (bool, error) {
		_, err := c.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		return fmt.Errorf("namespace %s got no default service account: %w", ns, err)
	}
	return nil
}

func missing(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("kubetest: %v", err)
	}
	t.Skipf("kubetest: %v", err)
}

// poll calls f every 200 ms until it says done, ctx ends, or a component exits.
func poll(ctx context.Context, p *procs, f func() (bool, error)) error {
	for {
		done, err := f()
		if err != nil || done {
			return err
		}
		if p != nil {
			if err := p.exited(); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// procs are the running components, stopped in the reverse order of their start.
type procs struct {
	t    testing.TB
	dir  string
	mu   sync.Mutex
	list []*proc
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func (p *procs) start(name, bin string, args ...string) {
	p.t.Helper()
	logPath := filepath.Join(p.dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = p.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		p.dumpLogs()
		p.t.Fatalf("kubetest: start %s: %v", name, err)
	}
	pr := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		pr.err = cmd.Wait()
		f.Close()
		close(pr.done)
	}()
	p.mu.Lock()
	p.list = append(p.list, pr)
	p.mu.Unlock()
}

// exited returns an error naming the first component that exited.
func (p *procs) exited() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range p.list {
		select {
		case <-pr.done:
			return fmt.Errorf("%s exited: %v (log: %s)", pr.name, pr.err, tail(pr.log, 2000))
		default:
		}
	}
	return nil
}

func (p *procs) stopAll() {
	p.mu.Lock()
	list := append([]*proc(nil), p.list...)
	p.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		pr := list[i]
		_ = syscall.Kill(-pr.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-pr.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-pr.cmd.Process.Pid, syscall.SIGKILL)
			<-pr.done
		}
	}
}

func (p *procs) dumpLogs() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range p.list {
		p.t.Logf("kubetest: --- %s log (tail) ---\n%s", pr.name, tail(pr.log, 3000))
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

type pkiFiles struct {
	caCert, serverCert, serverKey, saKey, saPub string
}

// makePKI writes a CA, the API server's serving certificate for 127.0.0.1 and
// localhost signed by it, and the service-account signing key pair.
func makePKI(dir string) (*pkiFiles, error) {
	f := &pkiFiles{
		caCert: filepath.Join(dir, "ca.crt"), serverCert: filepath.Join(dir, "apiserver.crt"), serverKey: filepath.Join(dir, "apiserver.key"),
		saKey: filepath.Join(dir, "sa.key"), saPub: filepath.Join(dir, "sa.pub"),
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubetest-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	srvKeyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		return nil, err
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}
	writes := []struct {
		path, typ string
		der       []byte
		mode      os.FileMode
	}{
		{f.caCert, "CERTIFICATE", caDER, 0o644},
		{f.serverCert, "CERTIFICATE", srvDER, 0o644},
		{f.serverKey, "EC PRIVATE KEY", srvKeyDER, 0o600},
		{f.saKey, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(saKey), 0o600},
		{f.saPub, "PUBLIC KEY", saPubDER, 0o644},
	}
	for _, w := range writes {
		if err := os.WriteFile(w.path, pem.EncodeToMemory(&pem.Block{Type: w.typ, Bytes: w.der}), w.mode); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// ErrNoBinaries is wrapped by Check when a binary is missing.
var ErrNoBinaries = errors.New("kubetest: control-plane binaries missing")

// Check reports whether every binary Start needs is installed.
func Check() error {
	var miss []string
	for _, name := range Binaries {
		if _, err := FindBin(name); err != nil {
			miss = append(miss, name)
		}
	}
	if _, err := os.Stat(filepath.Join(ToolsDir(), StagesFile)); err != nil {
		miss = append(miss, StagesFile)
	}
	if len(miss) > 0 {
		return fmt.Errorf("%w: %s (run e2e/install-tools.sh)", ErrNoBinaries, strings.Join(miss, ", "))
	}
	return nil
}
