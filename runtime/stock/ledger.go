package stock

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/surgefn/surge/internal/jsonscan"
	"github.com/surgefn/surge/runtime"
)

// Headers of ledger messages.
const (
	// HeaderTakes is a take message's takes, the JSON array of
	// [claim, holder, units, key] (key "" without one).
	HeaderTakes = "Surge-Stock-Takes"
	// HeaderTotal is a set message's new total.
	HeaderTotal = "Surge-Stock-Total"

	hdrExpectSeq  = "Nats-Expected-Last-Subject-Sequence"
	hdrExpectSubj = "Nats-Expected-Last-Subject-Sequence-Subject"
)

// Bounds of one take message.
const (
	// DefaultMaxTakes is the most takes one message carries, the most
	// orders one orders.submit array holds.
	DefaultMaxTakes = 1000
	// DefaultMaxBytes bounds one message's body (what Encode makes); the
	// takes header is bounded by maxTakesHeader.
	DefaultMaxBytes = 512 << 10
	// syncWait bounds how long a call waits for the ledger's tail to
	// deliver what the stream holds.
	syncWait = 10 * time.Second
	// maxRounds bounds the lost compare-and-sets of one batch.
	maxRounds = 100
)

// tokenPattern is a key usable as one subject token.
var tokenPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// Ledger is stock kept as an append-only log on a JetStream stream; the
// flash sales (functions/sales) sell on it. Key k has two subjects:
// "<prefix>.k.set" holds the totals Set gave it, and "<prefix>.k.take" its
// takes. A take message carries any number of takes (HeaderTakes) and, as
// its body, what the caller makes of them (LedgerConfig.Encode): for a
// flash sale the orders, in the form orders.submit takes, so that the
// stream trigger storing them reads the take itself. Stock taken without its record, or a record without the
// stock, cannot happen: they are one message.
//
// Every message is a compare-and-set on the key: it is published with
// Nats-Expected-Last-Subject-Sequence over "<prefix>.k.*" set to the last
// sequence this process applied, so the stream stores it only when no
// other message for k came in between (from another goroutine, process or
// host). Each process rebuilds a key's state (total, sold, each holder's
// units and retry keys) from its subjects on first use and keeps it
// current with an ordered consumer, the tail. A take is decided against
// that state and becomes durable with the publish ack; a lost race waits
// for the tail to deliver what won and decides again.
//
// Concurrent takes of a key in one process go out together: while one
// message is in flight the next ones queue, and the message after it
// carries them all (at most MaxTakes, MaxBytes). So a hot key sells at
// the stream's message rate times the batch, not at one key's CAS rate.
type Ledger struct {
	js     jetstream.JetStream
	cfg    LedgerConfig
	ctx    context.Context
	cancel context.CancelFunc

	mu    sync.Mutex
	books map[string]*book
}

// LedgerConfig configures a Ledger.
type LedgerConfig struct {
	// Stream is the stream that captures Prefix + ".>".
	Stream string
	// Prefix starts the ledger's subjects.
	Prefix string
	// Encode makes the body of a take message from its takes (nil: the
	// body is empty). It runs with the key's state locked: keep it quick.
	Encode func(key string, takes []Taken) ([]byte, error)
	// MaxTakes and MaxBytes bound one take message (DefaultMaxTakes,
	// DefaultMaxBytes when 0).
	MaxTakes, MaxBytes int
	// IdleAfter is how long a key unused in this process keeps its state
	// and its tail (an ordered consumer on the server); the next use
	// rebuilds them. DefaultIdleAfter when 0; negative keeps them until
	// Close.
	IdleAfter time.Duration
}

// DefaultIdleAfter is LedgerConfig.IdleAfter when unset: a sale that
// ended stops costing its tail ten minutes after its last call.
const DefaultIdleAfter = 10 * time.Minute

