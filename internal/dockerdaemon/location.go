package dockerdaemon

import (
	"context"
	"errors"
	"fmt"
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
	pw      *io.PipeWriter
	loaded  chan error
	once    sync.Once
	loadErr error
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
	t := &Target{Writer: dockerarchive.NewWriter(pw, name), pw: pw, loaded: make(chan error, 1)}
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
