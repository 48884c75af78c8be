// Package envelopes is the red envelope ("hongbao"): a sender splits
// total_cents into count random shares, and users grab them, one each.
//
// envelopes.create (POST /v1/envelopes, fn.envelopes.create) validates
// {"sender_id","total_cents","count"} (count 1 to MaxCount, total_cents
// count to MaxTotalCents, so each share is at least 1 cent), stores the
// envelope, creates its state in the KV bucket ENVELOPES (key
// e.<envelope_id>) and answers 201 {"envelope_id"}.
//
// envelopes.grab (POST /v1/envelopes/{envelope_id}/grab,
// fn.envelopes.grab) takes {"user_id"}. The envelope's KV state (remaining
// cents, and the list of grabs so far) is the single source of truth of the
// draw: a grab reads it, draws its share by the double-mean rule (Draw),
// and writes the new state by compare-and-set on the key's revision,
// starting over on a conflict. So two concurrent grabs never take the same
// share, never overspend, and a user is in the list at most once; grabs
// in one process also queue on a lock per envelope, which leaves
// conflicts to grabs from other hosts. A user already in the list gets the
// same amount with "first":false; a full list is 410 envelope_empty.
//
// # The store, and the crash window
//
// Each taken share is then written to the store (store.Envelopes,
// idempotent on envelope and user) before the 200, so an answered grab is
// in both. A host can die between the KV write and the store write: the
// share is taken (the state says so) but not in the store, and the grabber
// got no answer. Nothing is lost or drawn twice, because the KV state
// decides; the store row is completed idempotently, by whichever comes
// first:
//   - the same user's retry: it finds itself in the state, answers the same
//     amount with "first":false, and writes its row (a 503 store failure
//     after the KV write is answered the same way: retry);
//   - the seal: the grab that takes the last share writes every grab of the
//     state, and then marks the state recorded; until it is marked, every
//     later grab (410) and every GET of the emptied envelope seals again.
//
// An envelope that is never emptied keeps such a grab in KV only, where
// GET shows it; an expiry that refunds the rest and seals is not built.
//
// envelopes.get (GET /v1/envelopes/{envelope_id}, fn.envelopes.get)
// answers {"envelope_id","total_cents","count","taken","remaining_cents",
// "grabs":[{"user_id","amount_cents","at"}]} from the KV state.
//
// With route auth: user, the sender (create) and the grabber must be the
// signed-in user, else 403.
package envelopes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/store"
)

// Bucket is the KV bucket of envelope states, key e.<envelope_id>.
const Bucket = "ENVELOPES"

// Limits of an envelope.
const (
	MaxCount      = 1000       // shares; the state holds every grab
	MaxTotalCents = 10_000_000 // 100,000.00 in the currency's units
)

func init() {
	runtime.Register(runtime.Module{ID: "envelopes.create", New: func() any { return new(Create) }})
	runtime.Register(runtime.Module{ID: "envelopes.grab", New: func() any { return new(Grab) }})
	runtime.Register(runtime.Module{ID: "envelopes.get", New: func() any { return new(Get) }})
}

// state is an envelope's KV value.
type state struct {
	EnvelopeID     string    `json:"envelope_id"`
	SenderID       int64     `json:"sender_id"`
	TotalCents     int64     `json:"total_cents"`
	Count          int       `json:"count"`
	RemainingCents int64     `json:"remaining_cents"`
	CreatedAt      time.Time `json:"created_at"`
	Grabs          []grab    `json:"grabs"`
	// Recorded means every grab is in the store (set after the seal).
	Recorded bool `json:"recorded,omitempty"`
}

type grab struct {
	UserID      int64     `json:"user_id"`
	AmountCents int64     `json:"amount_cents"`
	At          time.Time `json:"at"`
}

func (s *state) find(user int64) (grab, bool) {
	for _, g := range s.Grabs {
		if g.UserID == user {
			return g, true
		}
	}
	return grab{}, false
}

func (s *state) storeGrabs() []store.Grab {
	out := make([]store.Grab, len(s.Grabs))
	for i, g := range s.Grabs {
		out[i] = store.Grab{EnvelopeID: s.EnvelopeID, UserID: g.UserID, AmountCents: g.AmountCents, At: g.At}
	}
	return out
}

