package dockerdaemon

import (
	"bytes"
	"encoding/json"

	"context"
	"errors"
	"fmt"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"io"
	"os"
	"sync"

	"github.com/hubctl/hubctl/internal/dockerarchive"
)

// Source is an image in the engine, read as an imagestore.Source: the engine saves
// it to a temp file, which is then read as a docker-archive.
type Source struct {
	*dockerarchive.Reader
	image Image
	tmp   string
}

// OpenSource looks ref up in the engine (a name, name:tag, name@digest or image ID)
// and saves that image to a temp file. It streams to disk, never holding the image
// in memory. Close removes the temp file.
func OpenSource(ctx context.Context, c *Client, ref string) (*Source, error) {
	img, err := c.Inspect(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("docker-daemon:%s: %w", ref, err)
	}
	tmp, err := saveToTemp(ctx, c, img.ID)
	if err != nil {
		return nil, fmt.Errorf("docker-daemon:%s: %w", ref, err)
	}
	// Saved by ID, the archive holds exactly the inspected image, even if the tag
	// moved meanwhile; it is untagged, so select it as the only one.
	r, err := dockerarchive.Open(tmp, "")
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("docker-daemon:%s: %w", ref, err)
	}
	return &Source{Reader: r, image: img, tmp: tmp}, nil
}

// saveToTemp writes `docker save id` to a new temp file and returns its name.
func saveToTemp(ctx context.Context, c *Client, id string) (string, error) {
	rc, err := c.Save(ctx, id)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	f, err := os.CreateTemp("", "hubctl-docker-save-*.tar")
	if err != nil {
		return "", err
	}
	_, err = io.Copy(f, rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("docker save: %w", err)
	}
	return f.Name(), nil
}

// Image returns what the engine reported about the image when it was opened.
func (s *Source) Image() Image { return s.image }

// Close closes the archive and removes the temp file.
func (s *Source) Close() error {
	err := s.Reader.Close()
	if rerr := os.Remove(s.tmp); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	return err
}

// Target loads an image into the engine as an imagestore.Target: what the transfer
// engine writes becomes a docker-archive streamed straight into docker load.
type Target struct {
	*dockerarchive.Writer
	c       *Client
	pw      *io.PipeWriter
	loaded  chan error
	once    sync.Once
	loadErr error

	// What tells the layers the engine has: the manifest's layers (ExpectManifest),
	// the config's diff IDs (read as the config passes through PutBlob), and the
	// chain IDs the engine holds (asked once, when a layer is first checked).
	mu       sync.Mutex
	layers   map[digest.Digest]int // layer digest → index in the manifest
	config   digest.Digest
	diffIDs  []string
	chains   map[digest.Digest]bool
	chainsOK bool
	asked    bool
}

// OpenTarget starts a docker load that will tag the image ref (normalised the
// docker way: "app" becomes "app:latest"). Nothing is loaded until Close(nil).
func OpenTarget(ctx context.Context, c *Client, ref string) (*Target, error) {
	name, err := dockerarchive.NormalizeRef(ref)
	if err != nil {
		return nil, fmt.Errorf("docker-daemon:%s: %w", ref, err)
	}
	// Fail now rather than after the first blob when the engine is not there.
	if _, err := c.apiVersion(ctx); err != nil {
		return nil, fmt.Errorf("docker-daemon:%s: %w", ref, err)
	}
	pr, pw := io.Pipe()
	t := &Target{Writer: dockerarchive.NewWriter(pw, name), c: c, pw: pw, loaded: make(chan error, 1)}
	go func() {
		err := c.Load(ctx, pr)
		// Unblock a writer the engine stopped reading from, with the engine's reason.
		if err != nil {
			pr.CloseWithError(err)
		} else {
			pr.CloseWithError(errors.New("docker load ended before the archive did"))
		}
		t.loaded <- err
	}()
	return t, nil
}

// ExpectManifest learns the image's layers before its blobs come, so HasBlob can tell
// the ones the engine has.
func (t *Target) ExpectManifest(_ context.Context, desc ocispec.Descriptor, raw []byte) error {
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil // PutManifest will say what is wrong with it
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.config = m.Config.Digest
	t.layers = map[digest.Digest]int{}
	for i, l := range m.Layers {
		if _, dup := t.layers[l.Digest]; !dup {
			t.layers[l.Digest] = i
		}
	}
	return nil
}

// maxConfig bounds the config read for its diff IDs.
const maxConfig = 16 << 20

// PutBlob writes the blob into the archive; the image's config is also read for its
// diff IDs on the way.
func (t *Target) PutBlob(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	t.mu.Lock()
	isConfig := desc.Digest == t.config && desc.Size <= maxConfig
	t.mu.Unlock()
	if !isConfig {
		return t.Writer.PutBlob(ctx, desc, r)
	}
	var buf bytes.Buffer
	if err := t.Writer.PutBlob(ctx, desc, io.TeeReader(r, &buf)); err != nil {
		return err
	}
	var cfg struct {
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if json.Unmarshal(buf.Bytes(), &cfg) == nil {
		t.mu.Lock()
		t.diffIDs = cfg.RootFS.DiffIDs
		t.mu.Unlock()
	}
	return nil
}

// HasBlob reports whether the archive holds the blob, or, for a layer, whether the
// engine has it already (the layer and every one below it, its chain): such a layer
// is left out of the archive, and docker load takes it from the engine's store.
// Engines on the containerd image store get every layer.
func (t *Target) HasBlob(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	if has, err := t.Writer.HasBlob(ctx, desc); has || err != nil {
		return has, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	i, isLayer := t.layers[desc.Digest]
	// A manifest that lists one layer twice gives no index per digest: send them all.
	if !isLayer || len(t.diffIDs) != len(t.layers) {
		return false, nil
	}
	if !t.asked {
		t.asked = true
		if classic, err := t.c.ClassicStore(ctx); err == nil && classic {
			if chains, err := t.c.LayerChains(ctx); err == nil {
				t.chains, t.chainsOK = chains, true
			}
		}
	}
	if !t.chainsOK || !t.chains[ChainIDs(t.diffIDs[:i+1])[i]] {
		return false, nil
	}
	t.Writer.Omit(desc)
	return true, nil
}

// Close with a nil err ends the archive and waits for the engine to load it,
// returning the engine's error. With an error it breaks the stream so the engine
// discards the partial load.
func (t *Target) Close(err error) error {
	t.once.Do(func() {
		if err == nil {
			if werr := t.Writer.Close(nil); werr != nil {
				t.pw.CloseWithError(werr)
				<-t.loaded
				t.loadErr = werr
				return
			}
			t.pw.Close()
			t.loadErr = <-t.loaded
			return
		}
		t.Writer.Close(err)
		t.pw.CloseWithError(err)
		<-t.loaded
	})
	return t.loadErr
}
