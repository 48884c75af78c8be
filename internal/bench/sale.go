package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
)

// SaleConfig configures the sale scenario.
type SaleConfig struct {
	// HTTP is the gateway.
	HTTP HTTPConfig
	// Stock is the sale's stock: far below the run's demand.
	Stock int64
	// AdminToken creates the sale (PUT /v1/sales/{id} is auth: admin).
	AdminToken string
	// Drain is the consumer that persists orders; nil skips verification.
	Drain *DrainConfig
}

// Sale is the sale scenario: one flash sale of one hot SKU, every
// operation a new buyer's POST /v1/sales/{id}/orders. A 202 or a 409
// sold_out is a success (the buyer got a definite answer); verification
// checks that exactly Stock units were sold, each to one 202, and that
// every accepted order is stored.
type Sale struct {
	cfg    SaleConfig
	c      *httpClient
	u      *url.URL
	id     string
	base   int64
	buyers atomic.Int64
	ws     []saleWorker
}

type saleWorker struct {
	body  []byte
	resp  bytes.Buffer
	acked []ackedOrder
}

// NewSale returns the sale scenario.
func NewSale(cfg SaleConfig) (*Sale, error) {
	if cfg.Stock < 1 {
		return nil, fmt.Errorf("--stock must be at least 1, got %d", cfg.Stock)
	}
	if cfg.AdminToken == "" {
		return nil, fmt.Errorf("no admin token: set SURGE_ADMIN_TOKEN or --admin-token")
	}
	if err := cfg.HTTP.validate(); err != nil {
		return nil, err
	}
	return &Sale{cfg: cfg, base: userBase(), id: "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)}, nil
}

// Name implements Scenario.
func (*Sale) Name() string { return "sale" }

// SaleID is the sale the run created.
func (s *Sale) SaleID() string { return s.id }

// Setup implements Scenario: it creates the sale, open for a day, one
// unit per buyer.
func (s *Sale) Setup(ctx context.Context, workers int) (err error) {
	if s.c, err = newHTTPClient(s.cfg.HTTP, workers); err != nil {
		return err
	}
	now := time.Now().UTC()
	body := fmt.Appendf(nil, `{"sku":"HOT-1","stock":%d,"price_cents":999,"currency":"CNY","per_user":1,"starts_at":%q,"ends_at":%q}`,
		s.cfg.Stock, now.Add(-time.Minute).Format(time.RFC3339), now.Add(24*time.Hour).Format(time.RFC3339))
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.c.base+"/v1/sales/"+s.id, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.cfg.AdminToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := s.c.c.Do(req)
	if err != nil {
		return fmt.Errorf("create sale: %w", err)
	}
	var b bytes.Buffer
	_, _ = b.ReadFrom(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("create sale: %d %s", res.StatusCode, bytes.TrimSpace(b.Bytes()))
	}
	s.ws = make([]saleWorker, workers)
	s.u, err = s.c.endpoint("/v1/sales/" + s.id + "/orders")
	return err
}

// Do implements Scenario.
func (s *Sale) Do(ctx context.Context, w int) string {
	ws := &s.ws[w]
	user := s.base + s.buyers.Add(1)
	ws.body = append(strconv.AppendInt(append(ws.body[:0], `{"user_id":`...), user, 10), `,"qty":1}`...)
	kind := s.c.sendAs(ctx, user, http.MethodPost, s.u, ws.body, http.StatusAccepted, &ws.resp)
	if kind == HTTPKind(http.StatusConflict) && bytes.Contains(ws.resp.Bytes(), []byte(`"sold_out"`)) {
		// An answer, but no sale: the rate counts accepted orders only, so
		// the fast 409s after the sell-out do not inflate it.
		return KindSoldOut
	}
	if kind != "" {
		return kind
	}
	id, total, ok := parseAccepted(ws.resp.Bytes())
	if !ok || total != 999 {
		return KindBadResponse
	}
	ws.acked = append(ws.acked, ackedOrder{id: id, user: user, total: total})
	return ""
}

// Close implements Scenario.
func (s *Sale) Close() error {
	if s.c != nil {
		s.c.close()
	}
	return nil
}

// Verify implements Verifier: exactly Stock 202s, the sale reports Stock
// sold, and every accepted order is stored once, as accepted.
func (s *Sale) Verify(ctx context.Context, r *Result) (*Verification, error) {
	if s.cfg.Drain == nil {
		return nil, nil
	}
	var acked []ackedOrder
	for i := range s.ws {
		acked = append(acked, s.ws[i].acked...)
	}
	v := &Verification{Acked: int64(len(acked))}
	drained, err := s.cfg.Drain.wait(ctx, r)
	if err != nil {
		return nil, err
	}
	v.PersistedRate = float64(len(acked)) / drained.Sub(r.Start).Seconds()
	// Never more accepted than the stock; exactly the stock once any buyer
	// was told sold_out.
	soldOut := r.ErrorKinds[KindSoldOut] > 0
	if n := int64(len(acked)); n > s.cfg.Stock || soldOut && n != s.cfg.Stock {
		v.Problems = append(v.Problems, fmt.Sprintf("%d orders accepted (sold out: %v), want at most, and once sold out exactly, the stock %d",
			n, soldOut, s.cfg.Stock))
	}
	b, err := s.c.getJSON(ctx, "/v1/sales/"+s.id, http.StatusOK)
	if err != nil {
		return nil, err
	}
	if want := fmt.Sprintf(`"sold":%d,`, len(acked)); !bytes.Contains(b, []byte(want)) {
		v.Problems = append(v.Problems, fmt.Sprintf("sale reports %s, want %s (the accepted orders)", b, want))
	}
	seen := map[string]bool{}
	for _, a := range acked {
		if seen[a.id] {
			v.Duplicated++
			continue
		}
		seen[a.id] = true
		got, err := s.c.getJSON(ctx, "/v1/orders/"+a.id, http.StatusOK)
		switch {
		case err != nil:
			v.Lost++
			v.Problems = append(v.Problems, err.Error())
		case !bytes.Contains(got, []byte(`"user_id":`+strconv.FormatInt(a.user, 10)+`,`)):
			v.SampleMismatches++
		default:
			v.Stored++
		}
	}
	v.Sampled = len(seen)
	if len(v.Problems) > 8 {
		v.Problems = append(v.Problems[:8], fmt.Sprintf("... and %d more problems", len(v.Problems)-8))
	}
	v.Passed = len(v.Problems) == 0 && v.Lost == 0 && v.Duplicated == 0 && v.SampleMismatches == 0
	return v, nil
}

// KindSoldOut is a buyer told the sale is sold out (409 sold_out).
const KindSoldOut = "sold_out"

// LabelSale is the `make bench` run of the sale scenario.
const LabelSale = "sale"

// The sale's targets follow the others in the report (appended here, so
// a scenario's targets live with it).
func init() {
	Targets = append(Targets,
		Target{Name: "sale orders accepted (202) per second for one hot SKU vs orders-http",
			Label: LabelSale, Metric: "throughput", Base: LabelOrdersHTTP, Min: 0.8},
		Target{Name: "sale p99 (no target)", Label: LabelSale, Metric: "p99"},
	)
}
