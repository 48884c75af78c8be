package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/surgefn/surge/internal/natsauth"
)

// JSConfig configures a JetStream publishing scenario.
type JSConfig struct {
	// URL is the NATS server.
	URL string
	// Auth authenticates to it (--nats-creds, ...).
	Auth natsauth.Client
	// Connections is the number of NATS connections workers share
	// (round robin); 0 means 1.
	Connections int
	// InFlight bounds the unacknowledged publishes per connection
	// (jetstream.WithPublishAsyncMaxPending); 0 means the worker count.
	InFlight int
	// Timeout bounds the wait for one ack.
	Timeout time.Duration
	// Subject is where orders are published.
	Subject string
	// RawStream, when set, is a file-backed stream on Subject that the
	// scenario creates (replacing one of that name) and deletes afterwards:
	// the js-raw baseline. When empty, a stream must already capture
	// Subject (ORDERS for orders.submit).
	RawStream string
	// Batch is how many orders one orders-nats message carries, as a JSON
	// array (API.md section 4, batched intake); 0 or 1 publishes one order
	// per message. The rate is then reported in orders as well.
	Batch int
}

func (c *JSConfig) validate() error {
	switch {
	case c.URL == "":
		return errors.New("--nats URL is required")
	case c.Connections < 0:
		return fmt.Errorf("--connections must not be negative, got %d", c.Connections)
	case c.InFlight < 0:
		return fmt.Errorf("--inflight must not be negative, got %d", c.InFlight)
	case c.Timeout <= 0:
		return fmt.Errorf("--timeout must be positive, got %s", c.Timeout)
	case c.Subject == "" || strings.ContainsAny(c.Subject, "*> \t"):
		return fmt.Errorf("--subject %q: want a literal subject", c.Subject)
	case c.Batch < 0 || c.Batch > maxBatch:
		return fmt.Errorf("--batch must be 0 to %d orders per message, got %d", maxBatch, c.Batch)
	}
	return nil
}

// maxBatch is the most orders one orders.submit message may carry.
const maxBatch = 1000

// JSPublish is the orders-nats scenario (and, with RawStream, js-raw): a
// JetStream async publish of an order with a client-chosen ULID order_id,
// also its Nats-Msg-Id, waiting for the ack. Latency is publish to ack;
// the in-flight publishes are bounded by the workers and InFlight.
type JSPublish struct {
	name   string
	cfg    JSConfig
	orders *OrdersConfig // nil for js-raw
	base   int64         // the run's users are base..base+users-1
	users  int64
	items  int
	conns  []*nats.Conn
	js     []jetstream.JetStream
	ws     []jsWorker
}

type jsWorker struct {
	gen     orderGen
	ent     *rand.ChaCha8 // ULID entropy
	body    []byte
	pending []ackedOrder // the orders of the message in flight
	acked   []ackedOrder
}

// NewOrdersNATS returns the orders-nats scenario: publishes to
// orders.submit, verified in the store through the gateway like orders-http.
// With cfg.Batch > 1 each message is an array of that many orders.
func NewOrdersNATS(cfg JSConfig, orders OrdersConfig) (Scenario, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := orders.validate(); err != nil {
		return nil, err
	}
	s := &JSPublish{name: "orders-nats", cfg: cfg, orders: &orders, base: userBase(),
		users: int64(orders.Users), items: orders.PayloadItems}
	if cfg.Batch > 1 {
		return batchPublish{s}, nil
	}
	return s, nil
}

// batchPublish is orders-nats with several orders per message: a Counter
// of orders.
type batchPublish struct{ *JSPublish }

// Unit implements Counter.
func (b batchPublish) Unit() (string, int) { return "orders", b.cfg.Batch }

// NewJSRaw returns the js-raw baseline: the same publishes to a stream of
// its own with no consumer. Verification checks the stream holds exactly
// one message per ack.
func NewJSRaw(cfg JSConfig, payloadItems int) (*JSPublish, error) {
	if cfg.RawStream == "" {
		return nil, errors.New("--stream is required")
	}
	if cfg.Batch > 1 {
		return nil, errors.New("--batch is for orders-nats: js-raw publishes one payload per message")
	}
	if payloadItems < 1 || payloadItems > 100 {
		return nil, fmt.Errorf("--payload-items must be 1 to 100, got %d", payloadItems)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &JSPublish{name: "js-raw", cfg: cfg, base: userBase(), users: 1000, items: payloadItems}, nil
}

// Name implements Scenario.
func (s *JSPublish) Name() string { return s.name }

// Setup connects, prepares the stream and the workers.
func (s *JSPublish) Setup(ctx context.Context, workers int) error {
	n := max(1, s.cfg.Connections)
	inflight := s.cfg.InFlight
	if inflight == 0 {
		inflight = workers
	}
	for i := 0; i < n; i++ {
		nc, err := s.cfg.Auth.Connect(s.cfg.URL, nats.Name("surge-bench"))
		if err != nil {
			return err
		}
		s.conns = append(s.conns, nc)
		js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(inflight),
			jetstream.WithPublishAsyncTimeout(s.cfg.Timeout))
		if err != nil {
			return err
		}
		s.js = append(s.js, js)
	}
	if err := s.prepareStream(ctx); err != nil {
		return err
	}
	s.ws = make([]jsWorker, workers)
	for i := range s.ws {
		s.ws[i].gen = orderGen{rnd: newRand(), base: s.base, users: s.users, items: s.items}
		var seed [32]byte
		for j := 0; j < len(seed); j += 8 {
			binary.LittleEndian.PutUint64(seed[j:], rand.Uint64())
		}
		s.ws[i].ent = rand.NewChaCha8(seed)
	}
	return nil
}

