// Package transfer is hubctl's image transfer engine: it copies an image (or an index
// with its children, and optionally what refers to it) from any Source to any Target,
// sending only what the target lacks. Blobs stream through with bounded memory and run
// in parallel; every step emits a progress event.
package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/hubctl/hubctl/internal/distclient"
	"github.com/hubctl/hubctl/internal/dockerarchive"
	"github.com/hubctl/hubctl/internal/imagestore"
	"github.com/hubctl/hubctl/internal/progress"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// Options tune a copy. The zero value copies everything with 4 parallel blobs.
type Options struct {
	// Jobs bounds the blobs moving at once (default 4).
	Jobs int
	// Platforms, when set, keeps only these children of an index.
	Platforms []v1.Platform
	// Referrers also copies the manifests that refer to the image (signatures, SBOMs).
	Referrers bool
	// Progress receives the events; nil drops them.
	Progress progress.Sink
	// Limiter caps the bytes per second sent, shared by all copies using it; nil for none.
	Limiter *Limiter
	// Label names the image in events (default: the destination as written).
	Label string
}

// Result is what a copy did.
type Result struct {
	// Reference is the destination with the digest of what was written.
	Reference string
	Digest    digest.Digest
	MediaType string
	// DigestChanged reports that a platform filter changed what is copied (a new index
	// of some children, or one child's manifest), so the destination's digest differs
	// from the source's.
	DigestChanged bool
	// UpToDate reports that the destination already had the image: nothing was sent.
	UpToDate bool
}

// Engine copies between locations with one registry client, so tokens and
// connections are shared by every copy it runs.
type Engine struct {
	Client *distclient.Client
	// Docker opens the Docker engine client when a docker-daemon: location is used.
	Docker DockerConnector

	// flights holds the blob uploads in progress, by destination and digest, so that
	// copies running at once (a mirror of several tags of one image) move each blob
	// once: the others wait for it.
	flightMu sync.Mutex
	flights  map[flightKey]*flight
}

// retryKey carries a copy's sink and label in its context, so the registry client's
// retries reach the copy whose request it was.
type retryKey struct{}

type retryTarget struct {
	sink  progress.Sink
	label string
}

// ReportRetry turns a registry client's retry into a progress event of the copy the
// request belongs to; give it as distclient.Options.OnRetry.
func (e *Engine) ReportRetry(ctx context.Context, ri distclient.RetryInfo) {
	t, ok := ctx.Value(retryKey{}).(retryTarget)
	if !ok {
		return
	}
	msg := ""
	if ri.Err != nil {
		msg = ri.Err.Error()
	}
	t.sink(progress.Event{Time: time.Now(), Kind: progress.Retry, Image: t.label, Attempt: ri.Attempt, Wait: ri.Wait,
		Message: ri.Method + " " + ri.URL, Error: msg})
}

// Copy copies the image at src to dst (locations as ParseLocation reads them).
func (e *Engine) Copy(ctx context.Context, src, dst string, o Options) (Result, error) {
	sl, err := ParseLocation(src)
	if err != nil {
		return Result{}, err
	}
	dl, err := ParseLocation(dst)
	if err != nil {
		return Result{}, err
	}
	return e.CopyLocations(ctx, sl, dl, o)
}

// CopyLocations copies between parsed locations.
func (e *Engine) CopyLocations(ctx context.Context, sl, dl Location, o Options) (res Result, err error) {
	ctx, emit, end := e.startImage(ctx, &o, dl, sl.String())
	defer func() { end(res, err) }()

	// Ask the destination what its tag names while the source is read: on an
	// up-to-date copy these two round trips (and the two registries' pings) are all
	// the work there is, so they run side by side.
	tagCh := e.askTag(ctx, dl)

	src, err := e.openSource(ctx, sl)
	if err != nil {
		return Result{}, err
	}
	defer src.Close()
	return e.copyFrom(ctx, src, sl, dl, o, emit, tagCh)
}

