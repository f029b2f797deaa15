package tui

import (
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/hubctl/hubctl/internal/progress"
)

// Synthetic event sequences shared by the tests, shaped like what the transfer
// engine and mirror emit.

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func digestOf(s string) string { return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(s))) }

const mib = 1 << 20

// pushEvents is one image: blobs done, existing, mounted, failed, one retried,
// an info, the manifest and the image done.
func pushEvents() []progress.Event {
	const img = "127.0.0.1:5000/app:1"
	layer, config, base, shared, sig := digestOf("layer"), digestOf("config"), digestOf("base"), digestOf("shared"), digestOf("sig")
	manifest := digestOf("manifest")
	evs := []progress.Event{
		{Kind: progress.ImageStarted, Source: "oci-layout:./app"},
		{Kind: progress.BlobExists, Digest: base, Size: 3 * mib},
		{Kind: progress.BlobMounted, Digest: shared, Size: 5 * mib, From: "library/base"},
		{Kind: progress.BlobStarted, Digest: layer, Size: 4 * mib},
		{Kind: progress.BlobStarted, Digest: config, Size: 1536},
		{Kind: progress.BlobProgress, Digest: layer, Size: 4 * mib, Bytes: 1 * mib},
		{Kind: progress.BlobDone, Digest: config, Size: 1536, Bytes: 1536},
		{Kind: progress.Retry, Digest: layer, Attempt: 1, Wait: time.Second, Error: "PATCH upload: 503 Service Unavailable"},
		{Kind: progress.BlobProgress, Digest: layer, Size: 4 * mib, Bytes: 2 * mib},
		{Kind: progress.BlobProgress, Digest: layer, Size: 4 * mib, Bytes: 4 * mib},
		{Kind: progress.BlobDone, Digest: layer, Size: 4 * mib, Bytes: 4 * mib},
		{Kind: progress.BlobStarted, Digest: sig, Size: 700},
		{Kind: progress.BlobFailed, Digest: sig, Size: 700, Error: "PUT upload: 400 Bad Request: DIGEST_INVALID"},
		{Kind: progress.Info, Message: "referrers are copied between registries only; skipped"},
		{Kind: progress.ManifestPushed, Digest: manifest, Size: 812, Tag: "1"},
		{Kind: progress.ImageDone, Digest: manifest},
	}
	for i := range evs {
		evs[i].Image = img
		evs[i].Time = t0.Add(time.Duration(i) * 100 * time.Millisecond)
	}
	return evs
}

// mirrorEvents are two images in flight at once; the second fails.
func mirrorEvents() []progress.Event {
	const app, db = "registry.example/mirror/app:1", "registry.example/mirror/db:2"
	evs := []progress.Event{
		{Image: app, Kind: progress.ImageStarted, Source: "docker.io/library/app:1"},
		{Image: db, Kind: progress.ImageStarted, Source: "docker.io/library/db:2"},
		{Image: app, Kind: progress.BlobStarted, Digest: digestOf("app-layer"), Size: 12 * mib},
		{Image: db, Kind: progress.BlobStarted, Digest: digestOf("db-layer"), Size: 30 * mib},
		{Image: app, Kind: progress.BlobProgress, Digest: digestOf("app-layer"), Size: 12 * mib, Bytes: 6 * mib},
		{Image: db, Kind: progress.BlobProgress, Digest: digestOf("db-layer"), Size: 30 * mib, Bytes: 3 * mib},
		{Image: app, Kind: progress.BlobExists, Digest: digestOf("app-config"), Size: 2048},
		{Image: db, Kind: progress.Retry, Attempt: 2, Wait: 2500 * time.Millisecond, Error: "GET manifest: 429 Too Many Requests"},
		{Image: app, Kind: progress.BlobDone, Digest: digestOf("app-layer"), Size: 12 * mib, Bytes: 12 * mib},
		{Image: db, Kind: progress.BlobFailed, Digest: digestOf("db-layer"), Size: 30 * mib, Error: "unexpected EOF"},
		{Image: app, Kind: progress.ManifestExists, Digest: digestOf("app-manifest-amd64")},
		{Image: app, Kind: progress.ManifestPushed, Digest: digestOf("app-index"), Tag: "1"},
		{Image: db, Kind: progress.ImageFailed, Error: "copy blob sha256:6e1f: unexpected EOF"},
		{Image: app, Kind: progress.ImageDone, Digest: digestOf("app-index")},
	}
	for i := range evs {
		evs[i].Time = t0.Add(time.Duration(i) * 100 * time.Millisecond)
	}
	return evs
}

// feed sends evs on an unbuffered channel, so a renderer that stopped draining
// would hang the test, and closes it.
func feed(evs []progress.Event) <-chan progress.Event {
	ch := make(chan progress.Event)
	go func() {
		defer close(ch)
		for _, e := range evs {
			ch <- e
		}
	}()
	return ch
}

// fixedClock returns t0 on its first call and t0+elapsed afterwards, so the summary
// of a Render has a known elapsed time.
func fixedClock(elapsed time.Duration) func() time.Time {
	calls := 0
	return func() time.Time {
		calls++
		if calls == 1 {
			return t0
		}
		return t0.Add(elapsed)
	}
}
