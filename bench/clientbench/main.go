// Command clientbench is the helper of bench/client.sh, which measures hubctl's client
// verbs (copy, mirror) against crane, skopeo and regctl. It has two modes:
//
//	clientbench layout -dir DIR -refs a,b,c -layers N -size MIN[-MAX] [-shared K] [-seed S]
//
// writes (or adds to) an OCI image layout at DIR: one linux/amd64 image per ref name, each
// of N gzip layers holding one file of incompressible random bytes (ChaCha8) of a size
// between MIN and MAX. The first K layers are the same in every image of the call (a base
// layer shared within a repository); the others differ per image. The gzip is stored
// (level 0), so a layer costs little more than its bytes to write and stays a valid
// gzip of a tar. Prints "REF DIGEST" per image.
//
//	clientbench report [-copy-label S] [-mirror-label S] FILE
//
// reads the measurements client.sh appends to FILE (tab-separated: operation, tool,
// round, seconds, peak RSS KiB, client CPU seconds, ok|fail) and prints the table of
// medians and the ratios the issue asks about. Exit status 3 when a target is missed.
//
// It is a benchmark helper, not a test.
package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "layout":
		err = layoutMain(os.Args[2:])
	case "report":
		var missed bool
		missed, err = reportMain(os.Args[2:])
		if err == nil && missed {
			os.Exit(3)
		}
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "clientbench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: clientbench layout -dir DIR -refs a,b -layers N -size MIN[-MAX] [-shared K] [-seed S]\n       clientbench report FILE")
	os.Exit(2)
}

// ---- layout ----------------------------------------------------------------------

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type layerKey struct {
	image int // -1 for a shared layer
	index int
}

type layerBlob struct {
	desc   descriptor
	diffID string
}

func layoutMain(args []string) error {
	fs := flag.NewFlagSet("layout", flag.ExitOnError)
	dir := fs.String("dir", "", "OCI layout directory (created or added to)")
	refs := fs.String("refs", "", "comma-separated ref names, one image each")
	layers := fs.Int("layers", 3, "layers per image")
	sizeFlag := fs.String("size", "1MiB", "layer size, or MIN-MAX")
	shared := fs.Int("shared", 0, "leading layers common to every image of this call")
	seed := fs.Uint64("seed", 1, "content seed")
	fs.Parse(args)
	if *dir == "" || *refs == "" || *layers < 1 || *shared < 0 || *shared > *layers {
		return errors.New("layout: need -dir, -refs, -layers ≥ 1 and 0 ≤ -shared ≤ -layers")
	}
	minSize, maxSize, err := parseRange(*sizeFlag)
	if err != nil {
		return err
	}
	names := strings.Split(*refs, ",")
	blobDir := filepath.Join(*dir, "blobs", "sha256")
	if err := os.MkdirAll(blobDir, 0o755); err != nil {
		return err
	}

	// Every distinct layer once, in parallel (one per core).
	keys := map[layerKey]bool{}
	for i := range names {
		for l := 0; l < *layers; l++ {
			keys[keyFor(i, l, *shared)] = true
		}
	}
	var (
		mu      sync.Mutex
		blobs   = map[layerKey]layerBlob{}
		firstEr error
		wg      sync.WaitGroup
		sem     = make(chan struct{}, runtime.GOMAXPROCS(0))
	)
	for k := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			src := newSource(*seed, k)
			size := minSize
			if maxSize > minSize {
				size += int64(rand.New(src).Uint64N(uint64(maxSize - minSize + 1)))
			}
			b, err := writeLayer(blobDir, src, size)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstEr == nil {
				firstEr = err
			}
			blobs[k] = b
		}()
	}
	wg.Wait()
	if firstEr != nil {
		return firstEr
	}

	var added []descriptor
	for i, name := range names {
		var ls []descriptor
		var diffIDs []string
		for l := 0; l < *layers; l++ {
			b := blobs[keyFor(i, l, *shared)]
			ls = append(ls, b.desc)
			diffIDs = append(diffIDs, b.diffID)
		}
		config := map[string]any{
			"architecture": "amd64",
			"os":           "linux",
			"created":      time.Unix(0, 0).UTC().Format(time.RFC3339),
			"config":       map[string]any{"Labels": map[string]string{"clientbench.ref": name}},
			"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
		}
		cd, err := writeJSON(blobDir, "application/vnd.oci.image.config.v1+json", config)
		if err != nil {
			return err
		}
		manifest := map[string]any{
			"schemaVersion": 2,
			"mediaType":     "application/vnd.oci.image.manifest.v1+json",
			"config":        cd,
			"layers":        ls,
		}
		md, err := writeJSON(blobDir, "application/vnd.oci.image.manifest.v1+json", manifest)
		if err != nil {
			return err
		}
		md.Annotations = map[string]string{"org.opencontainers.image.ref.name": name}
		added = append(added, md)
		fmt.Printf("%s %s\n", name, md.Digest)
	}
	return updateIndex(*dir, added)
}

