package layering

import (
	"fmt"
	"io"
	"runtime"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Compression is how layers are compressed.
type Compression string

// The compressions `--compression` accepts.
const (
	Gzip Compression = "gzip"
	Zstd Compression = "zstd"
)

// ParseCompression reads a --compression value ("" is gzip).
func ParseCompression(s string) (Compression, error) {
	switch Compression(s) {
	case "", Gzip:
		return Gzip, nil
	case Zstd:
		return Zstd, nil
	}
	return "", fmt.Errorf("compression must be gzip or zstd, not %q", s)
}

// MediaType is the OCI layer media type of the compression.
func (c Compression) MediaType() string {
	if c == Zstd {
		return ocispec.MediaTypeImageLayerZstd
	}
	return ocispec.MediaTypeImageLayerGzip
}

// Fixed so that a layer compresses to the same bytes on every machine: pgzip cuts the
// stream into blocks of this size whatever the number of cores, and zstd's concurrent
// jobs are sized by its window, not by its goroutines.
const (
	gzipBlockSize = 1 << 20
	gzipLevel     = pgzip.DefaultCompression
)

// newCompressor returns a writer compressing into w with c, using every core.
func newCompressor(w io.Writer, c Compression) (io.WriteCloser, error) {
	procs := runtime.GOMAXPROCS(0)
	if c == Zstd {
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithEncoderConcurrency(procs), zstd.WithConcurrentBlocks(true),
			zstd.WithWindowSize(1<<22), zstd.WithEncoderCRC(true))
	}
	gz, err := pgzip.NewWriterLevel(w, gzipLevel)
	if err != nil {
		return nil, err
	}
	if err := gz.SetConcurrency(gzipBlockSize, max(procs*2, 4)); err != nil {
		return nil, err
	}
	return gz, nil
}