// Take is one reservation asked of Reserve.
type Take struct {
	// Holder is who takes (a user id): claims are numbered per holder.
	Holder string
	// Units is how many units; more than 0.
	Units int64
	// Limit is the most units Holder may hold of the key in all (0: no
	// limit); a take over it is ErrLimit.
	Limit int64
	// Key is a retry key (an Idempotency-Key): a second take of Holder
	// with the same key is the first one, Replayed.
	Key string
	// Data is handed to Encode with the take.
	Data any
}

// Taken is a take as it goes into a message: its claim id is
// "<key>-<holder>-<n>" for the holder's n-th take of the key.
type Taken struct {
	Claim  string
	Holder string
	Units  int64
	Key    string
	Data   any
}

// NewLedger returns the ledger on cfg.Stream. Close stops its tails.
func NewLedger(js jetstream.JetStream, cfg LedgerConfig) *Ledger {
	if cfg.MaxTakes <= 0 {
		cfg.MaxTakes = DefaultMaxTakes
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.IdleAfter == 0 {
		cfg.IdleAfter = DefaultIdleAfter
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Ledger{js: js, cfg: cfg, ctx: ctx, cancel: cancel, books: map[string]*book{}}
	if cfg.IdleAfter > 0 {
		go l.evictIdle()
	}
	return l
}

// evictIdle drops, until Close, the books no call used for IdleAfter and
// that have nothing to send: their tails stop.
func (l *Ledger) evictIdle() {
	t := time.NewTicker(max(l.cfg.IdleAfter/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case now := <-t.C:
			l.mu.Lock()
			for key, b := range l.books {
				if b.users > 0 || now.Sub(b.lastUse) < l.cfg.IdleAfter {
					continue
				}
				select {
				case <-b.ready:
				default:
					continue // still loading
				}
				b.mu.Lock()
				idle := !b.busy && len(b.queue) == 0
				b.mu.Unlock()
				if idle {
					b.stop()
					delete(l.books, key)
				}
			}
			l.mu.Unlock()
		}
	}
}

// release ends a call's use of b (taken by book).
func (l *Ledger) release(b *book) {
	l.mu.Lock()
	b.users--
	b.lastUse = time.Now()
	l.mu.Unlock()
}

// Close stops the tails; calls in flight fail.
func (l *Ledger) Close() {
	l.cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range l.books {
		<-b.ready // a load ends soon once the context is canceled
		b.stop()
	}
	l.books = map[string]*book{}
}

// CheckStream reports whether stream keeps every message, as a ledger's
// must: a state rebuilt from a stream that dropped old takes would sell
// their units again and reuse their claim ids.
func CheckStream(ctx context.Context, js jetstream.JetStream, stream string) error {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("ledger stream %s: %w", stream, err)
	}
	cfg := s.CachedInfo().Config
	var limits []string
	if cfg.MaxAge > 0 {
		limits = append(limits, "max age "+cfg.MaxAge.String())
	}
	if cfg.MaxMsgs > 0 {
		limits = append(limits, "max messages "+strconv.FormatInt(cfg.MaxMsgs, 10))
	}
	if cfg.MaxBytes > 0 {
		limits = append(limits, "max bytes "+strconv.FormatInt(cfg.MaxBytes, 10))
	}
	if cfg.MaxMsgsPerSubject > 0 {
		limits = append(limits, "max messages per subject "+strconv.FormatInt(cfg.MaxMsgsPerSubject, 10))
	}
	if cfg.Retention != jetstream.LimitsPolicy {
		limits = append(limits, "retention "+cfg.Retention.String())
	}
	if len(limits) > 0 {
		return fmt.Errorf("ledger stream %s drops messages (%s): a ledger needs all of them; make it keep them (maxAge: unlimited in spec.publishes when surge creates it)",
			stream, strings.Join(limits, ", "))
	}
	return nil
}

// TakeSubject is the subject of key's takes.
func (l *Ledger) TakeSubject(key string) string { return l.cfg.Prefix + "." + key + ".take" }

func (l *Ledger) setSubject(key string) string { return l.cfg.Prefix + "." + key + ".set" }
func (l *Ledger) keyFilter(key string) string  { return l.cfg.Prefix + "." + key + ".*" }

// ClaimID is the claim id of holder's n-th take of key.
func ClaimID(key, holder string, n int) string { return key + "-" + holder + "-" + strconv.Itoa(n) }

// book is one key's state in this process.
type book struct {
	l   *Ledger
	key string

	ready   chan struct{} // closed once loaded
	loadErr error
	cons    jetstream.Consumer // the tail
	cc      jetstream.ConsumeContext

	mu       sync.Mutex
	seq      uint64 // the last stream sequence applied
	exists   bool   // a total was set
	total    int64
	sold     int64
	holders  map[string]*holding
	scratch  []Taken       // applyLocked's, reused
	progress chan struct{} // closed (and replaced) on every applied message
	queue    []*pending
	busy     bool
	// flight is the id (Nats-Msg-Id) of the message in flight, and
	// landed the sequence the tail applied it at (0: not seen).
	flight string
	landed uint64

	// Under l.mu: the calls using the book, and when the last one ended.
	users   int
	lastUse time.Time
}

type holding struct {
	units int64
	takes int
	keys  map[string]Claim // by retry key
}

type pending struct {
	t     Take
	set   bool // a Set, not a take
	total int64
	res   Claim
	lv    Levels
	err   error
	done  chan struct{}
	// dropped: its caller gave up before it went out.
	dropped bool
	// synced: decided against a state caught up with the stream.
	synced bool
}

// book returns key's book, loaded, for one call, which must release it.
func (l *Ledger) book(ctx context.Context, key string) (*book, error) {
	if !tokenPattern.MatchString(key) {
		return nil, fmt.Errorf("stock: key %q: must be 1 to 128 characters of A-Z, a-z, 0-9, '_' or '-'", key)
	}
	l.mu.Lock()
	b, ok := l.books[key]
	if !ok {
		if l.ctx.Err() != nil {
			l.mu.Unlock()
			return nil, errors.New("stock: ledger closed")
		}
		b = &book{l: l, key: key, ready: make(chan struct{}), holders: map[string]*holding{}, progress: make(chan struct{})}
		l.books[key] = b
		go b.load()
	}
	b.users++
	l.mu.Unlock()
	select {
	case <-b.ready:
	case <-ctx.Done():
		l.release(b)
		return nil, ctx.Err()
	}
	if b.loadErr != nil {
		l.mu.Lock()
		b.users--
		if l.books[key] == b {
			delete(l.books, key) // the next call tries again
		}
		l.mu.Unlock()
		return nil, b.loadErr
	}
	return b, nil
}

// load starts the tail and waits until it delivered what the stream held.
func (b *book) load() {
	defer close(b.ready)
	ctx, cancel := context.WithTimeout(b.l.ctx, syncWait)
	defer cancel()
	// Headers only: the state is all in the headers, and a take message's
	// body (a sale's orders) is many times their size.
	c, err := b.l.js.OrderedConsumer(ctx, b.l.cfg.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{b.l.keyFilter(b.key)}, HeadersOnly: true})
	if err == nil {
		b.cons = c
		b.cc, err = c.Consume(b.apply)
	}
	if err == nil {
		err = b.sync(ctx)
	}
	if err != nil {
		b.stop()
		b.loadErr = fmt.Errorf("stock %s: load the ledger: %w", b.key, err)
	}
}