// CopyFrom copies the image src serves (a build's result, say) to dl. label names the
// source in events. Blobs that src says live in a repository of the destination's
// registry (imagestore.BlobOrigin) are mounted from there instead of sent.
func (e *Engine) CopyFrom(ctx context.Context, src imagestore.Source, label string, dl Location, o Options) (res Result, err error) {
	ctx, emit, end := e.startImage(ctx, &o, dl, label)
	defer func() { end(res, err) }()
	return e.copyFrom(ctx, src, Location{Kind: kindBuilt, raw: label}, dl, o, emit, e.askTag(ctx, dl))
}

// startImage begins one image's copy to dl: it fills o's defaults, announces
// ImageStarted from source, and returns the context the copy runs in (its retries
// report to o.Progress), the event sink, and end, which reports ImageDone or
// ImageFailed.
func (e *Engine) startImage(ctx context.Context, o *Options, dl Location, source string) (context.Context, func(progress.Event), func(Result, error)) {
	if o.Jobs <= 0 {
		o.Jobs = 4
	}
	if o.Progress == nil {
		o.Progress = progress.Discard
	}
	if o.Label == "" {
		o.Label = dl.String()
	}
	sink, label := o.Progress, o.Label
	ctx = context.WithValue(ctx, retryKey{}, retryTarget{sink: sink, label: label})
	emit := func(ev progress.Event) {
		ev.Time = time.Now()
		ev.Image = label
		sink(ev)
	}
	emit(progress.Event{Kind: progress.ImageStarted, Source: source})
	end := func(res Result, err error) {
		if err != nil {
			emit(progress.Event{Kind: progress.ImageFailed, Source: source, Error: errorText(err)})
		} else {
			emit(progress.Event{Kind: progress.ImageDone, Source: source, Digest: res.Digest.String(), MediaType: res.MediaType})
		}
	}
	return ctx, emit, end
}

type tagAnswer struct {
	digest string
	err    error
}

// askTag asks, in the background, what the destination's tag names.
func (e *Engine) askTag(ctx context.Context, dl Location) chan tagAnswer {
	if !dl.IsRegistry() || dl.Tag() == "" {
		return nil
	}
	ch := make(chan tagAnswer, 1)
	go func() {
		d, err := (&registryStore{c: e.Client, ref: dl.Ref}).tagDigest(ctx, dl.Tag())
		ch <- tagAnswer{d, err}
	}()
	return ch
}

