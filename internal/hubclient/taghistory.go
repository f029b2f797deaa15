package hubclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/hubctl/hubctl/internal/hubtypes"
)

// TagHistoryQuery selects a page of a tag's history; zero fields: the newest moves,
// as many as the hub keeps.
type TagHistoryQuery struct {
	// Before is the Next of the previous page: moves older than that one.
	Before int64
	// Limit is the page size (1 to 100).
	Limit int
}

// TagHistory returns a page of the moves of tag in repository, newest first (pull
// right on it).
func (c *Client) TagHistory(ctx context.Context, repository, tag string, q TagHistoryQuery) (hubtypes.TagHistoryPage, error) {
	v := url.Values{}
	if q.Before > 0 {
		v.Set("before", strconv.FormatInt(q.Before, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := repoPath(repository) + "/tags/" + seg(tag) + "/history"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out hubtypes.TagHistoryPage
	return out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// RestoreTag points tag of repository back at digest, a manifest of the tag's
// history (push right on it; an immutable tag is refused).
func (c *Client) RestoreTag(ctx context.Context, repository, tag, digest string) (hubtypes.TagRestore, error) {
	var out hubtypes.TagRestore
	return out, c.do(ctx, http.MethodPost, repoPath(repository)+"/tags/"+seg(tag)+"/restore", hubtypes.RestoreTagRequest{Digest: digest}, &out)
}