// stop stops the tail and deletes its consumer on the server (which
// would otherwise stay until its inactivity threshold, minutes).
func (b *book) stop() {
	if b.cc != nil {
		b.cc.Stop()
	}
	if b.cons == nil {
		return
	}
	if info := b.cons.CachedInfo(); info != nil {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = b.l.js.DeleteConsumer(ctx, b.l.cfg.Stream, info.Name)
		}()
	}
}

// sync waits until the tail applied the key's last message on the stream.
func (b *book) sync(ctx context.Context) error {
	// Bounded: a reply lost with a stream leader must not hang the flush.
	ctx, cancel := context.WithTimeout(ctx, syncWait)
	defer cancel()
	last, err := b.lastSeq(ctx)
	if err != nil {
		return err
	}
	return b.waitFor(ctx, last)
}

// lastSeq asks the stream leader for the sequence of the key's last
// message (0: none).
func (b *book) lastSeq(ctx context.Context) (uint64, error) {
	m, err := runtime.LastMsg(ctx, b.l.js.Conn(), b.l.cfg.Stream, b.l.keyFilter(b.key))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	return m.Seq, err
}

// waitFor waits until the tail applied sequence seq.
func (b *book) waitFor(ctx context.Context, seq uint64) error {
	t := time.NewTimer(syncWait)
	defer t.Stop()
	for {
		b.mu.Lock()
		at, ch := b.seq, b.progress
		b.mu.Unlock()
		if at >= seq {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return fmt.Errorf("stock %s: the ledger's tail is at %d after %s, the stream at %d", b.key, at, syncWait, seq)
		}
	}
}

