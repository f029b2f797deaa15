package dockerdaemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Image is what the engine reports about an image (GET /images/{name}/json).
type Image struct {
	ID           string   `json:"Id"` // the config digest, "sha256:…"
	RepoTags     []string `json:"RepoTags"`
	RepoDigests  []string `json:"RepoDigests"`
	OS           string   `json:"Os"`
	Architecture string   `json:"Architecture"`
	Variant      string   `json:"Variant"`
	Size         int64    `json:"Size"`
	// RootFS lists the image's layers by diff ID (the digest of the uncompressed tar).
	RootFS struct {
		Layers []string `json:"Layers"`
	} `json:"RootFS"`
}

// Inspect returns the engine's record of ref (a name, name:tag, name@digest or ID).
// An image the engine does not have gives an error wrapping imagestore.ErrNotFound.
func (c *Client) Inspect(ctx context.Context, ref string) (Image, error) {
	p, err := imagePath(ref)
	if err != nil {
		return Image{}, err
	}
	req, err := c.request(ctx, http.MethodGet, "/images/"+p+"/json", nil, nil)
	if err != nil {
		return Image{}, err
	}
	resp, err := c.send(req)
	if err != nil {
		return Image{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Image{}, c.statusError(resp, "image "+ref)
	}
	var img Image
	if err := json.NewDecoder(resp.Body).Decode(&img); err != nil {
		return Image{}, fmt.Errorf("docker engine: inspect %s: %w", ref, err)
	}
	return img, nil
}

// imagePath escapes ref for the URL path, keeping the slashes of a repository
// name: the engine routes /images/{name:.*}/json.
func imagePath(ref string) (string, error) {
	if ref == "" || strings.ContainsAny(ref, "?# \t\n") {
		return "", fmt.Errorf("invalid image reference %q", ref)
	}
	parts := strings.Split(ref, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/"), nil
}

// Save streams a docker-archive tar of the named images (GET /images/get). The
// caller closes the stream; an engine failing mid-way shows as a broken tar.
func (c *Client) Save(ctx context.Context, refs ...string) (io.ReadCloser, error) {
	if len(refs) == 0 {
		return nil, errors.New("docker save: no image named")
	}
	req, err := c.request(ctx, http.MethodGet, "/images/get", url.Values{"names": refs}, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, c.statusError(resp, "save "+strings.Join(refs, ", "))
	}
	return resp.Body, nil
}

// Load sends a docker-archive tar to the engine (POST /images/load) and returns
// the error the engine reports in its message stream, if any.
func (c *Client) Load(ctx context.Context, r io.Reader) error {
	req, err := c.request(ctx, http.MethodPost, "/images/load", url.Values{"quiet": {"1"}}, r)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-tar")
	resp, err := c.send(req)
	if err != nil {
		return fmt.Errorf("docker load: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("docker load: %w", c.statusError(resp, ""))
	}
	return readMessages(resp.Body)
}

// jsonMessage is one line of the engine's progress stream.
type jsonMessage struct {
	Stream      string `json:"stream"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
}

// readMessages reads the stream to its end and returns the first error in it.
func readMessages(r io.Reader) error {
	dec := json.NewDecoder(bufio.NewReader(r))
	for {
		var m jsonMessage
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("docker load: reading the engine's reply: %w", err)
		}
		switch {
		case m.ErrorDetail != nil && m.ErrorDetail.Message != "":
			return fmt.Errorf("docker load: %s", m.ErrorDetail.Message)
		case m.Error != "":
			return fmt.Errorf("docker load: %s", m.Error)
		}
	}
}
