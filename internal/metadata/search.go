package metadata

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/opencontainers/go-digest"
)

// Kinds of repository, from the config media type of the manifest last pushed under a
// tag (SearchDoc.Kind). A repository not indexed yet has kind "".
const (
	KindImage    = "image"
	KindChart    = "chart"
	KindArtifact = "artifact"
)

// Search bounds: a query is cut to MaxSearchQuery bytes and MaxSearchTerms terms; a
// page holds at most MaxSearchPage hits. A digest prefix needs MinDigestPrefix hex
// digits, so that one request cannot list a share of every manifest. Each term needs
// at least MinSearchTerm characters, the trigram length: the stores' indexes answer
// such a term, and a shorter one could only be compared row by row (alone, with
// every repository; beside a common word, with each of its matches).
const (
	MaxSearchQuery  = 100
	MaxSearchTerms  = 8
	MaxSearchPage   = 100
	MinDigestPrefix = 4
	MinSearchTerm   = 3
)

// SearchQuery is one search: Text is what the user typed. Terms are separated by
// spaces, have MinSearchTerm characters at least, and each must occur
// (case-insensitively, as a substring) in the repository's name, description or
// labels. Text of the form sha256:HEX (or 7 to 64 bare hex
// digits) is a digest prefix instead: the hits are the manifests whose digest starts
// with it. The other fields filter ("" is any); After is the Next of the previous
// page.
type SearchQuery struct {
	Text       string
	Namespace  string
	Kind       string // KindImage, KindChart, KindArtifact or ""
	Visibility string // "public", "private" or ""
	After      string
	Limit      int // 1..MaxSearchPage; 0 means MaxSearchPage
}

// SearchHit is one repository a search found; Digest is set when it was found by a
// manifest digest prefix (one hit per manifest).
type SearchHit struct {
	Repository  string
	Visibility  string
	Kind        string
	Description string
	Labels      map[string]string
	Digest      digest.Digest
	// IndexedAt is when the labels were last read from an image config (zero: never).
	IndexedAt time.Time
}

// SearchResult is one page of hits, newest repository first (digest-prefix hits: in
// repository name and digest order); Next is the After of the next page (an opaque
// cursor), "" on the last.
type SearchResult struct {
	Hits []SearchHit
	Next string
}

// SearchDoc is what a repository is found by besides its name: its kind, and the
// description and labels of the image config last pushed under a tag (Digest).
type SearchDoc struct {
	Kind        string
	Description string
	Labels      map[string]string
	Digest      digest.Digest
	// IfPending writes the document only if the repository was never indexed: the
	// backfill's, which must not replace what a push indexed meanwhile.
	IfPending bool
}

// PendingSearchDoc is a repository whose SearchDoc has never been written (stored
// before search existed): the backfill reads the manifest its newest tag points at.
type PendingSearchDoc struct {
	RepoID     int64
	Repository string
	Manifest   *Manifest // nil when the repository has no tag
}

// TagSort is the order of a tag page.
type TagSort string

// Tag page orders: by name, by the time the tag was pushed (moved), by the time its
// manifest was last pulled (never pulled sorts as the oldest).
const (
	TagSortName   TagSort = "name"
	TagSortPushed TagSort = "pushed"
	TagSortPulled TagSort = "pulled"
)

// TagInfo is one tag on a repository page.
type TagInfo struct {
	Name     string
	Digest   digest.Digest
	PushedAt time.Time
	PulledAt time.Time // zero: never pulled (or not recorded yet)
}

// TagPage is one page of a repository's tags and how many tags it has in all.
type TagPage struct {
	Tags  []TagInfo
	Total int
}

// Searcher is the store's search: the web UI's explore page, GET /api/v1/search and
// the repository page's tag table read through it.
type Searcher interface {
	// Search returns the repositories matching q that f selects (the caller may
	// pull), as Catalog would list them: the filter is applied in the same query, so
	// a private repository never reaches a caller who may not pull it. A malformed
	// query is an error wrapping ErrInvalidSearch.
	Search(ctx context.Context, f CatalogFilter, q SearchQuery) (SearchResult, error)
	// SetSearchDoc records what repo is found by (the push path, the backfill).
	SetSearchDoc(ctx context.Context, repo string, doc SearchDoc) error
	// PendingSearchDocs returns up to n repositories with an id above after whose
	// SearchDoc was never written, in id order, each with the manifest its most
	// recently pushed tag points at.
	PendingSearchDocs(ctx context.Context, after int64, n int) ([]PendingSearchDoc, error)
	// TagPage returns limit tags of repo from offset on, sorted by sort (ties by
	// name), and the count of all its tags; ErrRepositoryNotFound when it is missing.
	TagPage(ctx context.Context, repo string, sort TagSort, desc bool, offset, limit int) (TagPage, error)
}

// ErrInvalidSearch is a search the store refuses (a filter out of range, a digest
// prefix too short); its message says what to change.
var ErrInvalidSearch = errors.New("invalid search")

// ParsedSearch is a search text split into what the store matches: lower-case terms,
// or a digest prefix ("sha256:…", lower-case hex).
type ParsedSearch struct {
	Terms        []string
	DigestPrefix string
}

// ParseSearch splits text into terms (at most MaxSearchTerms, of the first
// MaxSearchQuery bytes; repeats dropped; each at least MinSearchTerm characters long)
// or a digest prefix. Text is untrusted.
func ParseSearch(text string) (ParsedSearch, error) {
	text = strings.TrimSpace(text)
	if len(text) > MaxSearchQuery {
		text = strings.ToValidUTF8(text[:MaxSearchQuery], "")
	}
	// Control characters (NUL among them, which PostgreSQL refuses in text) match
	// nothing anyone can type into a name or a label: they separate terms.
	lower := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToLower(text))
	if alg, hex, ok := strings.Cut(lower, ":"); ok && (alg == "sha256" || alg == "sha512") && !strings.ContainsAny(hex, " \t") {
		if len(hex) < MinDigestPrefix || !isHex(hex) {
			return ParsedSearch{}, fmt.Errorf("%w: a digest prefix needs at least %d hex digits after %s:", ErrInvalidSearch, MinDigestPrefix, alg)
		}
		return ParsedSearch{DigestPrefix: alg + ":" + hex}, nil
	}
	if len(lower) >= 7 && len(lower) <= 64 && isHex(lower) {
		return ParsedSearch{DigestPrefix: "sha256:" + lower}, nil
	}
	var p ParsedSearch
	for _, t := range strings.Fields(lower) {
		dup := false
		for _, o := range p.Terms {
			dup = dup || o == t
		}
		if !dup && len(p.Terms) < MaxSearchTerms {
			if utf8.RuneCountInString(t) < MinSearchTerm {
				return ParsedSearch{}, fmt.Errorf("%w: each term needs at least %d characters: %q is shorter", ErrInvalidSearch, MinSearchTerm, t)
			}
			p.Terms = append(p.Terms, t)
		}
	}
	return p, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return s != ""
}
