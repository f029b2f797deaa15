package ratelimit

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Failures counts failed logins per key in a window. Local is the in-process
// implementation (per replica); one kept in the shared database can take its place so
// that replicas count together, without the Guard changing: hence the context and the
// errors, which the in-process one never returns.
type Failures interface {
	// Blocked reports whether key is locked out at now, and for how long.
	Blocked(ctx context.Context, key string, now time.Time) (bool, time.Duration, error)
	// Fail records a failed attempt of key at now.
	Fail(ctx context.Context, key string, now time.Time) error
	// Succeed forgets key's failures.
	Succeed(ctx context.Context, key string) error
}

// Known remembers the client addresses each account signed in from, so the
// per-account ceiling never refuses an account's owner at an address the owner used
// before. KnownLocal is the in-process implementation; one in the shared database lets
// every replica know what the others saw.
type Known interface {
	// Known reports whether key (account|address) signed in since now minus the
	// implementation's memory.
	Known(ctx context.Context, key string, now time.Time) (bool, error)
	// Remember records a sign-in of key at now.
	Remember(ctx context.Context, key string, now time.Time) error
}

// KnownLocal returns the in-process Known, remembering sign-ins for ttl (at most
// 100,000 keys; the oldest go first).
func KnownLocal(ttl time.Duration) Known { return &knownLocal{ttl: ttl, seen: map[string]time.Time{}} }

type knownLocal struct {
	mu   sync.Mutex
	ttl  time.Duration
	seen map[string]time.Time
}

func (k *knownLocal) Known(_ context.Context, key string, now time.Time) (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	at, ok := k.seen[key]
	return ok && now.Sub(at) < k.ttl, nil
}

func (k *knownLocal) Remember(_ context.Context, key string, now time.Time) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.seen[key]; !ok && len(k.seen) >= 100_000 {
		var oldest string
		for kk, at := range k.seen {
			if oldest == "" || at.Before(k.seen[oldest]) {
				oldest = kk
			}
		}
		delete(k.seen, oldest)
	}
	k.seen[key] = now
	return nil
}

// Local returns the in-process Failures: a Limiter of max failures per window.
func Local(max int, window time.Duration) Failures { return local{New(max, window)} }

type local struct{ l *Limiter }

func (f local) Blocked(_ context.Context, key string, now time.Time) (bool, time.Duration, error) {
	b, wait := f.l.Blocked(key, now)
	return b, wait, nil
}

func (f local) Fail(_ context.Context, key string, now time.Time) error {
	f.l.Fail(key, now)
	return nil
}

func (f local) Succeed(_ context.Context, key string) error {
	f.l.Succeed(key)
	return nil
}

// Defaults of the login guard.
const (
	// DefaultMaxFailures failed logins per account and client address per window
	// lock that pair out.
	DefaultMaxFailures = 5
	// DefaultWindow is the window failures are counted in.
	DefaultWindow = 5 * time.Minute
	// DefaultMaxAddressFailures failed logins from one client address per window,
	// whatever the user names, lock the address out: a spray of one guess per name
	// never reaches a per-account limit.
	DefaultMaxAddressFailures = 20
	// DefaultMaxWaitingPerAddress password checks from one address may be queued (one of
	// them running); more are refused at once.
	DefaultMaxWaitingPerAddress = 8
	// DefaultMaxAccountFailures failed logins of one account per window, from all
	// addresses together, close the account to addresses it never signed in from: a
	// guesser with many addresses gets no more than that many guesses per window.
	DefaultMaxAccountFailures = 50
	// DefaultKnownFor is how long an address an account signed in from stays known.
	DefaultKnownFor = 30 * 24 * time.Hour
	// rememberEvery bounds how often one account|address sign-in is written to Known.
	rememberEvery = time.Hour
)

// maxUserKey bounds the user-name part of a failure key.
const maxUserKey = 256

