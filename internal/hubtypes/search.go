package hubtypes

// SearchHit is one repository GET /api/v1/search found. Digest is set when it was
// found by a manifest digest prefix (one hit per manifest).
type SearchHit struct {
	Repository  string            `json:"repository"`
	Kind        string            `json:"kind,omitempty"` // image, chart, artifact; "" not indexed yet
	Visibility  string            `json:"visibility"`
	Description string            `json:"description,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Digest      string            `json:"digest,omitempty"`
}

// SearchPage is one page of search hits in repository name order; Next, when set, is
// the `after` of the following page.
type SearchPage struct {
	Results []SearchHit `json:"results"`
	Next    string      `json:"next,omitempty"`
}