func (e *Engine) copyFrom(ctx context.Context, src imagestore.Source, sl, dl Location, o Options, emit func(progress.Event), tagCh chan tagAnswer) (res Result, err error) {
	desc, raw, err := src.Root(ctx)
	if err != nil {
		if sl.IsRegistry() {
			return Result{}, err // the registry client's error names the reference
		}
		return Result{}, fmt.Errorf("read %s: %w", sl, err)
	}

	dst, err := e.openTarget(ctx, dl)
	if err != nil {
		return Result{}, err
	}
	defer func() {
		if cerr := dst.Close(err); cerr != nil && err == nil {
			err = fmt.Errorf("write %s: %w", dl, cerr)
		}
		if err == nil && dl.Kind == KindDockerArchive {
			err = archiveDigest(dl, &res, emit)
		}
	}()
	c := &copier{e: e, o: o, emit: emit, src: src, dst: dst, srcLoc: sl, dstLoc: dl, seen: map[digest.Digest]bool{}}

	single := false
	if t, ok := dst.(imagestore.SinglePlatform); ok && t.SinglePlatform() {
		single = true
	}
	origDigest := desc.Digest
	if isIndex(desc.MediaType) && (len(o.Platforms) > 0 || single) {
		want := o.Platforms
		if single && len(want) != 1 {
			if len(want) > 1 {
				return Result{}, fmt.Errorf("%s holds one image: give one --platform, not %d", dl, len(want))
			}
			want = []v1.Platform{defaultPlatform()}
		}
		child, filtered, err := filterIndex(raw, want)
		if err != nil {
			return Result{}, fmt.Errorf("%s: %w", sl, err)
		}
		if child != nil {
			desc = ocispec.Descriptor{MediaType: child.MediaType, Digest: child.Digest, Size: child.Size}
			if raw, err = src.Manifest(ctx, desc); err != nil {
				return Result{}, fmt.Errorf("read %s@%s: %w", sl, desc.Digest, err)
			}
		} else {
			raw = filtered
			desc = ocispec.Descriptor{MediaType: desc.MediaType, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
		}
	}
	res = Result{Digest: desc.Digest, MediaType: desc.MediaType, DigestChanged: desc.Digest != origDigest}
	if res.DigestChanged {
		what := "a new index of the platforms kept"
		if !isIndex(desc.MediaType) {
			what = "the manifest of the one platform kept"
		}
		emit(progress.Event{Kind: progress.Info, Digest: desc.Digest.String(),
			Message: fmt.Sprintf("the platform filter changed the digest: %s is now %s (%s)", origDigest, desc.Digest, what)})
	}

	// Up to date: the destination's tag already names this digest, so the registry
	// holds the manifest and its blobs (it refuses manifests whose blobs are missing).
	// An index's children are confirmed too: a registry may have let one be deleted
	// under the index (issue 13), and the copy is what repairs that.
	if tagCh != nil {
		if have := <-tagCh; have.err == nil && have.digest == desc.Digest.String() {
			missing, err := c.missingChildren(ctx, desc, raw)
			if err != nil {
				return Result{}, err
			}
			if missing == 0 {
				emit(progress.Event{Kind: progress.ManifestExists, Digest: have.digest, Tag: dl.Tag(), MediaType: desc.MediaType})
				res.UpToDate = true
				if o.Referrers {
					if err := c.copyReferrers(ctx, desc); err != nil {
						return Result{}, err
					}
				}
				res.Reference = dl.WithDigest(desc.Digest)
				return res, nil
			}
			emit(progress.Event{Kind: progress.Info, Digest: desc.Digest.String(),
				Message: fmt.Sprintf("%s names this index but lacks %d of the manifests under it: copying them", dl, missing)})
		}
	}

	tag := dl.Tag()
	if t, ok := dst.(interface{ Tag() string }); ok && tag == "" && !dl.IsRegistry() && dl.Name == "" {
		// "oci:DIR" without a name: the layout records the root under its default.
		tag = t.Tag()
	}
	if err := c.copyTree(ctx, desc, raw, tag); err != nil {
		return Result{}, err
	}
	if o.Referrers {
		if err := c.copyReferrers(ctx, desc); err != nil {
			return Result{}, err
		}
	}
	res.Reference = dl.WithDigest(desc.Digest)
	return res, nil
}

// defaultPlatform is what a single-image target gets from an index without --platform:
// linux on this machine's architecture, as docker pull chooses.
func defaultPlatform() v1.Platform {
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if p.Architecture == "arm" {
		p.Variant = "v7"
	}
	return p
}

type copier struct {
	e      *Engine
	o      Options
	emit   func(progress.Event)
	src    imagestore.Source
	dst    imagestore.Target
	srcLoc Location
	dstLoc Location

	// seen holds the referrers already copied, so cycles and repeats are cut.
	seen map[digest.Digest]bool
}

// archiveDigest sets res to the digest of what the docker-archive just written holds
// when read back (docker's own manifest form, which hubctl digest and a push of the
// archive use), and says so when it is not the source's.
func archiveDigest(dl Location, res *Result, emit func(progress.Event)) error {
	r, err := dockerarchive.Open(dl.Path, dl.Name)
	if err != nil {
		return fmt.Errorf("read back %s: %w", dl, err)
	}
	defer r.Close()
	desc, _, err := r.Root(context.Background())
	if err != nil {
		return fmt.Errorf("read back %s: %w", dl, err)
	}
	if desc.Digest != res.Digest {
		emit(progress.Event{Kind: progress.Info, Digest: desc.Digest.String(),
			Message: fmt.Sprintf("the archive holds the image in docker's manifest form: its digest is %s (the source's manifest is %s)", desc.Digest, res.Digest)})
		res.Digest, res.MediaType, res.DigestChanged = desc.Digest, desc.MediaType, true
	}
	res.Reference = dl.WithDigest(desc.Digest)
	return nil
}

// missingChildren counts the manifests under the index desc (its children, and
// theirs for nested indexes) that the destination lacks; 0 for an image manifest.
func (c *copier) missingChildren(ctx context.Context, desc ocispec.Descriptor, raw []byte) (int, error) {
	if !isIndex(desc.MediaType) {
		return 0, nil
	}
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return 0, fmt.Errorf("parse index %s: %w", desc.Digest, err)
	}
	missing := 0
	for _, m := range idx.Manifests {
		child := ocispec.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size}
		has, err := c.dst.HasManifest(ctx, child)
		if err != nil {
			return 0, fmt.Errorf("check %s@%s: %w", c.dstLoc, m.Digest, err)
		}
		if !has {
			missing++
			continue
		}
		if isIndex(m.MediaType) {
			craw, err := c.src.Manifest(ctx, child)
			if err != nil {
				return 0, fmt.Errorf("read %s@%s: %w", c.srcLoc, m.Digest, err)
			}
			n, err := c.missingChildren(ctx, child, craw)
			if err != nil {
				return 0, err
			}
			missing += n
		}
	}
	return missing, nil
}

