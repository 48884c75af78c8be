package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// EnvelopeConfig configures the envelope scenario.
type EnvelopeConfig struct {
	// HTTP is the target.
	HTTP HTTPConfig
	// Envelopes is how many envelopes are open at a time.
	Envelopes int
	// Shares and TotalCents make each envelope.
	Shares     int
	TotalCents int64
}

// Envelope is the envelope scenario: many grabbers, each a new user, on a
// few open envelopes (POST /v1/envelopes/{id}/grab); an operation is one
// share grabbed, and an emptied envelope is replaced by a new one.
// Verify reads every envelope back: the shares sum exactly, no user holds
// two, and every acknowledged share is listed with its amount.
type Envelope struct {
	cfg   EnvelopeConfig
	c     *httpClient
	base  int64
	users atomic.Int64
	slots []atomic.Pointer[envelopeRun]
	ws    []simpleWorker

	mu  sync.Mutex
	all []*envelopeRun
}

// envelopeRun is one envelope of the run and the shares it acknowledged.
type envelopeRun struct {
	id       string
	replaced atomic.Bool // one worker opens its successor
	mu       sync.Mutex
	shares   map[int64]int64 // user -> amount, from first:true answers
}

// NewEnvelope returns the envelope scenario.
func NewEnvelope(cfg EnvelopeConfig) (*Envelope, error) {
	switch {
	case cfg.Envelopes < 1:
		return nil, fmt.Errorf("--envelopes must be at least 1, got %d", cfg.Envelopes)
	case cfg.Shares < 1 || cfg.TotalCents < int64(cfg.Shares):
		return nil, fmt.Errorf("--shares must be at least 1 and --total-cents at least --shares, got %d and %d", cfg.Shares, cfg.TotalCents)
	}
	if err := cfg.HTTP.validate(); err != nil {
		return nil, err
	}
	return &Envelope{cfg: cfg, base: userBase()}, nil
}

// Name implements Scenario.
func (*Envelope) Name() string { return "envelope" }

// Setup implements Scenario: it opens the first envelopes.
func (e *Envelope) Setup(ctx context.Context, workers int) (err error) {
	if e.c, err = newHTTPClient(e.cfg.HTTP, workers); err != nil {
		return err
	}
	e.ws = make([]simpleWorker, workers)
	for i := range e.ws {
		e.ws[i].rnd = newRand()
	}
	e.slots = make([]atomic.Pointer[envelopeRun], e.cfg.Envelopes)
	for i := range e.slots {
		env, err := e.open(ctx, &e.ws[0].resp)
		if err != nil {
			return err
		}
		e.slots[i].Store(env)
	}
	return nil
}

// open creates an envelope.
func (e *Envelope) open(ctx context.Context, resp *bytes.Buffer) (*envelopeRun, error) {
	body := fmt.Sprintf(`{"sender_id":%d,"total_cents":%d,"count":%d}`, e.base, e.cfg.TotalCents, e.cfg.Shares)
	if kind := e.c.do(ctx, http.MethodPost, "/v1/envelopes", []byte(body), http.StatusCreated, resp); kind != "" {
		return nil, fmt.Errorf("create envelope: %s: %s", kind, resp.Bytes())
	}
	var a struct {
		EnvelopeID string `json:"envelope_id"`
	}
	if err := json.Unmarshal(resp.Bytes(), &a); err != nil || a.EnvelopeID == "" {
		return nil, fmt.Errorf("create envelope: answer %q", resp.Bytes())
	}
	env := &envelopeRun{id: a.EnvelopeID, shares: map[int64]int64{}}
	e.mu.Lock()
	e.all = append(e.all, env)
	e.mu.Unlock()
	return env, nil
}

