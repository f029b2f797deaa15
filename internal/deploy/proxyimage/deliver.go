package proxyimage

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/hubctl/hubctl/internal/dockerarchive"
	"github.com/hubctl/hubctl/internal/transfer"
)

// Push copies the image to ref (a registry reference, as Reference makes) with the
// transfer engine: only the blobs the registry lacks are sent. The result names the
// pushed digest, which hosts pull by.
//
// It lives here, not in selfimage, because selfimage is imported by the hub's server
// (its agent image), whose tests the transfer engine's own tests import.
func Push(ctx context.Context, img *Image, e *transfer.Engine, ref string, o transfer.Options) (transfer.Result, error) {
	dl, err := transfer.ParseLocation(ref)
	if err != nil {
		return transfer.Result{}, fmt.Errorf("%s: push %s: %w", img.Name, ref, err)
	}
	if !dl.IsRegistry() {
		return transfer.Result{}, fmt.Errorf("%s: push %s: not a registry reference", img.Name, ref)
	}
	if o.Label == "" {
		o.Label = ref
	}
	res, err := e.CopyFrom(ctx, img, "hubctl "+img.Name, dl, o)
	if err != nil {
		return res, fmt.Errorf("%s: push %s: %w", img.Name, ref, err)
	}
	return res, nil
}

// Load puts the image into the Docker engine behind api as ref, without a registry:
// a docker-archive streamed to the engine's image load. An engine that has the image
// already (its ID is the config's digest) is only given the tag. It returns the
// image ID.
func Load(ctx context.Context, img *Image, api client.APIClient, ref string) (string, error) {
	norm, err := dockerarchive.NormalizeRef(ref)
	if err != nil {
		return "", fmt.Errorf("%s: load %s: %w", img.Name, ref, err)
	}
	// The classic image store names an image by its config's digest: an engine that
	// has this one needs only the tag.
	if ins, err := api.ImageInspect(ctx, img.ConfigDesc.Digest.String()); err == nil && holds(img, ins.RootFS.Layers) {
		if _, err := api.ImageTag(ctx, client.ImageTagOptions{Source: ins.ID, Target: norm}); err != nil {
			return "", fmt.Errorf("%s: tag %s as %s: %w", img.Name, ins.ID, norm, err)
		}
		return ins.ID, nil
	} else if err != nil && !cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("%s: load %s: %w", img.Name, ref, err)
	}

	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeArchive(ctx, img, pw, norm)) }()
	res, err := api.ImageLoad(ctx, pr, client.ImageLoadWithQuiet(true))
	if err != nil {
		pr.CloseWithError(err)
		return "", fmt.Errorf("%s: load %s: %w", img.Name, ref, err)
	}
	err = engineMessages(res)
	res.Close()
	pr.CloseWithError(errors.New("load ended")) // unblocks the writer if the engine stopped reading
	if err != nil {
		return "", fmt.Errorf("%s: load %s: %w", img.Name, ref, err)
	}
	ins, err := api.ImageInspect(ctx, norm)
	if err != nil {
		return "", fmt.Errorf("%s: load %s: the engine does not show it: %w", img.Name, ref, err)
	}
	if !holds(img, ins.RootFS.Layers) {
		return "", fmt.Errorf("%s: load %s: the engine's image %s has layers %v, not %s", img.Name, ref, ins.ID, ins.RootFS.Layers, img.Layer.DiffID)
	}
	return ins.ID, nil
}

// holds reports whether an engine's image has exactly this image's layer.
func holds(img *Image, diffIDs []string) bool {
	return len(diffIDs) == 1 && diffIDs[0] == img.Layer.DiffID.String()
}

// writeArchive writes the image as a docker-archive tagged ref.
func writeArchive(ctx context.Context, img *Image, w io.Writer, ref string) (err error) {
	aw := dockerarchive.NewWriter(w, ref)
	defer func() {
		if cerr := aw.Close(err); err == nil {
			err = cerr
		}
	}()
	if err := aw.PutBlob(ctx, img.ConfigDesc, bytes.NewReader(img.Config)); err != nil {
		return err
	}
	layerDesc := ocispec.Descriptor{MediaType: img.Layer.MediaType, Digest: img.Layer.Digest, Size: img.Layer.Size}
	rc, err := img.Blob(ctx, layerDesc)
	if err != nil {
		return err
	}
	err = aw.PutBlob(ctx, layerDesc, rc)
	rc.Close()
	if err != nil {
		return err
	}
	return aw.PutManifest(ctx, img.Desc, img.Raw, "")
}

// engineMessages reads the engine's progress stream to its end and returns the
// first error in it.
func engineMessages(r io.Reader) error {
	dec := json.NewDecoder(bufio.NewReader(r))
	for {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the engine's reply: %w", err)
		}
		switch {
		case m.ErrorDetail != nil && m.ErrorDetail.Message != "":
			return errors.New(m.ErrorDetail.Message)
		case m.Error != "":
			return errors.New(m.Error)
		}
	}
}