// deps are what every envelope function binds.
type deps struct {
	kv    jetstream.KeyValue
	nc    runtime.Requester
	store store.Envelopes
	clock runtime.Clock
}

func provision(env *runtime.Env) (deps, error) {
	envs, err := store.As[store.Envelopes](env.Store)
	if err != nil {
		return deps{}, err
	}
	kv, err := env.KV(Bucket)
	if err != nil {
		return deps{}, err
	}
	return deps{kv: kv, nc: env.NC, store: envs, clock: env.Clock}, nil
}

func stateKey(id string) string { return "e." + id }

var errNoEnvelope = errors.New("no such envelope")

// load reads an envelope's state and its revision.
func (d deps) load(ctx context.Context, id string) (state, uint64, error) {
	var st state
	// Not kv.Get alone: at 3 replicas a replica behind the create would
	// call an envelope just made unknown.
	v, rev, err := runtime.KVGet(ctx, d.nc, d.kv, stateKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return st, 0, errNoEnvelope
	}
	if err != nil {
		return st, 0, err
	}
	if err := json.Unmarshal(v, &st); err != nil {
		return st, 0, fmt.Errorf("decode envelope %s: %w", id, err)
	}
	return st, rev, nil
}

// seal writes every grab of an emptied envelope to the store, then marks
// the state recorded on rev. A conflict there means another seal (the only
// other writer of an emptied envelope) got in first.
func (d deps) seal(ctx context.Context, st state, rev uint64) error {
	if err := d.store.PutGrabs(ctx, st.storeGrabs()); err != nil {
		return err
	}
	st.Recorded = true
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if _, err := d.kv.Update(ctx, stateKey(st.EnvelopeID), b, rev); err != nil && !runtime.IsKVConflict(err) {
		return err
	}
	return nil
}

func storeUnavailable(err error) error {
	return &runtime.Error{Status: http.StatusServiceUnavailable, Code: "store_unavailable",
		Msg: "the envelope could not be recorded; retry", Err: err}
}

func notFound(id string) error {
	return runtime.Errorf(http.StatusNotFound, "envelope_not_found", "envelope %s not found", id)
}

var idPattern = regexp.MustCompile(`^[0-9A-Za-z]{1,64}$`)

// envelopeID returns the envelope_id path parameter, or from when the call
// has none (a direct NATS call with the id in the body).
func envelopeID(req *runtime.Request, from *string) (string, error) {
	id := ""
	if v := req.Param("envelope_id"); v != "" {
		if from != nil && *from != "" {
			return "", runtime.BadRequest("envelope_id", "unknown field (the envelope is in the path)")
		}
		id = v
	} else if from != nil {
		id = *from
	}
	switch {
	case id == "":
		return "", runtime.BadRequest("envelope_id", "required")
	case !idPattern.MatchString(id):
		return "", runtime.BadRequest("envelope_id", "must be 1 to 64 letters or digits")
	}
	return id, nil
}

// Create is envelopes.create.
type Create struct{ deps }

var (
	_ runtime.Handler     = (*Create)(nil)
	_ runtime.Provisioner = (*Create)(nil)
)

// Provision binds the store, ENVELOPES and the clock.
func (c *Create) Provision(_ context.Context, env *runtime.Env) (err error) {
	c.deps, err = provision(env)
	return err
}

// createInput is the body of POST /v1/envelopes.
type createInput struct {
	SenderID   int64 `json:"sender_id" jsonschema:"minimum=1"`
	TotalCents int64 `json:"total_cents" jsonschema:"minimum=1;maximum=10000000"`
	Count      int   `json:"count" jsonschema:"minimum=1;maximum=1000"`
}

