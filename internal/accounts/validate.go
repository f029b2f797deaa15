package accounts

import (
	"fmt"
	"strings"

	"github.com/hubctl/hubctl/internal/safetext"
)

// Length limits of what clients may store, in bytes. Every field that reaches a table,
// a log line or the audit log is bounded, so no value can flood a screen or a row.
const (
	// MaxNameLength bounds user, organisation, team and robot names (a robot's full
	// name, org.name, included).
	MaxNameLength = 64
	// MaxEmailLength is RFC 5321's limit on a forward path.
	MaxEmailLength = 254
	// MaxDescriptionLength bounds a team's description.
	MaxDescriptionLength = 256
	// MaxTokenNameLength bounds an access token's name.
	MaxTokenNameLength = 100
	// MaxAuditField bounds the actor, action, target and remote of an audit entry, and
	// MaxAuditDetail its detail; longer values are cut, not refused: an attempt must be
	// recorded even when its user name is garbage.
	MaxAuditField  = 256
	MaxAuditDetail = 1024
)

// CheckEmail returns nil for an empty email or one of at most MaxEmailLength bytes
// with a local part and a domain around one '@' and no spaces or control characters;
// else an error wrapping ErrInvalid.
func CheckEmail(email string) error {
	if email == "" {
		return nil
	}
	local, domain, ok := strings.Cut(email, "@")
	switch {
	case len(email) > MaxEmailLength:
		return fmt.Errorf("email: longer than %d bytes: %w", MaxEmailLength, ErrInvalid)
	case safetext.Check(email) != nil || strings.ContainsAny(email, " "):
		return fmt.Errorf("email %q: must not contain spaces or control characters: %w", safetext.Escape(email), ErrInvalid)
	case !ok || local == "" || domain == "" || strings.Contains(domain, "@"):
		return fmt.Errorf("email %q: want name@domain: %w", email, ErrInvalid)
	}
	return nil
}

// CheckDescription returns nil for a description of at most MaxDescriptionLength bytes
// of valid UTF-8 on one line without control characters; else an error wrapping
// ErrInvalid.
func CheckDescription(s string) error {
	return checkText("description", s, MaxDescriptionLength)
}

// CheckTokenName returns nil for an access-token name of 1 to MaxTokenNameLength bytes
// without control characters or slashes (it is a path segment of the API); else an
// error wrapping ErrInvalid.
func CheckTokenName(name string) error {
	if name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("token name %q: want 1 to %d printable characters, no '/': %w", safetext.Escape(name), MaxTokenNameLength, ErrInvalid)
	}
	return checkText("token name", name, MaxTokenNameLength)
}

func checkText(what, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%s: longer than %d bytes: %w", what, max, ErrInvalid)
	}
	if err := safetext.Check(s); err != nil {
		return fmt.Errorf("%s %q: %v: %w", what, safetext.Escape(s), err, ErrInvalid)
	}
	return nil
}

// Clean returns e with every text field made safe to store and show: unsafe
// characters escaped and lengths cut to MaxAuditField (MaxAuditDetail for Detail).
// Audit entries carry what clients sent (the user name of a failed login), which is
// recorded as it came, but never raw.
func (e AuditEntry) Clean() AuditEntry {
	clean := func(s string, max int) string { return safetext.Truncate(safetext.Escape(s), max) }
	e.Actor = clean(e.Actor, MaxAuditField)
	e.Action = clean(e.Action, MaxAuditField)
	e.Target = clean(e.Target, MaxAuditField)
	e.Remote = clean(e.Remote, MaxAuditField)
	e.Detail = clean(e.Detail, MaxAuditDetail)
	return e
}