type manifestNode struct {
	desc ocispec.Descriptor
	raw  []byte
}

// copyTree copies a manifest or index with everything under it: blobs first (in
// parallel), then child manifests, then the root under tag. Children the destination
// already holds are skipped with their subtrees.
func (c *copier) copyTree(ctx context.Context, root ocispec.Descriptor, rootRaw []byte, tag string) error {
	var blobs []ocispec.Descriptor
	var children []manifestNode
	blobSeen := map[digest.Digest]bool{}
	var walk func(desc ocispec.Descriptor, raw []byte, isRoot bool) error
	walk = func(desc ocispec.Descriptor, raw []byte, isRoot bool) error {
		if !isRoot {
			has, err := c.dst.HasManifest(ctx, desc)
			if err != nil {
				return fmt.Errorf("check %s@%s: %w", c.dstLoc, desc.Digest, err)
			}
			if has {
				c.emit(progress.Event{Kind: progress.ManifestExists, Digest: desc.Digest.String(), MediaType: desc.MediaType, Size: desc.Size})
				return nil
			}
		}
		if isIndex(desc.MediaType) {
			var idx ocispec.Index
			if err := json.Unmarshal(raw, &idx); err != nil {
				return fmt.Errorf("parse index %s: %w", desc.Digest, err)
			}
			for _, m := range idx.Manifests {
				craw, err := c.src.Manifest(ctx, m)
				if err != nil {
					return fmt.Errorf("read %s@%s: %w", c.srcLoc, m.Digest, err)
				}
				if err := walk(ocispec.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size}, craw, false); err != nil {
					return err
				}
			}
		} else {
			var m ocispec.Manifest
			if err := json.Unmarshal(raw, &m); err != nil {
				return fmt.Errorf("parse manifest %s: %w", desc.Digest, err)
			}
			if mf, ok := c.dst.(imagestore.ManifestFirst); ok {
				if err := mf.ExpectManifest(ctx, desc, raw); err != nil {
					return fmt.Errorf("write %s: %w", c.dstLoc, err)
				}
			}
			for _, b := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
				if b.Digest == "" || blobSeen[b.Digest] {
					continue
				}
				blobSeen[b.Digest] = true
				blobs = append(blobs, b)
			}
		}
		if !isRoot {
			children = append(children, manifestNode{desc: desc, raw: raw})
		}
		return nil
	}
	if err := walk(root, rootRaw, true); err != nil {
		return err
	}
	if err := c.copyBlobs(ctx, blobs); err != nil {
		return err
	}
	// Children were appended after their own children, so each goes after what it needs.
	for _, ch := range children {
		if err := c.putManifest(ctx, ch.desc, ch.raw, ""); err != nil {
			return err
		}
	}
	return c.putManifest(ctx, root, rootRaw, tag)
}

