// Package ratelimit limits failed logins per key (account and client address), shared by
// the token service and the hub API so guesses count wherever they are made; its
// Limiter also rates other actions per key (Take: webhook test deliveries).
package ratelimit

import (
	"sync"
	"time"
)

// Limiter counts failed logins per key (account and client address) in a fixed window
// and locks a key out once it reaches max failures, so passwords cannot be guessed at
// the speed of the network. It holds at most maxKeys keys: when full, expired entries
// are dropped, and if none are, the oldest is, so a flood of distinct keys costs bounded
// memory.
type Limiter struct {
	mu      sync.Mutex
	max     int
	window  time.Duration
	maxKeys int
	entries map[string]*failures
}

type failures struct {
	count int
	start time.Time
}

// New returns a Limiter that locks a key out after max failures within window.
func New(max int, window time.Duration) *Limiter {
	return &Limiter{max: max, window: window, maxKeys: 100_000, entries: map[string]*failures{}}
}

// Blocked reports whether key is locked out at now and for how long.
func (l *Limiter) Blocked(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.entries[key]
	if !ok || now.Sub(f.start) >= l.window {
		return false, 0
	}
	if f.count >= l.max {
		return true, f.start.Add(l.window).Sub(now)
	}
	return false, 0
}

// Fail records a failed attempt of key at now.
func (l *Limiter) Fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.record(key, now)
}

// Take counts an attempt of key at now unless key is locked out, in one step, and
// reports whether it was allowed or else how long until it is: a rate limit of max
// actions per window (New(1, time.Second) lets a key act once a second), where
// Blocked then Fail would let two concurrent callers both through.
func (l *Limiter) Take(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f, ok := l.entries[key]; ok && now.Sub(f.start) < l.window && f.count >= l.max {
		return false, f.start.Add(l.window).Sub(now)
	}
	l.record(key, now)
	return true, 0
}

func (l *Limiter) record(key string, now time.Time) {
	f, ok := l.entries[key]
	if !ok || now.Sub(f.start) >= l.window {
		if !ok && len(l.entries) >= l.maxKeys {
			l.evict(now)
		}
		l.entries[key] = &failures{count: 1, start: now}
		return
	}
	f.count++
}

// Succeed forgets key's failures.
func (l *Limiter) Succeed(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.entries, key)
}

func (l *Limiter) evict(now time.Time) {
	var oldest string
	var oldestAt time.Time
	for k, f := range l.entries {
		if now.Sub(f.start) >= l.window {
			delete(l.entries, k)
			continue
		}
		if oldest == "" || f.start.Before(oldestAt) {
			oldest, oldestAt = k, f.start
		}
	}
	if len(l.entries) >= l.maxKeys && oldest != "" {
		delete(l.entries, oldest)
	}
}
