package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// EventsConfig configures the events scenario.
type EventsConfig struct {
	// HTTP is the target.
	HTTP HTTPConfig
	// Batch is the number of events per request (1..1000).
	Batch int
	// Items is the number of distinct item IDs of the run.
	Items int
	// Drain is where verification waits for the EVENTS backlog (nil: no
	// verification beyond the 202s).
	Drain *DrainConfig
}

// eventTypes are the API's event types, in the order of counts below.
var eventTypes = [4]string{"view", "click", "cart", "buy"}

// bodiesPerWorker is how many distinct batches each worker cycles through.
const bodiesPerWorker = 8

// Events is the events scenario: POST /v1/events with Batch events per
// request, on Items item IDs unique to the run. Verification waits for the
// events-aggregate consumer to drain and checks that every item's stats
// add up to exactly the events acknowledged with 202.
type Events struct {
	cfg    EventsConfig
	c      *httpClient
	u      *url.URL
	prefix string
	ws     []eventsWorker
}

type eventsWorker struct {
	n      int
	bodies [bodiesPerWorker][]byte
	counts [bodiesPerWorker]map[string][4]int64 // per body: item -> counts by type
	acked  [bodiesPerWorker]int64
	want   []byte
	resp   bytes.Buffer
}

// NewEvents returns the events scenario.
func NewEvents(cfg EventsConfig) (*Events, error) {
	switch {
	case cfg.Batch < 1 || cfg.Batch > 1000:
		return nil, fmt.Errorf("--batch must be 1 to 1000, got %d", cfg.Batch)
	case cfg.Items < 1:
		return nil, fmt.Errorf("--items must be at least 1, got %d", cfg.Items)
	}
	if err := cfg.HTTP.validate(); err != nil {
		return nil, err
	}
	return &Events{cfg: cfg, prefix: "bench-" + strconv.FormatUint(newRand().Uint64()>>16, 36)}, nil
}

// Name implements Scenario.
func (*Events) Name() string { return "events" }

// Unit implements Counter.
func (e *Events) Unit() (string, int) { return "events", e.cfg.Batch }

func (e *Events) item(k int) string { return e.prefix + "-" + strconv.Itoa(k) }

// Setup builds each worker's batches.
func (e *Events) Setup(_ context.Context, workers int) (err error) {
	if e.c, err = newHTTPClient(e.cfg.HTTP, workers); err != nil {
		return err
	}
	if e.u, err = e.c.endpoint("/v1/events"); err != nil {
		return err
	}
	ts := time.Now().UTC().Format(time.RFC3339)
	base := userBase()
	e.ws = make([]eventsWorker, workers)
	for w := range e.ws {
		rnd := newRand()
		ws := &e.ws[w]
		ws.want = fmt.Appendf(nil, `{"accepted":%d}`, e.cfg.Batch)
		for b := range ws.bodies {
			counts := map[string][4]int64{}
			buf := []byte{'['}
			for i := 0; i < e.cfg.Batch; i++ {
				item, typ := e.item(rnd.IntN(e.cfg.Items)), rnd.IntN(len(eventTypes))
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = fmt.Appendf(buf, `{"user_id":%d,"type":%q,"item_id":%q,"ts":%q}`, base+rnd.Int64N(100_000), eventTypes[typ], item, ts)
				c := counts[item]
				c[typ]++
				counts[item] = c
			}
			ws.bodies[b], ws.counts[b] = append(buf, ']'), counts
		}
	}
	return nil
}

// Do implements Scenario.
func (e *Events) Do(ctx context.Context, w int) string {
	ws := &e.ws[w]
	b := ws.n % bodiesPerWorker
	ws.n++
	if kind := e.c.send(ctx, http.MethodPost, e.u, ws.bodies[b], http.StatusAccepted, &ws.resp); kind != "" {
		return kind
	}
	if !bytes.Equal(bytes.TrimSpace(ws.resp.Bytes()), ws.want) {
		return KindBadResponse
	}
	ws.acked[b]++
	return ""
}

// Close implements Scenario.
func (e *Events) Close() error {
	e.c.close()
	return nil
}

// expected sums what the acknowledged batches carried, per item.
func (e *Events) expected() (map[string][4]int64, int64) {
	want := map[string][4]int64{}
	var total int64
	for w := range e.ws {
		ws := &e.ws[w]
		for b, n := range ws.acked {
			for item, c := range ws.counts[b] {
				sum := want[item]
				for t := range sum {
					sum[t] += c[t] * n
					total += c[t] * n
				}
				want[item] = sum
			}
		}
	}
	return want, total
}

// Verify waits for the backlog and compares every item's stats.
func (e *Events) Verify(ctx context.Context, r *Result) (*Verification, error) {
	if e.cfg.Drain == nil {
		return nil, nil
	}
	want, total := e.expected()
	v := &Verification{Acked: total}
	intakeEnd := r.Start.Add(time.Duration((r.Warmup + r.Seconds) * float64(time.Second)))
	drained, err := e.cfg.Drain.wait(ctx, r)
	if err != nil {
		return nil, err
	}
	v.DrainSeconds = max(0, drained.Sub(intakeEnd).Seconds())
	v.PersistedRate = float64(total) / drained.Sub(r.Start).Seconds()
	// The stats are eventually consistent (docs/API.md: within 2 s); allow
	// for a loaded machine.
	deadline := time.Now().Add(10 * time.Second)
	for {
		stored, problems, err := e.compare(ctx, want)
		if err != nil {
			return nil, err
		}
		v.Stored, v.Problems = stored, problems
		if len(problems) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	v.Lost = max(0, total-v.Stored)
	v.Duplicated = max(0, v.Stored-total)
	v.Passed = len(v.Problems) == 0
	return v, nil
}

// compare reads every item's stats and lists the differences.
func (e *Events) compare(ctx context.Context, want map[string][4]int64) (int64, []string, error) {
	var stored int64
	var problems []string
	for k := 0; k < e.cfg.Items; k++ {
		item := e.item(k)
		b, err := e.c.getJSON(ctx, "/v1/items/"+item+"/stats", http.StatusOK)
		if err != nil {
			return 0, nil, err
		}
		var got struct{ View, Click, Cart, Buy int64 }
		if err := json.Unmarshal(b, &got); err != nil {
			return 0, nil, fmt.Errorf("item stats %s: %w", item, err)
		}
		have := [4]int64{got.View, got.Click, got.Cart, got.Buy}
		for _, n := range have {
			stored += n
		}
		if have != want[item] && len(problems) < 5 {
			problems = append(problems, fmt.Sprintf("item %s: stats %v, acknowledged %v (view, click, cart, buy)", item, have, want[item]))
		}
	}
	return stored, problems, nil
}