func (s *JSPublish) prepareStream(ctx context.Context) error {
	js := s.js[0]
	if s.cfg.RawStream == "" {
		if _, err := js.StreamNameBySubject(ctx, s.cfg.Subject); err != nil {
			return fmt.Errorf("no stream captures %s (is the orders function deployed?): %w", s.cfg.Subject, err)
		}
		return nil
	}
	if err := js.DeleteStream(ctx, s.cfg.RawStream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("delete stream %s: %w", s.cfg.RawStream, err)
	}
	// The same settings as the ORDERS stream surge creates: file storage,
	// limits retention, a 2-minute de-duplication window.
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:       s.cfg.RawStream,
		Subjects:   []string{s.cfg.Subject},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		MaxAge:     time.Hour,
		Duplicates: 2 * time.Minute,
	})
	if err != nil {
		return fmt.Errorf("create stream %s: %w", s.cfg.RawStream, err)
	}
	return nil
}

// Do publishes one message (one order, or an array of cfg.Batch orders
// under a batch id of its own) and waits for its ack.
func (s *JSPublish) Do(ctx context.Context, w int) string {
	ws := &s.ws[w]
	id := ulid.MustNew(ulid.Now(), ws.ent).String()
	ws.pending = ws.pending[:0]
	if s.cfg.Batch > 1 {
		ws.body = append(ws.body[:0], '[')
		for i := range s.cfg.Batch {
			if i > 0 {
				ws.body = append(ws.body, ',')
			}
			oid := ulid.MustNew(ulid.Now(), ws.ent).String()
			var o ackedOrder
			ws.body, o.user, o.total = ws.gen.appendOrder(ws.body, oid)
			o.id = oid
			ws.pending = append(ws.pending, o)
		}
		ws.body = append(ws.body, ']')
	} else {
		o := ackedOrder{id: id}
		ws.body, o.user, o.total = ws.gen.appendOrder(ws.body[:0], id)
		ws.pending = append(ws.pending, o)
	}
	msg := &nats.Msg{Subject: s.cfg.Subject, Data: ws.body, Header: nats.Header{jetstream.MsgIDHeader: []string{id}}}
	f, err := s.js[w%len(s.js)].PublishMsgAsync(msg)
	if err != nil {
		return natsKind(err)
	}
	select {
	case ack := <-f.Ok():
		if ack.Duplicate {
			return "js_duplicate"
		}
		ws.acked = append(ws.acked, ws.pending...)
		return ""
	case err := <-f.Err():
		return natsKind(err)
	case <-ctx.Done():
		// The library may still hold (and retry) msg: give the worker a
		// fresh buffer rather than overwrite it.
		ws.body = nil
		return KindTimeout
	}
}

// natsKind classifies a NATS or JetStream error.
func natsKind(err error) string {
	var api *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrAsyncPublishTimeout), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, context.DeadlineExceeded):
		return KindTimeout
	case errors.Is(err, jetstream.ErrTooManyStalledMsgs):
		return KindStalled
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse):
		return KindNoResponders
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, nats.ErrConnectionDraining):
		return KindConn
	case errors.As(err, &api):
		return fmt.Sprintf("js_%d", api.ErrorCode)
	}
	return KindOther
}

// Close deletes the raw stream and disconnects.
func (s *JSPublish) Close() error {
	var err error
	if s.cfg.RawStream != "" && len(s.js) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if derr := s.js[0].DeleteStream(ctx, s.cfg.RawStream); derr != nil && !errors.Is(derr, jetstream.ErrStreamNotFound) {
			err = fmt.Errorf("delete stream %s: %w", s.cfg.RawStream, derr)
		}
	}
	for _, nc := range s.conns {
		nc.Close()
	}
	return err
}

func (s *JSPublish) acked() []ackedOrder {
	var all []ackedOrder
	for i := range s.ws {
		all = append(all, s.ws[i].acked...)
	}
	return all
}

// Verify implements Verifier: orders-nats like orders-http (through the
// store); js-raw by counting the stream's messages.
func (s *JSPublish) Verify(ctx context.Context, r *Result) (*Verification, error) {
	acked := s.acked()
	if s.orders != nil {
		if s.orders.Drain == nil {
			return nil, nil
		}
		c, err := newHTTPClient(s.orders.HTTP, 16)
		if err != nil {
			return nil, err
		}
		defer c.close()
		return verifyOrders(ctx, *s.orders, c, s.base, acked, r)
	}
	st, err := s.js[0].Stream(ctx, s.cfg.RawStream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", s.cfg.RawStream, err)
	}
	msgs := int64(st.CachedInfo().State.Msgs)
	v := &Verification{Acked: int64(len(acked)), Stored: msgs, Lost: max(0, int64(len(acked))-msgs),
		Unexpected: max(0, msgs-int64(len(acked)))}
	v.Passed = v.Lost == 0 && v.Unexpected <= r.Errors
	if !v.Passed {
		v.Problems = []string{fmt.Sprintf("stream %s holds %d messages for %d acks", s.cfg.RawStream, msgs, len(acked))}
	}
	return v, nil
}