// GuardOptions configure a Guard; zero fields take the defaults above.
type GuardOptions struct {
	MaxFailures int
	// MaxAddressFailures < 0 turns the per-address limits off: failures across names
	// and one password check at a time. Behind a proxy that hides client addresses
	// every client has the proxy's, and those limits would hold all of them together.
	MaxAddressFailures   int
	Window               time.Duration
	MaxWaitingPerAddress int
	// MaxAccountFailures is the per-account ceiling: failures of one account from every
	// address together, after which the account accepts logins only from addresses it
	// signed in from before (Known); < 0 turns it off.
	MaxAccountFailures int
	// Accounts, Addresses and Users count failures per account|address, per address and
	// per account; Known remembers sign-ins. nil means in-process ones (per replica).
	Accounts, Addresses, Users Failures
	Known                      Known
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Guard is the one login guard of the token service and the hub API, so a guess
// counts wherever it is made. It refuses (with *TooManyError) an account and address
// pair after MaxFailures failures and an address after MaxAddressFailures failures
// across all names, and it runs at most one password verification per client address
// at a time: argon2 costs tens of milliseconds of a core, and without this a spray of
// concurrent logins from one address would queue every other address's logins behind
// its hashes. (package password bounds concurrent hashing overall to the cores.)
type Guard struct {
	o         GuardOptions
	noAddress bool
	noCeiling bool

	// remembered holds when this process last wrote each account|address to Known,
	// so a client logging in on every pull does not write each time; emptied when it
	// reaches maxRemembered keys (the cost: one write per key after that).
	rememberMu sync.Mutex
	remembered map[string]time.Time

	mu    sync.Mutex
	gates map[string]*gate
}

// gate serialises the password checks of one address.
type gate struct {
	run     chan struct{} // capacity 1: held while a check of this address runs
	waiting int           // checks holding or queued for run
}

// NewGuard returns a Guard with o's settings.
func NewGuard(o GuardOptions) *Guard {
	if o.MaxFailures <= 0 {
		o.MaxFailures = DefaultMaxFailures
	}
	noAddress := o.MaxAddressFailures < 0
	if o.MaxAddressFailures <= 0 {
		o.MaxAddressFailures = DefaultMaxAddressFailures
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.MaxWaitingPerAddress <= 0 {
		o.MaxWaitingPerAddress = DefaultMaxWaitingPerAddress
	}
	if o.Accounts == nil {
		o.Accounts = Local(o.MaxFailures, o.Window)
	}
	if o.Addresses == nil {
		o.Addresses = Local(o.MaxAddressFailures, o.Window)
	}
	noCeiling := o.MaxAccountFailures < 0
	if o.MaxAccountFailures <= 0 {
		o.MaxAccountFailures = DefaultMaxAccountFailures
	}
	if o.Users == nil {
		o.Users = Local(o.MaxAccountFailures, o.Window)
	}
	if o.Known == nil {
		o.Known = KnownLocal(DefaultKnownFor)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Guard{o: o, noAddress: noAddress, noCeiling: noCeiling, gates: map[string]*gate{}, remembered: map[string]time.Time{}}
}

// TooManyError refuses a login: the client should retry after RetryAfter.
type TooManyError struct {
	RetryAfter time.Duration
	// Reason says which limit refused, for the client and the log.
	Reason string
}

func (e *TooManyError) Error() string { return e.Reason }

// RetryAfterSeconds is RetryAfter rounded up to whole seconds, at least 1, for the
// Retry-After header.
func (e *TooManyError) RetryAfterSeconds() int {
	s := int((e.RetryAfter + time.Second - 1) / time.Second)
	return max(s, 1)
}

// Login runs check for a login of user from the client address addr. check verifies
// the credentials and reports bad when they are wrong (a failure that counts), or an
// error of its own (which does not). hashes marks a password check, which waits for the
// address's turn; token checks (a hash lookup) do not. Login returns a *TooManyError
// when a limit refuses, the context's error when it ends while waiting, an error of
// the failure counters' Blocked, else check's error (so the caller answers bad
// credentials as it always does).
func (g *Guard) Login(ctx context.Context, user, addr string, hashes bool, check func() (bad bool, err error)) error {
	ak := AddressKey(addr)
	if len(user) > maxUserKey {
		// No account has such a name; a megabyte of one must not sit in the table.
		user = user[:maxUserKey]
	}
	user = strings.ToLower(user)
	uk := user + "|" + ak
	if err := g.blocked(ctx, user, uk, ak); err != nil {
		return err
	}
	if hashes && !g.noAddress {
		release, err := g.enter(ctx, ak)
		if err != nil {
			return err
		}
		defer release()
		// Failures may have been counted while this check waited for its turn.
		if err := g.blocked(ctx, user, uk, ak); err != nil {
			return err
		}
	}
	bad, err := check()
	now := g.o.Now()
	// The outcome is answered as it is whether or not recording it works: a shared
	// Failures logs its own trouble, and the next Blocked reports it.
	switch {
	case bad:
		_ = g.o.Accounts.Fail(ctx, uk, now)
		if !g.noAddress {
			_ = g.o.Addresses.Fail(ctx, ak, now)
		}
		if !g.noCeiling {
			_ = g.o.Users.Fail(ctx, user, now)
		}
	case err == nil:
		// Only the pair is forgiven: a login that works must not wipe the address's
		// count, or a sprayer with one account of its own would reset it at will; nor
		// the account's, which counts other addresses' guesses.
		_ = g.o.Accounts.Succeed(ctx, uk)
		g.remember(ctx, uk, now)
	}
	return err
}

// maxRemembered bounds Guard.remembered.
const maxRemembered = 100_000

// remember records a sign-in of uk in Known, unless this process did within
// rememberEvery.
func (g *Guard) remember(ctx context.Context, uk string, now time.Time) {
	g.rememberMu.Lock()
	last, ok := g.remembered[uk]
	g.rememberMu.Unlock()
	if ok && now.Sub(last) < rememberEvery {
		return
	}
	if g.o.Known.Remember(ctx, uk, now) != nil {
		return
	}
	g.rememberMu.Lock()
	if len(g.remembered) >= maxRemembered {
		clear(g.remembered)
	}
	g.remembered[uk] = now
	g.rememberMu.Unlock()
}

// blocked refuses a login of user (key uk) from address key ak that a limit holds:
// the address's failures across names, the pair's, and the account's across all
// addresses unless the account signed in from this address before. So no failure
// made from another address ever refuses the owner at an address the owner uses.
func (g *Guard) blocked(ctx context.Context, user, uk, ak string) error {
	now := g.o.Now()
	if !g.noAddress {
		b, wait, err := g.o.Addresses.Blocked(ctx, ak, now)
		if err != nil {
			return fmt.Errorf("login limits: %w", err)
		}
		if b {
			return &TooManyError{RetryAfter: wait, Reason: "too many failed logins from this address"}
		}
	}
	b, wait, err := g.o.Accounts.Blocked(ctx, uk, now)
	if err != nil {
		return fmt.Errorf("login limits: %w", err)
	}
	if b {
		return &TooManyError{RetryAfter: wait, Reason: "too many failed logins for this account from this address"}
	}
	if g.noCeiling {
		return nil
	}
	b, wait, err = g.o.Users.Blocked(ctx, user, now)
	if err != nil {
		return fmt.Errorf("login limits: %w", err)
	}
	if !b {
		return nil
	}
	known, err := g.o.Known.Known(ctx, uk, now)
	if err != nil {
		return fmt.Errorf("login limits: %w", err)
	}
	if known {
		return nil
	}
	return &TooManyError{RetryAfter: wait, Reason: "too many failed logins for this account; it accepts logins only from addresses it signed in from before until the window passes"}
}

// enter waits for the address's turn to verify a password.
func (g *Guard) enter(ctx context.Context, ak string) (func(), error) {
	g.mu.Lock()
	gt := g.gates[ak]
	if gt == nil {
		gt = &gate{run: make(chan struct{}, 1)}
		g.gates[ak] = gt
	}
	if gt.waiting >= g.o.MaxWaitingPerAddress {
		g.mu.Unlock()
		return nil, &TooManyError{RetryAfter: time.Second,
			Reason: fmt.Sprintf("too many concurrent logins from this address (at most %d)", g.o.MaxWaitingPerAddress)}
	}
	gt.waiting++
	g.mu.Unlock()
	leave := func() {
		g.mu.Lock()
		gt.waiting--
		if gt.waiting == 0 {
			delete(g.gates, ak)
		}
		g.mu.Unlock()
	}
	select {
	case gt.run <- struct{}{}:
		return func() { <-gt.run; leave() }, nil
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
}

// AddressKey is the rate-limit key of a client address: the address itself for IPv4,
// its /64 for IPv6, where one host commonly holds a whole /64 and could otherwise
// rotate through addresses at will. Anything that does not parse is its own key.
func AddressKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, err := ip.Prefix(64)
	if err != nil {
		return addr
	}
	return p.String()
}