// apply is the tail's handler: one message of the key, in stream order.
func (b *book) apply(m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.applyLocked(md.Sequence.Stream, m.Subject(), m.Headers())
}

// applyLocked applies one message at seq, unless it already was.
func (b *book) applyLocked(seq uint64, subject string, h nats.Header) {
	if seq <= b.seq {
		return
	}
	b.seq = seq
	defer func() {
		close(b.progress)
		b.progress = make(chan struct{})
	}()
	if strings.HasSuffix(subject, ".set") {
		if n, err := strconv.ParseInt(h.Get(HeaderTotal), 10, 64); err == nil {
			b.exists, b.total = true, n
		}
		return
	}
	takes, ok := decodeTakes(h.Get(HeaderTakes), b.scratch[:0])
	b.scratch = takes[:0]
	if !ok {
		return
	}
	own := b.flight != "" && h.Get(runtime.HeaderMsgID) == b.flight
	if own {
		b.landed = seq
	}
	for _, t := range takes {
		b.record(t)
	}
	clear(takes)
}

// record adds one take to the state. Its strings may be slices of a
// message's header: what the state keeps is copied.
func (b *book) record(t Taken) {
	b.sold += t.Units
	hd := b.holders[t.Holder]
	if hd == nil {
		hd = &holding{}
		b.holders[strings.Clone(t.Holder)] = hd
	}
	hd.units += t.Units
	hd.takes++
	if t.Key != "" {
		if hd.keys == nil {
			hd.keys = map[string]Claim{}
		}
		hd.keys[strings.Clone(t.Key)] = Claim{ID: strings.Clone(t.Claim), Units: t.Units, Replayed: true}
	}
}

// decodeTakes appends the takes of a HeaderTakes value to out; false when
// it is not a JSON array of [claim, holder, units, key]. The takes of a
// message as assemble writes it are parsed directly (its strings are
// slices of v); anything else, such as an escaped string, goes through
// encoding/json (1000 takes: 50 µs parsed, 770 µs and 5,000 allocations
// through encoding/json; BenchmarkDecodeTakes).
func decodeTakes(v string, out []Taken) ([]Taken, bool) {
	if takes, ok := parseTakes(v, out); ok {
		return takes, true
	}
	return decodeTakesJSON(v, out)
}

// decodeTakesJSON is decodeTakes through encoding/json.
func decodeTakesJSON(v string, out []Taken) ([]Taken, bool) {
	var raw [][4]any
	if json.Unmarshal([]byte(v), &raw) != nil {
		return out, false
	}
	for _, t := range raw {
		claim, _ := t[0].(string)
		holder, _ := t[1].(string)
		units, _ := t[2].(float64)
		key, _ := t[3].(string)
		out = append(out, Taken{Claim: claim, Holder: holder, Units: int64(units), Key: key})
	}
	return out, true
}