// Handle creates one envelope.
func (c *Create) Handle(ctx context.Context, req *runtime.Request) error {
	var in createInput
	if err := runtime.DecodeJSON(req.Data, &in, ""); err != nil {
		return err
	}
	switch {
	case in.SenderID <= 0:
		return runtime.BadRequest("sender_id", "must be a positive 64-bit integer")
	case in.Count < 1 || in.Count > MaxCount:
		return runtime.BadRequest("count", "must be 1 to %d", MaxCount)
	case in.TotalCents < int64(in.Count) || in.TotalCents > MaxTotalCents:
		return runtime.BadRequest("total_cents", "must be count (1 cent a share) to %d", MaxTotalCents)
	}
	if err := req.AuthorizeUser(in.SenderID); err != nil {
		return err
	}
	now := c.clock.Now().UTC().Truncate(time.Microsecond)
	id := ulid.MustNew(ulid.Timestamp(now), ulid.DefaultEntropy()).String()
	if err := c.store.PutEnvelope(ctx, store.Envelope{EnvelopeID: id, SenderID: in.SenderID,
		TotalCents: in.TotalCents, Count: in.Count, CreatedAt: now}); err != nil {
		return storeUnavailable(err)
	}
	b, err := json.Marshal(state{EnvelopeID: id, SenderID: in.SenderID, TotalCents: in.TotalCents, Count: in.Count,
		RemainingCents: in.TotalCents, CreatedAt: now, Grabs: []grab{}})
	if err != nil {
		return runtime.Internal(err)
	}
	if _, err := c.kv.Create(ctx, stateKey(id), b); err != nil {
		return &runtime.Error{Status: http.StatusServiceUnavailable, Code: "kv_unavailable",
			Msg: "the envelope could not be created; retry", Err: err}
	}
	return req.RespondJSON(http.StatusCreated, createResponse{EnvelopeID: id})
}

// Grab is envelopes.grab.
type Grab struct {
	deps
	rnd   Intn
	locks [64]sync.Mutex // by envelope id: one grab at a time per envelope in this process
	seed  maphash.Seed
}

var (
	_ runtime.Handler     = (*Grab)(nil)
	_ runtime.Provisioner = (*Grab)(nil)
)

// Provision binds the store, ENVELOPES, the clock and the random source.
func (g *Grab) Provision(_ context.Context, env *runtime.Env) (err error) {
	g.deps, err = provision(env)
	g.rnd, g.seed = rand.Int64N, maphash.MakeSeed()
	return err
}

// GrabResponse is the answer of a grab.
type GrabResponse struct {
	EnvelopeID  string `json:"envelope_id"`
	UserID      int64  `json:"user_id"`
	AmountCents int64  `json:"amount_cents"`
	First       bool   `json:"first"`
}

// createResponse is the 201 body of POST /v1/envelopes.
type createResponse struct {
	EnvelopeID string `json:"envelope_id"`
}

// grabInput is the body of POST /v1/envelopes/{envelope_id}/grab; the
// envelope_id is only read from it on a direct NATS call.
type grabInput struct {
	EnvelopeID string `json:"envelope_id" jsonschema:"optional;description=only on a NATS call without the path"`
	UserID     int64  `json:"user_id" jsonschema:"minimum=1"`
}

// Handle grabs one share for the user.
func (g *Grab) Handle(ctx context.Context, req *runtime.Request) error {
	var in grabInput
	if err := runtime.DecodeJSON(req.Data, &in, ""); err != nil {
		return err
	}
	id, err := envelopeID(req, &in.EnvelopeID)
	if err != nil {
		return err
	}
	if in.UserID <= 0 {
		return runtime.BadRequest("user_id", "must be a positive 64-bit integer")
	}
	if err := req.AuthorizeUser(in.UserID); err != nil {
		return err
	}
	st, taken, first, err := g.take(ctx, id, in.UserID)
	switch {
	case errors.Is(err, errNoEnvelope):
		return notFound(id)
	case err != nil:
		return &runtime.Error{Status: http.StatusServiceUnavailable, Code: "kv_unavailable",
			Msg: "the grab could not be decided; retry", Err: err}
	}
	// The state decided; now the store's record (see the package comment).
	switch {
	case st.Recorded:
	case len(st.Grabs) == st.Count:
		err = g.seal(ctx, st.state, st.rev)
	case taken.UserID != 0:
		err = g.store.PutGrabs(ctx, []store.Grab{{EnvelopeID: id, UserID: taken.UserID, AmountCents: taken.AmountCents, At: taken.At}})
	}
	if err != nil {
		return storeUnavailable(err)
	}
	if taken.UserID == 0 {
		return runtime.Errorf(http.StatusGone, "envelope_empty", "every share of envelope %s is taken", id)
	}
	return req.RespondJSON(http.StatusOK, GrabResponse{EnvelopeID: id, UserID: taken.UserID, AmountCents: taken.AmountCents, First: first})
}

