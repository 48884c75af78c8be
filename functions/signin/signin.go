// Package signin is the daily sign-in function: the cache-then-DB flow. A
// KV hit answers at once; on a miss the store decides in one transaction on
// the user's shard (its unique key on user and day makes the first sign-in
// exactly one record, however many concurrent calls), and the answer is
// cached in KV for the rest of the day.
package signin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
	_ "time/tzdata" // the sign-in time zone must load on machines without zoneinfo

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/store"
)

// Bucket is the KV bucket of today's sign-ins.
const Bucket = "SIGNIN"

func init() {
	runtime.Register(runtime.Module{ID: "signin", New: func() any { return new(SignIn) }})
}

// SignIn is the module. Its config is {"timezone": "Asia/Shanghai"}; the
// day boundary is midnight in that zone (default UTC).
type SignIn struct {
	TimeZone string `json:"timezone"`

	loc *time.Location
	// today remembers streaks of records already made: a day's record
	// never changes once created, so a repeat call of the same day is
	// answered without a KV read.
	today *runtime.Cache[dayKey, int]
	kv    jetstream.KeyValue
	js    jetstream.JetStream
	store store.SignIns
	clock runtime.Clock
}

var (
	_ runtime.Handler     = (*SignIn)(nil)
	_ runtime.Validator   = (*SignIn)(nil)
	_ runtime.Provisioner = (*SignIn)(nil)
)

// Validate loads the time zone.
func (s *SignIn) Validate() error {
	if s.TimeZone == "" {
		s.TimeZone = "UTC"
	}
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		return fmt.Errorf("timezone: %w", err)
	}
	s.loc = loc
	return nil
}

// Provision binds the KV bucket, the store and the clock.
func (s *SignIn) Provision(_ context.Context, env *runtime.Env) error {
	kv, err := env.KV(Bucket)
	if err != nil {
		return err
	}
	signIns, err := store.As[store.SignIns](env.Store)
	if err != nil {
		return err
	}
	s.kv, s.js, s.store, s.clock = kv, env.JS, signIns, env.Clock
	s.today = runtime.NewCache[dayKey, int](time.Hour, 100_000, env.Clock)
	return nil
}

// request is the body of POST /v1/signin.
type request struct {
	UserID int64 `json:"user_id" jsonschema:"minimum=1"`
}

// Response is the answer: the day in the configured zone, whether this
// call was the day's first, and the streak of consecutive days.
type Response struct {
	UserID int64  `json:"user_id"`
	Date   string `json:"date" jsonschema:"format=date"`
	First  bool   `json:"first"`
	Streak int    `json:"streak"`
}

// decode reads and validates the body.
func decode(data []byte) (int64, error) {
	var r request
	if err := runtime.DecodeJSON(data, &r, ""); err != nil {
		return 0, err
	}
	if r.UserID <= 0 {
		return 0, runtime.BadRequest("user_id", "must be a positive integer")
	}
	return r.UserID, nil
}

// Day returns the calendar day of t in loc and the day before it.
func Day(t time.Time, loc *time.Location) (day, prev string) {
	lt := t.In(loc)
	y, m, d := lt.Date()
	today := time.Date(y, m, d, 12, 0, 0, 0, loc) // noon: immune to DST shifts
	return today.Format(time.DateOnly), today.AddDate(0, 0, -1).Format(time.DateOnly)
}

// dayKey identifies one user's record of one day in the L1.
type dayKey struct {
	user int64
	day  string
}

func cacheKey(day string, user int64) string {
	return "d." + day + ".u." + strconv.FormatInt(user, 10)
}

// Handle signs the user in for today; through a route with auth: user,
// only the signed-in user (403 forbidden for another user_id).
func (s *SignIn) Handle(ctx context.Context, req *runtime.Request) error {
	user, err := decode(req.Data)
	if err != nil {
		return err
	}
	if err := req.AuthorizeUser(user); err != nil {
		return err
	}
	day, prev := Day(s.clock.Now(), s.loc)
	if streak, ok := s.today.Get(dayKey{user, day}); ok {
		return req.RespondJSON(http.StatusOK, Response{UserID: user, Date: day, First: false, Streak: streak})
	}
	key := cacheKey(day, user)
	if e, err := s.kv.Get(ctx, key); err == nil {
		var rec store.SignIn
		if json.Unmarshal(e.Value(), &rec) == nil {
			s.today.Put(dayKey{user, day}, rec.Streak)
			return req.RespondJSON(http.StatusOK, Response{UserID: user, Date: day, First: false, Streak: rec.Streak})
		}
	}
	// A miss, or a KV error: the cache is an optimisation, the store decides.
	rec, first, err := s.store.SignIn(ctx, user, day, prev, s.clock.Now())
	if err != nil {
		return &runtime.Error{Status: http.StatusServiceUnavailable, Code: "store_unavailable",
			Msg: "sign-in could not be recorded; retry", Err: err}
	}
	s.today.Put(dayKey{user, day}, rec.Streak)
	if b, err := json.Marshal(rec); err == nil {
		// Fill the cache without waiting for the ack: the store already
		// decided, and a lost fill only costs the next call a store read.
		// Expected last sequence 0 makes it a create: concurrent misses
		// race here harmlessly, the record is the same for all of them.
		_, _ = s.js.PublishMsgAsync(&nats.Msg{Subject: "$KV." + Bucket + "." + key, Data: b,
			Header: nats.Header{jetstream.ExpectedLastSubjSeqHeader: []string{"0"}}})
	}
	return req.RespondJSON(http.StatusOK, Response{UserID: user, Date: day, First: first, Streak: rec.Streak})
}