func (c *copier) putManifest(ctx context.Context, desc ocispec.Descriptor, raw []byte, tag string) error {
	if err := c.dst.PutManifest(ctx, desc, raw, tag); err != nil {
		return fmt.Errorf("write manifest to %s: %w", c.dstLoc, err)
	}
	c.emit(progress.Event{Kind: progress.ManifestPushed, Digest: desc.Digest.String(), MediaType: desc.MediaType, Size: desc.Size, Tag: tag})
	return nil
}

func (c *copier) copyBlobs(ctx context.Context, blobs []ocispec.Descriptor) error {
	jobs := c.o.Jobs
	if s, ok := c.dst.(imagestore.Sequential); ok && s.Sequential() {
		jobs = 1
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for _, b := range blobs {
		g.Go(func() error {
			if err := c.copyBlob(gctx, b); err != nil {
				// A blob stopped because a sibling failed (or the user cancelled) did
				// not fail itself; counting it would inflate the summary.
				if gctx.Err() == nil || !errors.Is(err, context.Canceled) {
					c.emit(progress.Event{Kind: progress.BlobFailed, Digest: b.Digest.String(), Size: b.Size, Error: errorText(err)})
				}
				return err
			}
			return nil
		})
	}
	return g.Wait()
}

// copyBlobOnce moves one blob unless the destination has it or can mount it. A failed
// upload to a registry starts again from the source, a few times.
func (c *copier) copyBlobOnce(ctx context.Context, b ocispec.Descriptor) error {
	ev := progress.Event{Digest: b.Digest.String(), MediaType: b.MediaType, Size: b.Size}
	has, err := c.dst.HasBlob(ctx, b)
	if err != nil {
		return fmt.Errorf("check blob %s at %s: %w", b.Digest, c.dstLoc, err)
	}
	if has {
		ev.Kind = progress.BlobExists
		c.emit(ev)
		return nil
	}
	location := ""
	if from, ok := c.mountSource(b); ok {
		rs := c.dst.(*registryStore)
		mounted, loc, err := rs.mount(ctx, b, from)
		if err == nil && mounted {
			ev.Kind, ev.From = progress.BlobMounted, from
			c.emit(ev)
			return nil
		}
		location = loc
	}

	const attempts = 3
	_, retryable := c.dst.(*registryStore)
	for attempt := 1; ; attempt++ {
		err = c.sendBlob(ctx, b, location)
		if err == nil {
			return nil
		}
		location = ""
		if !retryable || attempt >= attempts || ctx.Err() != nil || errors.Is(err, imagestore.ErrNotFound) || isClientError(err) {
			return err
		}
		wait := time.Duration(attempt) * time.Second
		c.emit(progress.Event{Kind: progress.Retry, Digest: b.Digest.String(), Attempt: attempt + 1, Wait: wait, Error: err.Error()})
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

func (c *copier) sendBlob(ctx context.Context, b ocispec.Descriptor, location string) error {
	rc, err := c.src.Blob(ctx, b)
	if err != nil {
		return fmt.Errorf("read blob %s from %s: %w", b.Digest, c.srcLoc, err)
	}
	defer rc.Close()
	c.emit(progress.Event{Kind: progress.BlobStarted, Digest: b.Digest.String(), MediaType: b.MediaType, Size: b.Size})
	var r io.Reader = rc
	if v, ok := c.dst.(imagestore.VerifiesDigests); !ok || !v.VerifiesDigests() {
		r = newVerifier(r, b)
	}
	pr := &progressReader{r: r, limiter: c.o.Limiter, ctx: ctx, report: func(n int64) {
		c.emit(progress.Event{Kind: progress.BlobProgress, Digest: b.Digest.String(), Size: b.Size, Bytes: n})
	}}
	if rs, ok := c.dst.(*registryStore); ok && location != "" {
		err = rs.uploadAt(ctx, b, pr, location)
	} else {
		err = c.dst.PutBlob(ctx, b, pr)
	}
	if err != nil {
		return fmt.Errorf("write blob %s to %s: %w", b.Digest, c.dstLoc, err)
	}
	c.emit(progress.Event{Kind: progress.BlobDone, Digest: b.Digest.String(), MediaType: b.MediaType, Size: b.Size, Bytes: pr.n})
	return nil
}

// mountSource is the repository to mount blob b from: where the source says the blob
// lives, or the source's own repository, when it and the destination are different
// repositories of one registry.
func (c *copier) mountSource(b ocispec.Descriptor) (string, bool) {
	if o, ok := c.src.(imagestore.BlobOrigin); ok && c.dstLoc.Kind == KindRegistry {
		host, repo, ok := o.BlobOrigin(b)
		if ok && sameRegistry(host, c.dstLoc.Ref.Host) && repo != c.dstLoc.Ref.Path {
			return repo, true
		}
	}
	if c.srcLoc.Kind != KindRegistry || c.dstLoc.Kind != KindRegistry {
		return "", false
	}
	s, d := c.srcLoc.Ref, c.dstLoc.Ref
	if !sameRegistry(s.Host, d.Host) || s.Path == d.Path {
		return "", false
	}
	return s.Path, true
}

// copyReferrers copies, by digest, every manifest that refers to desc (and to its
// children), and what refers to those in turn.
func (c *copier) copyReferrers(ctx context.Context, desc ocispec.Descriptor) error {
	rs, ok := c.src.(registrySource)
	if !ok {
		c.emit(progress.Event{Kind: progress.Info, Message: "referrers are copied between registries only; skipped"})
		return nil
	}
	if _, ok := c.dst.(*registryStore); !ok {
		c.emit(progress.Event{Kind: progress.Info, Message: "referrers are copied between registries only; skipped"})
		return nil
	}
	subjects := []ocispec.Descriptor{desc}
	if isIndex(desc.MediaType) {
		raw, err := c.src.Manifest(ctx, desc)
		if err == nil {
			var idx ocispec.Index
			if json.Unmarshal(raw, &idx) == nil {
				subjects = append(subjects, idx.Manifests...)
			}
		}
	}
	for len(subjects) > 0 {
		s := subjects[0]
		subjects = subjects[1:]
		refs, err := rs.referrers(ctx, s)
		if err != nil {
			return err
		}
		for _, r := range refs {
			if c.seen[r.Digest] {
				continue
			}
			c.seen[r.Digest] = true
			rd := ocispec.Descriptor{MediaType: r.MediaType, Digest: r.Digest, Size: r.Size}
			raw, err := c.src.Manifest(ctx, rd)
			if err != nil {
				return fmt.Errorf("read referrer %s: %w", r.Digest, err)
			}
			has, err := c.dst.HasManifest(ctx, rd)
			if err != nil {
				return err
			}
			if has {
				c.emit(progress.Event{Kind: progress.ManifestExists, Digest: rd.Digest.String(), MediaType: rd.MediaType})
			} else if err := c.copyTree(ctx, rd, raw, ""); err != nil {
				return fmt.Errorf("copy referrer %s: %w", r.Digest, err)
			}
			subjects = append(subjects, rd)
		}
	}
	return nil
}

// errorText is err as progress events carry it: a cause that can say itself in one
// line (distclient.Error: who is logged in and what was refused; an image the Docker
// engine lacks) in those words, other errors whole. The command's final error keeps
// the whole chain for --debug.
func errorText(err error) string {
	var s interface {
		error
		Summary() string
	}
	if errors.As(err, &s) {
		return s.Summary()
	}
	return err.Error()
}

func isClientError(err error) bool {
	var e *distclient.Error
	return errors.As(err, &e) && e.Status >= 400 && e.Status < 500 && e.Status != 408 && e.Status != 429
}
