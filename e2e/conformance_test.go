package e2e

import (
	"encoding/xml"
	"errors"
	"github.com/hubctl/hubctl/internal/pgtest"
	"github.com/hubctl/hubctl/internal/s3test"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// conformanceEnv is the suite's configuration: every API workflow and every data option
// the spec allows a registry to be held to. The names are the suite's own (config.go of
// github.com/opencontainers/distribution-spec/conformance); the legacy OCI_TEST_* names
// are deprecated aliases of the OCI_API_* ones and only add warnings, so they are not set.
func conformanceEnv(addr, version, resultsDir string) []string {
	env := cleanEnv("OCI_") // a stray OCI_* in the shell must not reconfigure the suite
	return append(env,
		"OCI_REGISTRY="+addr,
		"OCI_TLS=disabled",
		"OCI_VERSION="+version,
		"OCI_RESULTS_DIR="+resultsDir,
		"OCI_LOG=warn",
		// Two repositories so cross-repository mount is exercised.
		"OCI_REPO1=conformance/repo1",
		"OCI_REPO2=conformance/repo2",
		// Workflows: pull, push, content discovery (tags list, referrers), content
		// management (deletes), plus the optional checks the 1.1 defaults leave off but
		// issue 2 requires (upload cancel, Docker-Content-Digest on every response).
		"OCI_API_PULL=true",
		"OCI_API_PUSH=true",
		"OCI_API_BLOBS_ATOMIC=true",
		"OCI_API_BLOBS_DELETE=true",
		"OCI_API_BLOBS_DIGEST_HEADER=true",
		"OCI_API_BLOBS_MOUNT_ANONYMOUS=true",
		"OCI_API_BLOBS_UPLOAD_CANCEL=true",
		"OCI_API_MANIFESTS_ATOMIC=true",
		"OCI_API_MANIFESTS_DELETE=true",
		"OCI_API_MANIFESTS_DIGEST_HEADER=true",
		"OCI_API_MANIFESTS_TAG_PARAM=true",
		"OCI_API_TAGS_ATOMIC=true",
		"OCI_API_TAGS_DELETE=true",
		"OCI_API_TAGS_LIST=true",
		"OCI_API_REFERRER=true",
		// Data: every kind of content. OCI_DATA_SPARSE stays off on purpose: it expects a
		// manifest with unpushed descriptors to be accepted, which contradicts the
		// MANIFEST_BLOB_UNKNOWN check issue 2 requires. ?tag= on a manifest PUT is
		// newer than 1.1, but hubctl serves it, so it is held to it on both versions.
		"OCI_DATA_IMAGE=true",
		"OCI_DATA_INDEX=true",
		"OCI_DATA_INDEX_LIST=true",
		"OCI_DATA_SPARSE=false",
		"OCI_DATA_ARTIFACT=true",
		"OCI_DATA_SUBJECT=true",
		"OCI_DATA_SUBJECT_MISSING=true",
		"OCI_DATA_ARTIFACT_LIST=true",
		"OCI_DATA_SUBJECT_LIST=true",
		"OCI_DATA_DATA_FIELD=true",
		"OCI_DATA_NONDISTRIBUTABLE=true",
		"OCI_DATA_CUSTOM_FIELDS=true",
		"OCI_DATA_NO_LAYERS=true",
		"OCI_DATA_EMPTY_BLOB=true",
		"OCI_DATA_SHA512=true",
	)
}

// junit mirrors the parts of the suite's junit.xml the harness reads.
type junit struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Errors   int `xml:"errors,attr"`
	Skipped  int `xml:"skipped,attr"`
	Disabled int `xml:"disabled,attr"`
	Suites   []struct {
		Cases []struct {
			Name      string `xml:"name,attr"`
			Status    string `xml:"status,attr"`
			SystemOut string `xml:"system-out"`
			SystemErr string `xml:"system-err"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// conformanceResult is what one run of the suite produced.
type conformanceResult struct {
	Passed, Failed, Errored, Skipped int // leaf test cases
	Failures                         []string
	Totals                           junit
}

// runConformance runs the suite binary against s in a fresh working directory (the suite
// reads ./oci-conformance.yaml from its cwd) and parses its junit.xml. It fails the test
// when no results were written: the suite exits 0 when its configuration fails to load.
func runConformance(t *testing.T, s *server, version string, extraEnv ...string) conformanceResult {
	t.Helper()
	bin := tool(t, "conformance")
	work := t.TempDir()
	results := filepath.Join(work, "results")
	stdout, stderr, err := runErr(t, work, append(conformanceEnv(s.Addr, version, results), extraEnv...), bin)
	// The exit status is not trusted either way (0 on a config error, 1 on any failure):
	// the results file decides.
	if err != nil {
		t.Logf("conformance exited: %v", err)
	}
	if strings.TrimSpace(stderr) != "" {
		t.Logf("conformance stderr:\n%s", truncate([]byte(stderr), 8000))
	}
	// Keep the summary table visible in the test log for the report.
	if i := strings.Index(stdout, "OCI Conformance Result:"); i >= 0 {
		t.Logf("conformance summary (OCI_VERSION=%s):\n%s", version, truncate([]byte(stdout[i:]), 6000))
	}
	raw, err := os.ReadFile(filepath.Join(results, "junit.xml"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("conformance suite wrote no results (%s missing); stdout:\n%s\nstderr:\n%s",
				filepath.Join(results, "junit.xml"), truncate([]byte(stdout), 4000), truncate([]byte(stderr), 4000))
		}
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(results, "results.yaml")); err != nil {
		t.Errorf("conformance results.yaml: %v", err)
	}
	var j junit
	if err := xml.Unmarshal(raw, &j); err != nil {
		t.Fatalf("parse junit.xml: %v", err)
	}
	r := conformanceResult{Totals: j}
	for _, suite := range j.Suites {
		for _, c := range suite.Cases {
			switch c.Status {
			case "passed":
				r.Passed++
			case "skipped":
				r.Skipped++
			case "failure":
				r.Failed++
				r.Failures = append(r.Failures, c.Name+": "+strings.TrimSpace(c.SystemOut))
			default:
				r.Errored++
				r.Failures = append(r.Failures, c.Name+" ("+c.Status+"): "+strings.TrimSpace(c.SystemOut))
			}
		}
	}
	// The suite's own counters (the figures its summary and FACTS.md quote) count every
	// node of its test tree; the leaf counts are the individual junit test cases.
	t.Logf("OCI_VERSION=%s: suite counters: %d passed, %d failed, %d errors, %d skipped, %d disabled (of %d); junit leaf cases: %d passed, %d failed, %d errors, %d skipped/disabled",
		version, j.Tests-j.Failures-j.Errors-j.Skipped-j.Disabled, j.Failures, j.Errors, j.Skipped, j.Disabled, j.Tests,
		r.Passed, r.Failed, r.Errored, r.Skipped)
	return r
}

// TestConformance runs the official OCI distribution-spec conformance suite against a
// real `hubctl serve`: OCI_VERSION=1.1 must pass with zero failures; OCI_VERSION=dev is
// run and reported (issue 2 asks for its numbers) but does not gate.
func TestConformance(t *testing.T) {
	tool(t, "conformance")

	t.Run("v1.1", func(t *testing.T) {
		s := startServer(t)
		r := runConformance(t, s, "1.1")
		for _, f := range r.Failures {
			t.Errorf("FAIL %s", truncate([]byte(f), 2000))
		}
		if r.Passed == 0 {
			t.Errorf("conformance: 0 tests passed")
		}
	})

	// With token auth on (the default), as the admin: the suite does the Docker token
	// dance for every request and must still pass in full.
	t.Run("v1.1-auth", func(t *testing.T) {
		s := startAuthServer(t)
		r := runConformance(t, s, "1.1", "OCI_USERNAME=admin", "OCI_PASSWORD="+adminPassword)
		for _, f := range r.Failures {
			t.Errorf("FAIL %s", truncate([]byte(f), 2000))
		}
		if r.Passed == 0 {
			t.Errorf("conformance with auth: 0 tests passed")
		}
	})

	// The scale-out setup: blobs on a real S3 server (versitygw), metadata in a real
	// PostgreSQL, token auth on. It must be as conformant as the defaults.
	t.Run("v1.1-s3-postgres", func(t *testing.T) {
		endpoint, access, secret, bucket := s3test.Start(t)
		dsn := pgtest.Start(t)
		// Secrets go through the environment, never the command line (ps shows it).
		s := startServerEnv(t, t.TempDir(),
			[]string{"HUBCTL_STORAGE_S3_ACCESS_KEY=" + access, "HUBCTL_STORAGE_S3_SECRET_KEY=" + secret, "HUBCTL_DB_PATH=" + dsn},
			"--storage=s3", "--s3-endpoint="+endpoint, "--s3-bucket="+bucket, "--s3-region=us-east-1", "--s3-path-style")
		// Blob GETs answer 307 to a presigned bucket URL (the default for S3/COS): the
		// bucket's answer cannot carry Docker-Content-Digest, which the spec makes
		// optional on blob GETs, so that one optional check is off here; the redirect
		// itself is what this run holds to the spec.
		r := runConformance(t, s, "1.1", "OCI_USERNAME=admin", "OCI_PASSWORD="+adminPassword, "OCI_API_BLOBS_DIGEST_HEADER=false")
		for _, f := range r.Failures {
			t.Errorf("FAIL %s", truncate([]byte(f), 2000))
		}
		if r.Passed == 0 {
			t.Errorf("conformance on S3 and PostgreSQL: 0 tests passed")
		}
	})

	t.Run("dev", func(t *testing.T) {
		s := startServer(t)
		r := runConformance(t, s, "dev")
		for _, f := range r.Failures {
			t.Logf("dev failure (reported, not gating): %s", truncate([]byte(f), 2000))
		}
		if r.Passed == 0 {
			t.Errorf("conformance dev: 0 tests passed")
		}
	})
}