// keyFor names layer l of image i: the first shared layers are common to all images.
func keyFor(i, l, shared int) layerKey {
	if l < shared {
		return layerKey{-1, l}
	}
	return layerKey{i, l}
}

func newSource(seed uint64, k layerKey) *rand.ChaCha8 {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[0:], seed)
	binary.LittleEndian.PutUint64(s[8:], uint64(int64(k.image)))
	binary.LittleEndian.PutUint64(s[16:], uint64(k.index))
	binary.LittleEndian.PutUint64(s[24:], 0x636c69656e746263) // "clientbc"
	return rand.NewChaCha8(s)
}

// writeLayer writes a gzip (stored) tar of one file of size random bytes into blobDir
// under its digest.
func writeLayer(blobDir string, src io.Reader, size int64) (layerBlob, error) {
	f, err := os.CreateTemp(blobDir, ".layer-*")
	if err != nil {
		return layerBlob{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := f.Chmod(0o644); err != nil {
		return layerBlob{}, err
	}
	blobHash, diffHash := sha256.New(), sha256.New()
	counter := &countWriter{}
	bw := bufio.NewWriterSize(io.MultiWriter(f, blobHash, counter), 1<<20)
	gz, err := gzip.NewWriterLevel(bw, gzip.NoCompression)
	if err != nil {
		return layerBlob{}, err
	}
	tw := tar.NewWriter(io.MultiWriter(gz, diffHash))
	hdr := &tar.Header{Name: "data", Mode: 0o644, Size: size, ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return layerBlob{}, err
	}
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := int64(len(buf))
		if left < n {
			n = left
		}
		src.Read(buf[:n]) // ChaCha8.Read never fails
		if _, err := tw.Write(buf[:n]); err != nil {
			return layerBlob{}, err
		}
		left -= n
	}
	if err := tw.Close(); err != nil {
		return layerBlob{}, err
	}
	if err := gz.Close(); err != nil {
		return layerBlob{}, err
	}
	if err := bw.Flush(); err != nil {
		return layerBlob{}, err
	}
	if err := f.Close(); err != nil {
		return layerBlob{}, err
	}
	hexd := hex.EncodeToString(blobHash.Sum(nil))
	if err := os.Rename(f.Name(), filepath.Join(blobDir, hexd)); err != nil {
		return layerBlob{}, err
	}
	return layerBlob{
		desc:   descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: "sha256:" + hexd, Size: counter.n},
		diffID: digestOf(diffHash),
	}, nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func digestOf(h hash.Hash) string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }

func writeJSON(blobDir, mediaType string, v any) (descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return descriptor{}, err
	}
	sum := sha256.Sum256(b)
	hexd := hex.EncodeToString(sum[:])
	if err := os.WriteFile(filepath.Join(blobDir, hexd), b, 0o644); err != nil {
		return descriptor{}, err
	}
	return descriptor{MediaType: mediaType, Digest: "sha256:" + hexd, Size: int64(len(b))}, nil
}

// updateIndex adds the manifests to DIR/index.json, replacing entries of the same ref
// name, and writes DIR/oci-layout.
func updateIndex(dir string, added []descriptor) error {
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return err
	}
	index := struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Manifests     []descriptor `json:"manifests"`
	}{SchemaVersion: 2, MediaType: "application/vnd.oci.image.index.v1+json"}
	path := filepath.Join(dir, "index.json")
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &index); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	const refName = "org.opencontainers.image.ref.name"
	replaced := map[string]bool{}
	for _, d := range added {
		replaced[d.Annotations[refName]] = true
	}
	kept := index.Manifests[:0]
	for _, d := range index.Manifests {
		if !replaced[d.Annotations[refName]] {
			kept = append(kept, d)
		}
	}
	index.Manifests = append(kept, added...)
	b, err := json.MarshalIndent(index, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func parseRange(s string) (int64, int64, error) {
	lo, hi, found := strings.Cut(s, "-")
	a, err := parseSize(lo)
	if err != nil {
		return 0, 0, err
	}
	if !found {
		return a, a, nil
	}
	b, err := parseSize(hi)
	if err != nil {
		return 0, 0, err
	}
	if b < a {
		return 0, 0, fmt.Errorf("size range %q: MAX below MIN", s)
	}
	return a, b, nil
}

func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mul    int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	mul := int64(1)
	num := strings.TrimSpace(s)
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			num, mul = strings.TrimSuffix(num, u.suffix), u.mul
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/mul {
		return 0, fmt.Errorf("%q is not a size like 128MiB", s)
	}
	return n * mul, nil
}
