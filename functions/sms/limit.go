package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/runtime"
)

// maxCAS bounds the optimistic-concurrency retries on one key. Conflicts
// only come from concurrent sends to the same phone, and after one the
// winner's write usually makes the loser limited, so a few suffice.
const maxCAS = 16

// errContended means a limit key kept changing under us for maxCAS tries.
var errContended = errors.New("rate limit state contended")

// limiter enforces the per-phone limits in a KV bucket: at most perWindow
// sends in any sliding window (key w.<digits>, holding the recent send
// times), and at most perDay per calendar day in zone (key
// d.<digits>.<YYYYMMDD>, holding a counter). Time comes from the caller's
// clock, never from server-side TTLs, so tests can move it; the bucket's
// own TTL only garbage-collects keys of past days.
//
// Every write is a kv.Create (key absent) or kv.Update with the revision
// read (optimistic concurrency), so two concurrent sends cannot both take
// the last slot.
type limiter struct {
	kv        jetstream.KeyValue
	window    time.Duration
	perWindow int
	perDay    int
	zone      *time.Location
}

// windowState is the value of a window key: recent send times, oldest first.
type windowState struct {
	Sends []int64 `json:"sends"` // unix nanoseconds
}

// dayState is the value of a day key.
type dayState struct {
	Count int `json:"count"`
}

// limited is a refusal: retry after the given time.
type limited struct {
	retryAfter time.Duration
	reason     string
}

// allow takes one send for phone at now from both limits, or reports which
// limit refused and for how long. phone must be a valid E.164 number.
func (l *limiter) allow(ctx context.Context, phone string, now time.Time) (*limited, error) {
	digits := phone[1:] // '+' is not allowed in KV keys; E.164 is '+' then digits
	dayKey := "d." + digits + "." + now.In(l.zone).Format("20060102")
	// Read the day counter first so a phone that used up its day does not
	// also burn its window slot.
	day, err := l.readDay(ctx, dayKey)
	if err != nil {
		return nil, err
	}
	if day.state.Count >= l.perDay {
		return l.dayLimited(now), nil
	}
	if lim, err := l.takeWindow(ctx, "w."+digits, now); lim != nil || err != nil {
		return lim, err
	}
	// The window slot is taken even if the day limit refuses below: that
	// only happens when concurrent sends race for the day's last slot, and
	// then erring towards fewer messages is right.
	return l.takeDay(ctx, dayKey, day, now)
}

// takeWindow appends now to the phone's recent sends unless the window is full.
func (l *limiter) takeWindow(ctx context.Context, key string, now time.Time) (*limited, error) {
	for range maxCAS {
		var st windowState
		rev, err := l.get(ctx, key, &st)
		if err != nil {
			return nil, err
		}
		keep := st.Sends[:0]
		cutoff := now.Add(-l.window).UnixNano()
		for _, s := range st.Sends {
			if s > cutoff {
				keep = append(keep, s)
			}
		}
		if len(keep) >= l.perWindow {
			wait := time.Unix(0, keep[len(keep)-l.perWindow]).Add(l.window).Sub(now)
			return &limited{retryAfter: wait, reason: fmt.Sprintf("at most %d message(s) per %s to this phone", l.perWindow, l.window)}, nil
		}
		st.Sends = append(keep, now.UnixNano())
		ok, err := l.put(ctx, key, rev, st)
		if err != nil || ok {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%w: %s", errContended, key)
}

// dayRead is a day counter and the revision it was read at (0: absent).
type dayRead struct {
	state dayState
	rev   uint64
}

func (l *limiter) readDay(ctx context.Context, key string) (dayRead, error) {
	var d dayRead
	rev, err := l.get(ctx, key, &d.state)
	d.rev = rev
	return d, err
}

// takeDay increments the day counter unless it reached perDay, starting
// from the state read before and re-reading after a conflict.
func (l *limiter) takeDay(ctx context.Context, key string, d dayRead, now time.Time) (*limited, error) {
	for range maxCAS {
		if d.state.Count >= l.perDay {
			return l.dayLimited(now), nil
		}
		next := dayState{Count: d.state.Count + 1}
		ok, err := l.put(ctx, key, d.rev, next)
		if err != nil || ok {
			return nil, err
		}
		if d, err = l.readDay(ctx, key); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%w: %s", errContended, key)
}

// dayLimited refuses until the next midnight in zone.
func (l *limiter) dayLimited(now time.Time) *limited {
	t := now.In(l.zone)
	midnight := time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, l.zone)
	return &limited{retryAfter: midnight.Sub(now), reason: fmt.Sprintf("at most %d messages per day to this phone", l.perDay)}
}

// get decodes key into v and returns its revision, 0 when absent. A value
// that does not decode (never written by this code) counts as what did
// decode, and the next put overwrites it.
func (l *limiter) get(ctx context.Context, key string, v any) (uint64, error) {
	e, err := l.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", key, err)
	}
	_ = json.Unmarshal(e.Value(), v)
	return e.Revision(), nil
}

// put writes v at key if the key is still at rev (absent when rev is 0);
// ok is false on a conflict.
func (l *limiter) put(ctx context.Context, key string, rev uint64, v any) (ok bool, err error) {
	b, err := json.Marshal(v)
	if err != nil {
		return false, err
	}
	if rev == 0 {
		_, err = l.kv.Create(ctx, key, b)
	} else {
		_, err = l.kv.Update(ctx, key, b, rev)
	}
	switch {
	case err == nil:
		return true, nil
	case runtime.IsKVConflict(err):
		return false, nil
	}
	return false, fmt.Errorf("write %s: %w", key, err)
}
