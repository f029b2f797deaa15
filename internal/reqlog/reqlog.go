// Package reqlog carries per-request facts (request id, repository, user) from the
// handlers that learn them to the access log written by the server's middleware.
package reqlog

import "context"

// Info is filled in while a request is served and logged when it ends.
type Info struct {
	RequestID  string
	Repository string
	User       string
	// Remote is the client's address (the TCP peer).
	Remote string
	// Refusal names why a request was refused when metrics count it (RefusalQuota).
	Refusal string
}

// RefusalQuota marks a push refused for a namespace's quota.
const RefusalQuota = "quota"

type key struct{}

// With returns a context carrying info.
func With(ctx context.Context, info *Info) context.Context {
	return context.WithValue(ctx, key{}, info)
}

// From returns the request's Info, or a throwaway one so callers never check for nil.
func From(ctx context.Context) *Info {
	if i, ok := ctx.Value(key{}).(*Info); ok {
		return i
	}
	return &Info{}
}