// parseTakes parses v when it is [["claim","holder",units,"key"],...]
// with no white space, strings without escapes, units an integer that a
// float64 holds exactly (encoding/json decodes it to one): what json.Marshal
// of the takes makes. False for anything else.
func parseTakes(v string, out []Taken) ([]Taken, bool) {
	p := jsonscan.Scanner[string]{In: v}
	if !p.Lit("[") {
		return out, false
	}
	if p.Lit("]") {
		return out, p.In == ""
	}
	n := len(out)
	for {
		var t Taken
		if !(p.Lit("[") && p.Str(&t.Claim) && p.Lit(",") && p.Str(&t.Holder) && p.Lit(",") &&
			p.Int(&t.Units) && t.Units > -1<<53 && t.Units < 1<<53 && p.Lit(",") && p.Str(&t.Key) && p.Lit("]")) {
			return out[:n], false
		}
		out = append(out, t)
		if p.Lit("]") {
			if p.In != "" {
				return out[:n], false
			}
			return out, true
		}
		if !p.Lit(",") {
			return out[:n], false
		}
	}
}

// Reserve takes t.Units of key for t.Holder: ErrSoldOut when fewer are
// left, ErrLimit over t.Limit, ErrNoStock before the key was Set; a take
// with a retry key already used by the holder is that take, Replayed. The
// claim returned is durable: its message is on the stream.
func (l *Ledger) Reserve(ctx context.Context, key string, t Take) (Claim, error) {
	if t.Units <= 0 {
		return Claim{}, fmt.Errorf("%w: %d units", ErrBadCount, t.Units)
	}
	if t.Holder == "" {
		return Claim{}, errors.New("stock: a take needs a holder")
	}
	b, err := l.book(ctx, key)
	if err != nil {
		return Claim{}, err
	}
	defer l.release(b)
	p := &pending{t: t, done: make(chan struct{})}
	b.mu.Lock()
	if c, done, err := b.decide(p); done {
		b.mu.Unlock()
		return c, err
	}
	b.enqueue(p)
	b.mu.Unlock()
	select {
	case <-p.done:
		return p.res, p.err
	case <-ctx.Done():
		b.mu.Lock()
		p.dropped = true // not sent if it has not gone out yet
		b.mu.Unlock()
		return Claim{}, ctx.Err()
	}
}

// Set makes key hold total units, creating it; lower than the units
// sold is ErrBelowSold. It is a message of the ledger like the takes.
func (l *Ledger) Set(ctx context.Context, key string, total int64) (Levels, error) {
	if total < 0 {
		return Levels{}, fmt.Errorf("%w: %d units", ErrBadCount, total)
	}
	b, err := l.book(ctx, key)
	if err != nil {
		return Levels{}, err
	}
	defer l.release(b)
	p := &pending{set: true, total: total, done: make(chan struct{})}
	b.mu.Lock()
	b.enqueue(p)
	b.mu.Unlock()
	select {
	case <-p.done:
		return p.lv, p.err
	case <-ctx.Done():
		return Levels{}, ctx.Err()
	}
}