type revState struct {
	state
	rev uint64
}

// take decides the user's share on the KV state: the one already taken
// (first false), a new one (first true), or none (a zero grab: empty).
func (g *Grab) take(ctx context.Context, id string, user int64) (revState, grab, bool, error) {
	mu := &g.locks[maphash.String(g.seed, id)%uint64(len(g.locks))]
	mu.Lock()
	defer mu.Unlock()
	for attempt := 0; ; attempt++ {
		st, rev, err := g.load(ctx, id)
		if err != nil {
			return revState{}, grab{}, false, err
		}
		if mine, ok := st.find(user); ok {
			return revState{st, rev}, mine, false, nil
		}
		if len(st.Grabs) >= st.Count {
			return revState{st, rev}, grab{}, false, nil
		}
		share := Draw(st.RemainingCents, st.Count-len(st.Grabs), g.rnd)
		mine := grab{UserID: user, AmountCents: share, At: g.clock.Now().UTC().Truncate(time.Microsecond)}
		st.Grabs = append(st.Grabs, mine)
		st.RemainingCents -= share
		b, err := json.Marshal(st)
		if err != nil {
			return revState{}, grab{}, false, err
		}
		rev, err = g.kv.Update(ctx, stateKey(id), b, rev)
		switch {
		case err == nil:
			return revState{st, rev}, mine, true, nil
		case !runtime.IsKVConflict(err):
			return revState{}, grab{}, false, err
		}
		// Another host's grab got in first: back off a little, with
		// jitter, and draw again on the new state.
		if err := sleep(ctx, time.Duration(rand.Int64N(int64(min(attempt+1, 10))*int64(time.Millisecond)))); err != nil {
			return revState{}, grab{}, false, err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Get is envelopes.get.
type Get struct{ deps }

var (
	_ runtime.Handler     = (*Get)(nil)
	_ runtime.Provisioner = (*Get)(nil)
)

// Provision binds the store, ENVELOPES and the clock.
func (g *Get) Provision(_ context.Context, env *runtime.Env) (err error) {
	g.deps, err = provision(env)
	return err
}

// GetResponse is the answer of envelopes.get.
type GetResponse struct {
	EnvelopeID     string `json:"envelope_id"`
	TotalCents     int64  `json:"total_cents"`
	Count          int    `json:"count"`
	Taken          int    `json:"taken"`
	RemainingCents int64  `json:"remaining_cents"`
	Grabs          []grab `json:"grabs"`
}

// Handle answers an envelope from its KV state, sealing an emptied one
// that is not recorded yet.
func (g *Get) Handle(ctx context.Context, req *runtime.Request) error {
	var in struct {
		EnvelopeID string `json:"envelope_id"`
	}
	if len(req.Data) > 0 {
		if err := runtime.DecodeJSON(req.Data, &in, ""); err != nil {
			return err
		}
	}
	id, err := envelopeID(req, &in.EnvelopeID)
	if err != nil {
		return err
	}
	st, rev, err := g.load(ctx, id)
	switch {
	case errors.Is(err, errNoEnvelope):
		return notFound(id)
	case err != nil:
		return &runtime.Error{Status: http.StatusServiceUnavailable, Code: "kv_unavailable",
			Msg: "the envelope could not be read; retry", Err: err}
	}
	if len(st.Grabs) == st.Count && !st.Recorded {
		if err := g.seal(ctx, st, rev); err != nil {
			return storeUnavailable(err)
		}
	}
	return req.RespondJSON(http.StatusOK, GetResponse{EnvelopeID: id, TotalCents: st.TotalCents, Count: st.Count,
		Taken: len(st.Grabs), RemainingCents: st.RemainingCents, Grabs: st.Grabs})
}
