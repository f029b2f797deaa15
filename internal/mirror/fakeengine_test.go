package mirror

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// fakeEngine is a test double for Engine: registries are maps of repository → tag →
// digest, Copy records its calls and copies a digest from map to map. The real
// transfer engine is tested in its own package.
type fakeEngine struct {
	mu    sync.Mutex
	repos map[string]map[string]string
	// listErr fails Tags for a repository; copyErr fails Copy for a source reference.
	listErr map[string]error
	copyErr map[string]error
	// gate, when set, holds each Copy until it receives a value or ctx ends.
	gate chan struct{}
	// started, when set, receives each Copy's source as it starts.
	started chan string

	copies, digests   []string
	inFlight, maxSeen int
}

func newFakeEngine(repos map[string]map[string]string) *fakeEngine {
	return &fakeEngine{repos: repos, listErr: map[string]error{}, copyErr: map[string]error{}}
}

func (f *fakeEngine) Tags(ctx context.Context, repo string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.listErr[repo]; err != nil {
		return nil, err
	}
	var tags []string
	for t := range f.repos[repo] {
		if t[0] != '@' {
			tags = append(tags, t)
		}
	}
	slices.Sort(tags)
	return tags, nil
}

func (f *fakeEngine) Digest(ctx context.Context, ref string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.digests = append(f.digests, ref)
	return f.lookup(ref)
}

// lookup resolves ref; f.mu is held.
func (f *fakeEngine) lookup(ref string) (string, error) {
	r, err := parseRef(ref)
	if err != nil {
		return "", err
	}
	if r.Digest != "" {
		for _, d := range f.repos[r.Repo] {
			if d == r.Digest {
				return d, nil
			}
		}
	} else if d, ok := f.repos[r.Repo][r.Tag]; ok {
		return d, nil
	}
	return "", fmt.Errorf("%s: %w", ref, ErrNotFound)
}

func (f *fakeEngine) Copy(ctx context.Context, src, dst string, o CopyOptions) (CopyResult, error) {
	f.mu.Lock()
	f.copies = append(f.copies, src+" -> "+dst)
	f.inFlight++
	f.maxSeen = max(f.maxSeen, f.inFlight)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	if f.started != nil {
		f.started <- src
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return CopyResult{}, ctx.Err()
		}
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.copyErr[src]; err != nil {
		return CopyResult{}, err
	}
	d, err := f.lookup(src)
	if err != nil {
		return CopyResult{}, err
	}
	if have, err := f.lookup(dst); err == nil && have == d {
		return CopyResult{Digest: d, UpToDate: true}, nil
	}
	r, err := parseRef(dst)
	if err != nil {
		return CopyResult{}, err
	}
	key := r.Tag
	if key == "" {
		key = "@" + d
	}
	if f.repos[r.Repo] == nil {
		f.repos[r.Repo] = map[string]string{}
	}
	f.repos[r.Repo][key] = d
	return CopyResult{Digest: d, Bytes: 100}, nil
}

func (f *fakeEngine) copyCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.copies)
}

// digestOf returns a fake but well-formed sha256 digest named by c.
func digestOf(c byte) string {
	b := make([]byte, 64)
	for i := range b {
		b[i] = c
	}
	return "sha256:" + string(b)
}