// Levels reports key's total and units sold, from a state caught up with
// the stream; ErrNoStock before the key was Set.
func (l *Ledger) Levels(ctx context.Context, key string) (Levels, error) {
	b, err := l.book(ctx, key)
	if err != nil {
		return Levels{}, err
	}
	defer l.release(b)
	if err := b.sync(ctx); err != nil {
		return Levels{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.exists {
		return Levels{}, fmt.Errorf("%w: %s", ErrNoStock, key)
	}
	return Levels{Total: b.total, Sold: b.sold}, nil
}

func (b *book) enqueue(p *pending) {
	b.queue = append(b.queue, p)
	if !b.busy {
		b.busy = true
		go b.flush()
	}
}

// verdict is what the state says of a take.
type verdict int

const (
	goes      verdict = iota // it can go out
	answered                 // the error is its answer
	needsSync                // decided only on a state synced with the stream
)

// judge decides t against the state, with held the units its holder
// holds and taken the units of the message being assembled. What it
// answers cannot change with what the tail has not delivered yet: the
// holder's limit (units only grow), and sold out for a take without a
// retry key (stale at most by the tail's lag behind a Set that raised the
// stock). A keyed take may be the retry of a take another host published,
// and a key not set yet may have been set elsewhere: those need a synced
// state.
func (b *book) judge(t Take, synced bool, held, taken int64) (verdict, error) {
	if !b.exists {
		if !synced {
			return needsSync, nil
		}
		return answered, fmt.Errorf("%w: %s", ErrNoStock, b.key)
	}
	if t.Limit > 0 && held+t.Units > t.Limit {
		return answered, fmt.Errorf("%w: %s holds %d of %d", ErrLimit, t.Holder, held, t.Limit)
	}
	if b.total-b.sold-taken < t.Units {
		if t.Key != "" && !synced {
			return needsSync, nil
		}
		return answered, ErrSoldOut
	}
	return goes, nil
}

// decide answers p from the state alone when it can (done): a known
// retry key, or what judge answers.
func (b *book) decide(p *pending) (Claim, bool, error) {
	hd := b.holders[p.t.Holder]
	if c, ok := keyed(hd, nil, p.t); ok {
		return c, true, nil
	}
	var held int64
	if hd != nil {
		held = hd.units
	}
	v, err := b.judge(p.t, false, held, 0)
	return Claim{}, v == answered, err
}

// flush sends the queue, one message at a time, until it is empty.
func (b *book) flush() {
	for {
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.busy = false
			b.mu.Unlock()
			return
		}
		if b.queue[0].set {
			p := b.queue[0]
			b.queue = b.queue[1:]
			b.mu.Unlock()
			b.sendSet(p)
			continue
		}
		n := 0
		for n < len(b.queue) && n < b.l.cfg.MaxTakes && !b.queue[n].set {
			n++
		}
		batch := b.queue[:n:n]
		b.queue = b.queue[n:]
		b.mu.Unlock()
		b.sendTakes(batch)
	}
}

// finish answers p.
func finish(p *pending, c Claim, err error) {
	p.res, p.err = c, err
	close(p.done)
}

// sendTakes decides and publishes batch until every take in it is
// answered.
func (b *book) sendTakes(batch []*pending) {
	for round := 0; len(batch) > 0; round++ {
		if round == maxRounds {
			for _, p := range batch {
				finish(p, Claim{}, fmt.Errorf("stock %s: gave up after %d lost races", b.key, maxRounds))
			}
			return
		}
		out, err := b.assemble(batch)
		sent, claims, expect, msg := out.sent, out.claims, out.expect, out.msg
		if err != nil {
			for _, p := range sent {
				finish(p, Claim{}, err)
			}
			return
		}
		batch = nil
		if msg == nil {
			// Nothing to send; what needs a synced state is synced and
			// decided again.
			for _, p := range sent {
				p.synced = true
			}
			if len(sent) > 0 {
				if err := b.sync(b.l.ctx); err != nil {
					for _, p := range sent {
						finish(p, Claim{}, err)
					}
					return
				}
				batch = sent
			}
			continue
		}
		ack, err := b.publish(msg)
		b.mu.Lock()
		switch {
		case err == nil:
			// The tail may have applied it already; otherwise apply it
			// here: nothing else came in between (the CAS held), so the
			// takes it put back in the queue were decided on a current
			// state and are synced.
			b.applyLocked(ack.Sequence, msg.Subject, msg.Header)
			b.flight = ""
			for _, p := range out.unsynced {
				p.synced = true
			}
			b.mu.Unlock()
			finishAll(sent, claims)
			continue
		case runtime.IsKVConflict(err):
			b.mu.Unlock()
			// Another message for the key came first: wait for the tail,
			// then decide again. If it was this very message (a retry of
			// a publish whose ack was lost), its takes stand.
			werr := b.waitFor(b.l.ctx, conflictSeq(err, expect))
			b.mu.Lock()
			landed := b.landed
			b.flight, b.landed = "", 0
			b.mu.Unlock()
			switch {
			case landed != 0:
				finishAll(sent, claims)
			case werr != nil:
				for _, p := range sent {
					finish(p, Claim{}, werr)
				}
				return
			default:
				batch = sent
			}
		default:
			b.flight = ""
			b.mu.Unlock()
			// Not known whether it was stored: the callers retry (with a
			// retry key, the take is found), and the next message's CAS
			// tells this process.
			for _, p := range sent {
				finish(p, Claim{}, fmt.Errorf("stock %s: %w", b.key, err))
			}
		}
	}
}

// finishAll answers sent with their claims.
func finishAll(sent []*pending, claims []Claim) {
	for i, p := range sent {
		finish(p, claims[i], nil)
	}
}

// conflictSeq is the sequence the stream reported in a lost race ("wrong
// last sequence: N"), or at least expect+1 when it did not say.
func conflictSeq(err error, expect uint64) uint64 {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		if s, ok := strings.CutPrefix(apiErr.Description, "wrong last sequence: "); ok {
			if n, err := strconv.ParseUint(s, 10, 64); err == nil && n > expect {
				return n
			}
		}
	}
	return expect + 1
}

