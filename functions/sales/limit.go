package sales

import (
	"net/http"
	"sync"
	"time"

	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/wire"
)

// limiter allows at most n calls per key per fixed window, in this
// process: a bot hammering the buy button is turned away before it costs
// a KV read. Being per instance, the platform-wide limit is n times the
// instances serving; it bounds bots, it is not a quota.
type limiter[K comparable] struct {
	n      int
	window time.Duration
	clock  runtime.Clock
	counts *runtime.Cache[K, *window]
	// mu makes the first call of a key create its window once.
	mu sync.Mutex
}

type window struct {
	mu    sync.Mutex
	start time.Time
	n     int
}

func newLimiter[K comparable](n int, w time.Duration, clock runtime.Clock) *limiter[K] {
	if w <= 0 {
		w = time.Second
	}
	return &limiter[K]{n: n, window: w, clock: clock, counts: runtime.NewCache[K, *window](w, 100_000, clock)}
}

// allow counts a call of k; when over the limit it returns how long until
// the window ends.
func (l *limiter[K]) allow(k K) (bool, time.Duration) {
	now := l.clock.Now()
	w, ok := l.counts.Get(k)
	if !ok {
		// Checked again under mu: two first calls at once would otherwise
		// each put a window, and one of them would go uncounted.
		l.mu.Lock()
		if w, ok = l.counts.Get(k); !ok {
			w = &window{start: now}
			l.counts.Put(k, w)
		}
		l.mu.Unlock()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if now.Sub(w.start) >= l.window {
		w.start, w.n = now, 0
	}
	w.n++
	if w.n > l.n {
		return false, l.window - now.Sub(w.start)
	}
	return true, 0
}

// limit applies the per-user limit, and the per-IP one when configured.
func (o *Order) limit(req *runtime.Request, user int64) error {
	if ok, wait := o.users.allow(user); !ok {
		return rateLimited(req, wait, "user %d", user)
	}
	if o.ips == nil {
		return nil
	}
	if ip := req.Header.Get(wire.HeaderClientIP); ip != "" {
		if ok, wait := o.ips.allow(ip); !ok {
			return rateLimited(req, wait, "client address %s", ip)
		}
	}
	return nil
}

func rateLimited(req *runtime.Request, wait time.Duration, who string, args ...any) error {
	req.SetHeader(runtime.HeaderRetryAfter, runtime.RetryAfter(wait))
	e := runtime.Errorf(http.StatusTooManyRequests, "rate_limited", "too many orders from "+who+"; retry later", args...)
	return e
}