// Do implements Scenario: one share grabbed by a new user. A grab that
// finds its envelope empty (410) moves on to the envelope replacing it,
// which the first worker to find it empty opens.
func (e *Envelope) Do(ctx context.Context, w int) string {
	ws := &e.ws[w]
	slot := &e.slots[ws.rnd.IntN(len(e.slots))]
	user := e.base + e.users.Add(1)
	ws.body = append(strconv.AppendInt(append(ws.body[:0], `{"user_id":`...), user, 10), '}')
	for range 100 {
		env := slot.Load()
		switch kind := e.c.do(ctx, http.MethodPost, "/v1/envelopes/"+env.id+"/grab", ws.body, http.StatusOK, &ws.resp); kind {
		case "":
			return e.record(env, user, ws.resp.Bytes())
		case HTTPKind(http.StatusGone):
			if env.replaced.CompareAndSwap(false, true) {
				next, err := e.open(ctx, &ws.resp)
				if err != nil {
					env.replaced.Store(false)
					return KindOther
				}
				slot.Store(next)
			}
			for slot.Load() == env && ctx.Err() == nil {
				time.Sleep(time.Millisecond) // another worker opens the next one
			}
		default:
			return kind
		}
	}
	return KindOther
}

// record checks a grab's answer and keeps the share for Verify.
func (e *Envelope) record(env *envelopeRun, user int64, body []byte) string {
	var a struct {
		UserID      int64 `json:"user_id"`
		AmountCents int64 `json:"amount_cents"`
		First       bool  `json:"first"`
	}
	if json.Unmarshal(body, &a) != nil || a.UserID != user || !a.First || a.AmountCents < 1 {
		return KindBadResponse
	}
	env.mu.Lock()
	env.shares[user] = a.AmountCents
	env.mu.Unlock()
	return ""
}

// Verify implements Verifier: every envelope of the run, read back.
func (e *Envelope) Verify(ctx context.Context, _ *Result) (*Verification, error) {
	e.mu.Lock()
	all := append([]*envelopeRun(nil), e.all...)
	e.mu.Unlock()
	v := &Verification{}
	problem := func(format string, args ...any) {
		if len(v.Problems) < 5 {
			v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
		}
	}
	for _, env := range all {
		b, err := e.c.getJSON(ctx, "/v1/envelopes/"+env.id, http.StatusOK)
		if err != nil {
			return nil, err
		}
		var got struct {
			Count          int   `json:"count"`
			Taken          int   `json:"taken"`
			RemainingCents int64 `json:"remaining_cents"`
			Grabs          []struct {
				UserID      int64 `json:"user_id"`
				AmountCents int64 `json:"amount_cents"`
			} `json:"grabs"`
		}
		if err := json.Unmarshal(b, &got); err != nil {
			return nil, fmt.Errorf("envelope %s: %w", env.id, err)
		}
		listed := map[int64]int64{}
		sum := got.RemainingCents
		for _, g := range got.Grabs {
			if _, dup := listed[g.UserID]; dup {
				v.Duplicated++
				problem("envelope %s: user %d listed twice", env.id, g.UserID)
			}
			listed[g.UserID] = g.AmountCents
			sum += g.AmountCents
			if g.AmountCents < 1 {
				problem("envelope %s: a share of %d cents", env.id, g.AmountCents)
			}
		}
		if sum != e.cfg.TotalCents || got.Taken != len(got.Grabs) || got.Taken > got.Count {
			problem("envelope %s: %d shares and %d cents left sum to %d, want %d", env.id, got.Taken, got.RemainingCents, sum, e.cfg.TotalCents)
		}
		v.Stored += int64(len(got.Grabs))
		env.mu.Lock()
		for u, amount := range env.shares {
			v.Acked++
			switch have, ok := listed[u]; {
			case !ok:
				v.Lost++
				problem("envelope %s: the share of user %d (%d cents) is not listed", env.id, u, amount)
			case have != amount:
				v.SampleMismatches++
				problem("envelope %s: user %d holds %d cents, acknowledged %d", env.id, u, have, amount)
			}
		}
		env.mu.Unlock()
	}
	v.Sampled = len(all)
	v.Passed = len(v.Problems) == 0
	return v, nil
}

// Close implements Scenario.
func (e *Envelope) Close() error {
	if e.c != nil {
		e.c.close()
	}
	return nil
}