// outgoing is what assemble makes of a batch.
type outgoing struct {
	// msg carries sent, in its order, with their claims, published on
	// expect; nil when none goes out, and then sent are the takes that
	// need a synced state.
	msg    *nats.Msg
	sent   []*pending
	claims []Claim
	expect uint64
	// unsynced are the takes put back in the queue to be decided on a
	// synced state: msg's compare-and-set holding makes them synced.
	unsynced []*pending
}

// maxTakesHeader bounds the takes header: JetStream refuses a message
// whose headers pass 64 KiB, and the message has a few more.
const maxTakesHeader = 60 << 10

// assemble decides the takes of batch against the state. It answers
// those the state decides (known keys, what judge answers) and returns
// the message carrying the others. A message ends at maxTakesHeader of
// takes header, and at MaxBytes of body (what Encode makes of its takes:
// halved until it fits); the takes cut off go first in the queue.
func (b *book) assemble(batch []*pending) (outgoing, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var unsynced []*pending
	var takes []Taken
	var out outgoing
	extra := map[string]int64{} // units of this message, by holder
	count := map[string]int{}   // takes of this message, by holder
	var units int64
	var entries [][]byte // the takes header's entries
	size := 2            // the header's length: "[" entries joined by "," "]"
	for i, p := range batch {
		if p.dropped {
			finish(p, Claim{}, context.Canceled)
			continue
		}
		t := p.t
		hd := b.holders[t.Holder]
		if t.Key != "" {
			if c, ok := keyed(hd, takes, t); ok {
				finish(p, c, nil)
				continue
			}
		}
		held, n := extra[t.Holder], count[t.Holder]
		if hd != nil {
			held, n = held+hd.units, n+hd.takes
		}
		switch v, err := b.judge(t, p.synced, held, units); v {
		case needsSync:
			unsynced = append(unsynced, p)
			continue
		case answered:
			finish(p, Claim{}, err)
			continue
		}
		tk := Taken{Claim: ClaimID(b.key, t.Holder, n+1), Holder: t.Holder, Units: t.Units, Key: t.Key, Data: t.Data}
		entry, err := json.Marshal([4]any{tk.Claim, tk.Holder, tk.Units, tk.Key})
		if err != nil {
			finish(p, Claim{}, err)
			continue
		}
		if len(entries) > 0 && size+1+len(entry) > maxTakesHeader {
			// Full: the rest go first in the queue, for the next message.
			b.queue = append(append([]*pending(nil), batch[i:]...), b.queue...)
			break
		}
		size += len(entry)
		if len(entries) > 0 {
			size++
		}
		entries = append(entries, entry)
		extra[t.Holder] += t.Units
		count[t.Holder]++
		units += t.Units
		takes = append(takes, tk)
		out.sent = append(out.sent, p)
		out.claims = append(out.claims, Claim{ID: tk.Claim, Units: tk.Units})
	}
	if len(takes) == 0 {
		out.sent = unsynced
		return out, nil
	}
	var body []byte
	for b.l.cfg.Encode != nil {
		var err error
		if body, err = b.l.cfg.Encode(b.key, takes); err != nil {
			// The cut-off takes are still in the queue; these fail.
			b.queue = append(unsynced, b.queue...)
			return out, fmt.Errorf("stock %s: encode: %w", b.key, err)
		}
		if len(body) <= b.l.cfg.MaxBytes || len(takes) == 1 {
			break
		}
		// Too big: keep the first half (their claims do not depend on
		// the rest), the others go back to the queue.
		k := len(takes) / 2
		b.queue = append(append([]*pending(nil), out.sent[k:]...), b.queue...)
		takes, entries, out.sent, out.claims = takes[:k], entries[:k], out.sent[:k], out.claims[:k]
	}
	hdr := append(append([]byte{'['}, bytes.Join(entries, []byte{','})...), ']')
	// Unsynced keyed takes wait for the next round: the CAS of this
	// message tells whether the state was current.
	b.queue = append(unsynced, b.queue...)
	out.unsynced = unsynced
	b.flight, b.landed = nuid.Next(), 0
	out.msg = &nats.Msg{Subject: b.l.TakeSubject(b.key), Data: body, Header: nats.Header{
		HeaderTakes:         {string(hdr)},
		runtime.HeaderMsgID: {b.flight},
		hdrExpectSeq:        {strconv.FormatUint(b.seq, 10)},
		hdrExpectSubj:       {b.l.keyFilter(b.key)},
	}}
	out.expect = b.seq
	return out, nil
}

