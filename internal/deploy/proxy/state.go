package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// stateVersion is the state file's format; a newer one is refused, not misread.
const stateVersion = 1

// maxStateBytes bounds the state file read at start.
const maxStateBytes = 4 << 20

type stateFile struct {
	Version  int            `json:"version"`
	Services []stateService `json:"services"`
}

type stateService struct {
	Name       string        `json:"name"`
	Generation int64         `json:"generation"`
	Request    DeployRequest `json:"request"`
}

// saveState writes every service to the state file: a temporary file, synced, then
// renamed over the old one, so a crash leaves the old state or the new, never half.
func (p *Proxy) saveState() error {
	if p.stateFile == "" {
		return nil
	}
	p.stateMu.Lock()
	defer p.stateMu.Unlock()
	st := stateFile{Version: stateVersion, Services: []stateService{}}
	p.mu.Lock()
	for name, s := range p.services {
		c, pl := s.cfg.Load(), s.pool.Load()
		if c == nil || pl == nil {
			continue
		}
		req := DeployRequest{Hosts: c.hosts, Health: c.health, DrainTimeout: Duration(c.drainTimeout)}
		for _, b := range pl.backends {
			req.Targets = append(req.Targets, b.addr)
		}
		st.Services = append(st.Services, stateService{Name: name, Generation: c.generation, Request: req})
	}
	p.mu.Unlock()
	slices.SortFunc(st.Services, func(a, b stateService) int { return strings.Compare(a.Name, b.Name) })
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(p.stateFile)
	tmp, err := os.CreateTemp(dir, ".proxy-state-*")
	if err != nil {
		return fmt.Errorf("write proxy state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write proxy state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write proxy state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write proxy state: %w", err)
	}
	if err := os.Rename(tmp.Name(), p.stateFile); err != nil {
		return fmt.Errorf("write proxy state: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// loadState serves the services of the state file. Their targets are taken as
// healthy, since they were when the proxy stopped; the monitors correct that within
// a few health intervals.
func (p *Proxy) loadState() error {
	if p.stateFile == "" {
		return nil
	}
	f, err := os.Open(p.stateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read proxy state: %w", err)
	}
	defer f.Close()
	var st stateFile
	dec := json.NewDecoder(&limitedReader{r: f, n: maxStateBytes})
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return fmt.Errorf("read proxy state %s: %v (move it away to start empty)", p.stateFile, err)
	}
	if st.Version != stateVersion {
		return fmt.Errorf("read proxy state %s: format version %d, this hubctl reads %d", p.stateFile, st.Version, stateVersion)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ss := range st.Services {
		req, err := ss.Request.normalize(ss.Name)
		if err != nil {
			return fmt.Errorf("read proxy state %s: %v", p.stateFile, err)
		}
		if _, dup := p.services[ss.Name]; dup {
			return fmt.Errorf("read proxy state %s: service %s is given twice", p.stateFile, ss.Name)
		}
		if err := p.conflictLocked(ss.Name, req.Hosts); err != nil {
			return fmt.Errorf("read proxy state %s: %v", p.stateFile, err)
		}
		s := &service{name: ss.Name}
		s.cfg.Store(&serviceConfig{hosts: req.Hosts, health: req.Health, drainTimeout: req.DrainTimeout.D(), generation: ss.Generation})
		pl := &pool{}
		for _, t := range req.Targets {
			b := newBackend(t)
			b.healthy.Store(true)
			pl.backends = append(pl.backends, b)
			go p.monitor(b, req.Health)
		}
		s.pool.Store(pl)
		p.services[ss.Name] = s
	}
	p.rebuildRoutesLocked()
	return nil
}

// limitedReader fails, rather than ending quietly, past n bytes.
type limitedReader struct {
	r interface{ Read([]byte) (int, error) }
	n int64
}

func (l *limitedReader) Read(b []byte) (int, error) {
	if l.n <= 0 {
		return 0, fmt.Errorf("larger than %d bytes", maxStateBytes)
	}
	if int64(len(b)) > l.n {
		b = b[:l.n]
	}
	n, err := l.r.Read(b)
	l.n -= int64(n)
	return n, err
}