// keyed finds a take of t's holder with t's retry key: recorded, or
// earlier in the message being assembled.
func keyed(hd *holding, takes []Taken, t Take) (Claim, bool) {
	if hd != nil {
		if c, ok := hd.keys[t.Key]; ok {
			return c, true
		}
	}
	for _, x := range takes {
		if x.Holder == t.Holder && x.Key == t.Key {
			return Claim{ID: x.Claim, Units: x.Units, Replayed: true}, true
		}
	}
	return Claim{}, false
}

// publish sends one ledger message and waits for its ack.
func (b *book) publish(msg *nats.Msg) (*jetstream.PubAck, error) {
	ctx, cancel := context.WithTimeout(b.l.ctx, 5*time.Second)
	defer cancel()
	return runtime.PublishDurable(ctx, b.l.js, msg)
}

// sendSet publishes a new total, at least the units sold.
func (b *book) sendSet(p *pending) {
	for round := 0; ; round++ {
		if round == maxRounds {
			p.err = fmt.Errorf("stock %s: gave up after %d lost races", b.key, maxRounds)
			close(p.done)
			return
		}
		b.mu.Lock()
		expect, sold := b.seq, b.sold
		b.mu.Unlock()
		if p.total < sold {
			p.lv, p.err = Levels{Total: p.total, Sold: sold}, fmt.Errorf("%w: %d sold, %d asked", ErrBelowSold, sold, p.total)
			close(p.done)
			return
		}
		msg := &nats.Msg{Subject: b.l.setSubject(b.key), Header: nats.Header{
			HeaderTotal:   {strconv.FormatInt(p.total, 10)},
			hdrExpectSeq:  {strconv.FormatUint(expect, 10)},
			hdrExpectSubj: {b.l.keyFilter(b.key)},
		}}
		ack, err := b.publish(msg)
		switch {
		case err == nil:
			b.mu.Lock()
			b.applyLocked(ack.Sequence, msg.Subject, msg.Header)
			p.lv = Levels{Total: p.total, Sold: b.sold}
			b.mu.Unlock()
			close(p.done)
			return
		case runtime.IsKVConflict(err):
			if werr := b.waitFor(b.l.ctx, conflictSeq(err, expect)); werr != nil {
				p.err = werr
				close(p.done)
				return
			}
		default:
			p.err = fmt.Errorf("stock %s: set: %w", b.key, err)
			close(p.done)
			return
		}
	}
}
