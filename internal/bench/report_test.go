package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{"us", FormatUS(950), "950µs"},
		{"ms", FormatUS(1250), "1.25ms"},
		{"s", FormatUS(2_500_000), "2.50s"},
		{"rate small", FormatRate(9999.4), "9999"},
		{"rate k", FormatRate(12_345), "12.3k"},
		{"rate M", FormatRate(1_250_000), "1.25M"},
		{"ratio", FormatRatio(0.8249), "0.82x"},
		{"ratio none", FormatRatio(math.NaN()), "-"},
		{"ratio inf", FormatRatio(math.Inf(1)), "-"},
		{"kinds by count", FormatKinds(map[string]int64{"timeout": 1, "http_503": 3, "conn": 1}), "http_503: 3, conn: 1, timeout: 1"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestTargetEvaluate(t *testing.T) {
	results := map[string]*Result{
		LabelBaselineNATSEcho: {Label: LabelBaselineNATSEcho, Ops: 1, Throughput: 10_000},
		LabelBaselineJS:       {Label: LabelBaselineJS, Ops: 1, Throughput: 50_000},
		LabelEcho:             {Label: LabelEcho, Ops: 1, Throughput: 8_000},
		LabelOrdersHTTP:       {Label: LabelOrdersHTTP, Ops: 1, Throughput: 4_999},
		LabelOrdersHTTPOpen:   {Label: LabelOrdersHTTPOpen, Ops: 1, Latency: Latency{P99: 4_000}},
		LabelOrdersNATS: {Label: LabelOrdersNATS, Ops: 1, Throughput: 40_000,
			Verify: &Verification{Passed: true, PersistedRate: 19_000}},
		LabelSignIn: {Label: LabelSignIn, Ops: 1, Throughput: 5_000},
	}
	tests := []struct {
		target      Target
		wantVerdict string
		wantRatio   float64
	}{
		{Target{Label: LabelEcho, Metric: "throughput", Base: LabelBaselineNATSEcho, Min: 0.8}, Pass, 0.8},
		{Target{Label: LabelOrdersHTTP, Metric: "throughput", Base: LabelBaselineNATSEcho, Min: 0.5}, Miss, 0.4999},
		{Target{Label: LabelOrdersHTTPOpen, Metric: "p99", Max: 5000}, Pass, math.NaN()},
		{Target{Label: LabelOrdersHTTPOpen, Metric: "p99", Max: 3000}, Miss, math.NaN()},
		{Target{Label: LabelOrdersNATS, Metric: "throughput", Base: LabelBaselineJS, Min: 0.7}, Pass, 0.8},
		{Target{Label: LabelOrdersNATS, Metric: "persisted", Base: LabelBaselineJS, Min: 0.4}, Miss, 0.38},
		{Target{Label: LabelSignIn, Metric: "throughput", Base: LabelBaselineNATSEcho}, Info, 0.5},
		{Target{Label: LabelEvents, Metric: "throughput", Base: LabelBaselineNATSEcho}, NA, math.NaN()},
		{Target{Label: LabelEcho, Metric: "throughput", Base: LabelBaselineEcho, Min: 0.8}, NA, math.NaN()},
	}
	for _, tt := range tests {
		ev := tt.target.Evaluate(results)
		if ev.Verdict != tt.wantVerdict {
			t.Errorf("%s %s vs %q: verdict %s, want %s", tt.target.Label, tt.target.Metric, tt.target.Base, ev.Verdict, tt.wantVerdict)
		}
		if math.IsNaN(tt.wantRatio) != math.IsNaN(ev.Ratio) || (!math.IsNaN(ev.Ratio) && math.Abs(ev.Ratio-tt.wantRatio) > 1e-9) {
			t.Errorf("%s %s: ratio %g, want %g", tt.target.Label, tt.target.Metric, ev.Ratio, tt.wantRatio)
		}
	}
}

// TestBaselineMeasuredTwice: a baseline run again later in the bench
// (label.2) counts as the mean of its runs; a run without throughput and a
// label that merely starts the same way do not count.
func TestBaselineMeasuredTwice(t *testing.T) {
	results := map[string]*Result{
		LabelBaselineJS:        {Label: LabelBaselineJS, Ops: 1, Throughput: 60_000},
		LabelBaselineJS + ".2": {Label: LabelBaselineJS + ".2", Ops: 1, Throughput: 40_000},
		LabelBaselineJS + ".3": {Label: LabelBaselineJS + ".3"}, // failed: no throughput
		LabelBaselineJS + "x":  {Label: LabelBaselineJS + "x", Ops: 1, Throughput: 1},
		LabelOrdersNATS:        {Label: LabelOrdersNATS, Ops: 1, Throughput: 35_000},
	}
	ev := Target{Label: LabelOrdersNATS, Metric: "throughput", Base: LabelBaselineJS, Min: 0.7}.Evaluate(results)
	if ev.BaseValue != 50_000 || ev.Ratio != 0.7 || ev.Verdict != Pass || len(ev.BaseRuns) != 2 {
		t.Errorf("base %g (runs %v), ratio %g, verdict %s; want the mean 50000 of 2 runs, 0.7, PASS", ev.BaseValue, ev.BaseRuns, ev.Ratio, ev.Verdict)
	}
	if got := formatBase(ev); got != "baseline-js 50.0k/s (mean of 60.0k, 40.0k)" {
		t.Errorf("formatBase = %q", got)
	}
}

func TestReportMarkdown(t *testing.T) {
	dir := t.TempDir()
	write := func(r *Result) string {
		path := filepath.Join(dir, r.Label+".json")
		var b bytes.Buffer
		if err := r.WriteJSON(&b); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	files := []string{
		write(&Result{Label: LabelBaselineNATSEcho, Scenario: "echo", Mode: "closed", Concurrency: 64, Ops: 100_000, Throughput: 20_000}),
		write(&Result{Label: LabelEcho, Scenario: "echo", Mode: "closed", Concurrency: 64, Ops: 90_000, Throughput: 17_000,
			Latency: Latency{P50: 900, P99: 4200}, Start: time.UnixMilli(1000), End: time.UnixMilli(3000)}),
		write(&Result{Label: LabelOrdersNATS, Scenario: "orders-nats", Mode: "closed", Concurrency: 256, Ops: 9, Throughput: 9,
			Errors: 2, ErrorKinds: map[string]int64{"timeout": 2},
			Verify: &Verification{Passed: false, Acked: 9, Lost: 1}}),
	}
	samples := filepath.Join(dir, "rss")
	if err := os.WriteFile(samples, []byte("500 1000\n2000 300000\n4000 400000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := BuildReport(ReportOptions{Results: files, Commit: "abc123", RSSSamples: samples})
	if err != nil {
		t.Fatal(err)
	}
	if rep.PeakRSSKiB != 400000 || rep.RSSSamples != 3 || len(rep.Results) != 3 {
		t.Fatalf("report %+v", rep)
	}
	rep.Date = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	if err := rep.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"2025-06-01 12:00 UTC",
		"| surge | abc123 |",
		"| echo through the gateway (surge up: a local call, no NATS hop) | 17.0k/s | baseline-nats-echo 20.0k/s | 0.85x | >= 0.8x | PASS |",
		"| orders-http accepted (202, durable) | - |",
		"| orders-nats verified in the store | 9 acked: 1 lost, 0 duplicated, 0 unexpected | | | 0 lost, 0 duplicated | MISS |",
		"| 391 MiB | | | < 512 MiB | PASS |",
		"| 293 MiB | - |\n", // echo's run: only the sample inside it
		"| echo | echo | closed, c=64 | 90000 | 17.0k/s | 0 | 900µs |",
		"2 (timeout: 2)",
		"FAILED: 9 acked, 1 lost, 0 dup",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

func TestResultJSONRoundTrip(t *testing.T) {
	r := &Result{Label: "x", Scenario: "echo", Ops: 3, Latency: Latency{P999: 12}, Verify: &Verification{Passed: true}}
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Label != "x" || back.Ops != 3 || back.Latency.P999 != 12 || back.Verify == nil || !back.Verify.Passed {
		t.Errorf("round trip: %+v", back)
	}
	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil || !strings.Contains(table.String(), "PASSED") {
		t.Errorf("table %q, %v", table.String(), err)
	}
}

func TestParseAccepted(t *testing.T) {
	tests := []struct {
		body      string
		wantID    string
		wantTotal int64
		wantOK    bool
	}{
		{`{"order_id":"01ABC","status":"accepted","total_cents":3998}`, "01ABC", 3998, true},
		{`{"total_cents": 12, "status": "accepted", "order_id": "X1"}`, "X1", 12, true},
		{`{"order_id":"01ABC","status":"rejected","total_cents":3998}`, "", 0, false},
		{`{"order_id":"","status":"accepted","total_cents":1}`, "", 0, false},
		{`{"error":{"code":"bad_request"}}`, "", 0, false},
		{`not json`, "", 0, false},
	}
	for _, tt := range tests {
		id, total, ok := parseAccepted([]byte(tt.body))
		if id != tt.wantID || total != tt.wantTotal || ok != tt.wantOK {
			t.Errorf("parseAccepted(%s) = %q %d %v, want %q %d %v", tt.body, id, total, ok, tt.wantID, tt.wantTotal, tt.wantOK)
		}
	}
}

func TestReadRSSSamples(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, text string
		want       []int64
		wantErr    bool
	}{
		{"bare KiB", "100\n200\n\n", []int64{100, 200}, false},
		{"timed", "1700000000000 100\n1700000000500 300\n", []int64{100, 300}, false},
		{"junk", "12 a\n", nil, true},
		{"too many fields", "1 2 3\n", nil, true},
	}
	for _, tt := range tests {
		path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
		if err := os.WriteFile(path, []byte(tt.text), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := readRSSSamples(path)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err %v", tt.name, err)
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("%s: %d samples, want %d", tt.name, len(got), len(tt.want))
			continue
		}
		for i := range got {
			if got[i].kib != tt.want[i] {
				t.Errorf("%s: sample %d = %d, want %d", tt.name, i, got[i].kib, tt.want[i])
			}
		}
	}
}

// TestEvaluateMeanOfRuns: a figure measured twice (label, label.2) is the
// mean of its runs, as a repeated baseline is.
func TestEvaluateMeanOfRuns(t *testing.T) {
	byLabel := map[string]*Result{
		"a": {Label: "a", Ops: 1, Throughput: 100}, "a.2": {Label: "a.2", Ops: 1, Throughput: 200},
		"a-other": {Label: "a-other", Ops: 1, Throughput: 1000},
		"b":       {Label: "b", Ops: 1, Throughput: 150},
	}
	ev := Target{Name: "a vs b", Label: "a", Metric: "throughput", Base: "b", Min: 0.9}.Evaluate(byLabel)
	if ev.Value != 150 || len(ev.Runs) != 2 || ev.Ratio != 1 || ev.Verdict != Pass {
		t.Errorf("Evaluate = value %v runs %v ratio %v %s, want 150, two runs, 1, pass", ev.Value, ev.Runs, ev.Ratio, ev.Verdict)
	}
	if got := formatValue(ev); got != "150/s (mean of 100, 200)" {
		t.Errorf("formatValue = %q", got)
	}
}

func TestRSSPerOrderAndNotes(t *testing.T) {
	t0 := time.Now()
	rep := &Report{
		PeakRSSKiB: 100_000 + 1_000_000/1024*300, // 300 B per order above the first sample
		rss:        []rssSample{{at: t0, kib: 100_000}},
		Results: []*Result{
			{Label: LabelOrdersHTTP, Scenario: "orders-http", Verify: &Verification{Passed: true, Acked: 400_000}},
			{Label: LabelOrdersNATSBatch, Scenario: "orders-nats", Verify: &Verification{Passed: true, Acked: 600_000}},
			{Label: LabelPeer, Scenario: "orders-http", Verify: &Verification{Passed: true, Acked: 50_000}},
			{Label: LabelOrdersNATSVitess, Scenario: "orders-nats", Verify: &Verification{Passed: true, Acked: 300_000}},
			{Label: LabelGrowthEmpty, Scenario: "orders-nats", Verify: &Verification{Passed: true, Acked: 500_000}},
			{Label: "growth-fill.2", Scenario: "orders-nats", Verify: &Verification{Passed: true, Acked: 250_000}},
			{Label: "failed", Scenario: "orders-http", Verify: &Verification{Passed: false, Acked: 70_000}},
			{Label: LabelSignIn, Scenario: "signin"},
		},
		Notes: []string{"the peer was not run: no RabbitMQ here"},
	}
	per, orders, ok := rep.rssPerOrder()
	if !ok || orders != 1_000_000 || math.Abs(per-300) > 1 {
		t.Errorf("rssPerOrder = %.1f B over %d orders (%v), want 300 B over 1,000,000", per, orders, ok)
	}
	var b bytes.Buffer
	if err := rep.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"RSS per stored order over the whole bench: growth of the main surge up / 1000000 orders stored (no target: its other stores grow too) | 300 B | | | | info |",
		"## Notes\n\n- the peer was not run: no RabbitMQ here\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if _, _, ok := (&Report{}).rssPerOrder(); ok {
		t.Error("rssPerOrder without samples reported a figure")
	}
}

func TestTargetBaseMetric(t *testing.T) {
	byLabel := map[string]*Result{
		LabelPeer:             {Label: LabelPeer, Ops: 1, Throughput: 9000, Verify: &Verification{Passed: true, PersistedRate: 6000}},
		LabelPeer + ".2":      {Label: LabelPeer + ".2", Ops: 1, Throughput: 9000, Verify: &Verification{Passed: true, PersistedRate: 4000}},
		LabelOrdersNATSVitess: {Label: LabelOrdersNATSVitess, Ops: 1, Throughput: 30000, Verify: &Verification{Passed: true, PersistedRate: 5500}},
	}
	ev := Target{Label: LabelOrdersNATSVitess, Metric: "persisted", Base: LabelPeer, BaseMetric: "persisted", Min: 1.0}.Evaluate(byLabel)
	if ev.BaseValue != 5000 || math.Abs(ev.Ratio-1.1) > 1e-9 || ev.Verdict != Pass {
		t.Errorf("evaluate = base %.0f ratio %.3f %s, want the mean of the peer's persisted rates (5000), 1.1, PASS", ev.BaseValue, ev.Ratio, ev.Verdict)
	}
}

// TestStoreGrowth reads the store-growth checkpoints: the RSS slope is the
// least-squares fit over the points up to the first past 1M orders (a
// point beyond it, or after a failed verification, is not used), the
// growth-5m run is a ratio to growth-empty, and the growth runs' table
// rows show the growth surge up's RSS.
func TestStoreGrowth(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "growth")
	// 256 B per order up to 1M orders. The start lies 40 MiB below the
	// line (the one-time costs of the first run) and the point at 5M far
	// above it: using either would change the slope.
	kib := func(orders, noise int64) int64 { return (50_000_000 + orders*256 + noise) / 1024 }
	lines := fmt.Sprintf("start %d\ngrowth-warm %d\n%s %d\ngrowth-fill %d\ngrowth-fill.2 %d\ngrowth-fill.3 %d\n%s %d\nlater 9\n",
		kib(0, -40<<20), kib(100_000, 0), LabelGrowthEmpty, kib(500_000, 0), kib(750_000, 0), kib(1_000_000, 0),
		kib(5_000_000, 500<<20), LabelGrowthFull, kib(5_500_000, 0))
	if err := os.WriteFile(path, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	points, err := readGrowthRSS(path, "--growth-rss")
	if err != nil {
		t.Fatal(err)
	}
	verified := func(label string, acked int64, rate float64) *Result {
		return &Result{Label: label, Scenario: "orders-nats", Ops: 1, Throughput: 1,
			Verify: &Verification{Passed: true, Acked: acked, PersistedRate: rate}}
	}
	rep := &Report{growth: points, Results: []*Result{
		verified("growth-warm", 100_000, 1), verified(LabelGrowthEmpty, 400_000, 60_000), verified("growth-fill", 250_000, 1), verified("growth-fill.2", 250_000, 1),
		verified("growth-fill.3", 4_000_000, 1), verified(LabelGrowthFull, 500_000, 57_000),
		{Label: "later", Verify: &Verification{Passed: false, Acked: 1}},
	}}
	per, n, from, upTo, ok := rep.rssSlope()
	if !ok || n != 4 || from != 100_000 || upTo != 1_000_000 || math.Abs(per-256) > 0.01 {
		t.Errorf("rssSlope = %.3f B over %d points from %d to %d orders (%v), want 256 B over 4 points from 100,000 to 1,000,000", per, n, from, upTo, ok)
	}
	stored, at, ok := rep.growthBefore(LabelGrowthFull)
	if !ok || stored != 5_000_000 || at != kib(5_000_000, 500<<20) {
		t.Errorf("growthBefore = %d orders, %d KiB (%v), want 5,000,000 and %d", stored, at, ok, kib(5_000_000, 500<<20))
	}
	if _, _, ok := rep.growthBefore("later"); ok {
		t.Error("growthBefore counted a run whose verification failed")
	}
	var b bytes.Buffer
	if err := rep.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| persisted rate with 5M orders stored vs an empty store (orders-nats --batch 100, verified) | 57.0k/s | growth-empty 60.0k/s | 0.95x | >= 0.9x | PASS |",
		"RSS per stored order: slope of the store-growth surge up's RSS from 100000 (after its warm-up run) to 1000000 orders stored (4 points, least squares) | 256 B | | | <= 200 B | MISS |",
		// The 5M point, 500 MiB above the line, lifts the whole fill's slope.
		"| RSS per stored order over the whole fill: slope from 100000 to 5500000 orders stored (6 points, least squares; no target) | 307 B | | | | info |",
		fmt.Sprintf("| 500000 acked, all stored once; 57.0k/s end to end | %s | - |\n", formatMiB(kib(5_500_000, 0))),
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}

	for _, bad := range []string{"start\n", "start x\n", "start 0\n", "start 1 2\n"} {
		if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := readGrowthRSS(path, "--growth-rss"); err == nil {
			t.Errorf("readGrowthRSS(%q) took it", bad)
		}
	}
	if _, _, _, _, ok := (&Report{growth: points[1:], Results: rep.Results}).rssSlope(); ok {
		t.Error("rssSlope without a start point reported a figure")
	}
	// A growth-5m whose verification failed is a miss, whatever its rate;
	// its row shows no RSS without a checkpoint.
	byLabel := map[string]*Result{}
	for _, r := range rep.Results {
		byLabel[r.Label] = r
	}
	byLabel[LabelGrowthFull].Verify.Passed = false
	rep.growth = rep.growth[:len(rep.growth)-2] // no growth-5m (nor later) checkpoint
	for _, tg := range Targets {
		if tg.Label == LabelGrowthFull {
			if ev := tg.Evaluate(byLabel); ev.Verdict != Miss {
				t.Errorf("growth-5m with a failed verification: %s, want MISS", ev.Verdict)
			}
		}
	}
	if got := rep.rssOf(byLabel[LabelGrowthFull]); got != 0 {
		t.Errorf("rssOf(growth-5m) without a checkpoint = %d KiB, want none", got)
	}
}

// TestStoreGrowthAtRest reads the checkpoints at rest beside the ones
// right after each run: the RSS slope target and the RSS before growth-5m
// come from those at rest, the slope right after each run is shown
// without a target, and the table rows keep the RSS right after the run.
func TestStoreGrowthAtRest(t *testing.T) {
	dir := t.TempDir()
	// Right after each run: 256 B per order; at rest: 64 B per order,
	// 100 MiB lower (the runs' caches and garbage gone).
	kib := func(orders, perOrder, base int64) int64 { return (base + orders*perOrder) / 1024 }
	write := func(name string, perOrder, base int64) string {
		var lines strings.Builder
		fmt.Fprintf(&lines, "start %d\n", kib(0, perOrder, base))
		for _, p := range []struct {
			label  string
			orders int64
		}{{"growth-warm", 100_000}, {LabelGrowthEmpty, 500_000}, {"growth-fill", 750_000}, {"growth-fill.2", 1_000_000}, {LabelGrowthFull, 1_500_000}} {
			fmt.Fprintf(&lines, "%s %d\n", p.label, kib(p.orders, perOrder, base))
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(lines.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	after, rest := write("after", 256, 150<<20), write("rest", 64, 50<<20)
	for i, res := range []string{"a", "b", "c", "d", "e"} {
		p := filepath.Join(dir, res+".json")
		label := []string{"growth-warm", LabelGrowthEmpty, "growth-fill", "growth-fill.2", LabelGrowthFull}[i]
		acked := []int64{100_000, 400_000, 250_000, 250_000, 500_000}[i]
		r := Result{Label: label, Scenario: "orders-nats", Ops: 1, Throughput: 1, Seconds: 1,
			Verify: &Verification{Passed: true, Acked: acked, PersistedRate: 50_000}}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := BuildReport(ReportOptions{Results: []string{filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json"),
		filepath.Join(dir, "c.json"), filepath.Join(dir, "d.json"), filepath.Join(dir, "e.json")},
		GrowthRSS: after, GrowthRSSRest: rest})
	if err != nil {
		t.Fatal(err)
	}
	per, n, _, upTo, ok := rep.rssSlope()
	if !ok || n != 4 || upTo != 1_000_000 || math.Abs(per-64) > 0.01 {
		t.Errorf("rssSlope = %.3f B over %d points to %d orders (%v), want 64 B (at rest) over 4 points to 1,000,000", per, n, upTo, ok)
	}
	var b bytes.Buffer
	if err := rep.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| RSS per stored order: slope of the store-growth surge up's RSS at rest (the process idle, then 11 s, then a GC) from 100000 (after its warm-up run) to 1000000 orders stored (4 points, least squares) | 64 B | | | <= 200 B | PASS |",
		"| RSS per stored order right after each run (the run's stream block caches and the GC's garbage included; no target): slope from 100000 to 1000000 orders stored (4 points, least squares) | 256 B | | | | info |",
		fmt.Sprintf("| store-growth surge up before growth-5m: orders stored, RSS at rest (the process idle, then 11 s, then a GC) (no target) | 1000000 | | | | %s (116 B per order) |", formatMiB(kib(1_000_000, 64, 50<<20))),
		fmt.Sprintf("| 500000 acked, all stored once; 50.0k/s end to end | %s |", formatMiB(kib(1_500_000, 256, 150<<20))),
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
	// A point without a reading at rest ends the points at rest: the
	// later ones keep their orders stored (the slope to it is over the
	// warm-up and empty runs' points alone, too few), and without a start
	// at rest the points right after each run are used.
	var kept []growthPoint
	for _, p := range rep.growthRest {
		if p.label != "growth-fill" {
			kept = append(kept, p)
		}
	}
	gap := &Report{growth: rep.growth, growthRest: kept, Results: rep.Results}
	if ps := gap.restPoints(); len(ps) != 3 || ps[2].label != LabelGrowthEmpty {
		t.Errorf("restPoints with growth-fill missing at rest = %v, want start, growth-warm, growth-empty", ps)
	}
	if _, _, _, _, ok := gap.rssSlope(); ok {
		t.Error("rssSlope over 2 points at rest reported a figure")
	}
	noStart := &Report{growth: rep.growth, growthRest: rep.growthRest[1:], Results: rep.Results}
	if per, _, _, _, ok := noStart.rssSlope(); !ok || math.Abs(per-256) > 0.01 {
		t.Errorf("rssSlope without a start at rest = %.3f B (%v), want 256 B, right after each run", per, ok)
	}
	if _, err := BuildReport(ReportOptions{GrowthRSSRest: filepath.Join(dir, "missing")}); err == nil || !strings.Contains(err.Error(), "--growth-rss-rest") {
		t.Errorf("a missing --growth-rss-rest file: %v, want an error naming the flag", err)
	}
}

// TestCPUPerAcked reads the CPU file and shows each verified run's CPU
// time per acknowledged operation; a run without a passed verification,
// or without a CPU figure, shows none.
func TestCPUPerAcked(t *testing.T) {
	rep := &Report{Results: []*Result{
		{Label: LabelOrdersNATSBatch, Scenario: "orders-nats", TargetCPU: 28.8, Verify: &Verification{Passed: true, Acked: 1_000_000}},
		{Label: "failed", Scenario: "orders-http", TargetCPU: 3, Verify: &Verification{Passed: false, Acked: 70_000}},
		{Label: "echo", Scenario: "echo", TargetCPU: 10},
		{Label: LabelOrdersHTTP, Scenario: "orders-http", Verify: &Verification{Passed: true, Acked: 1000}},
	}}
	var b bytes.Buffer
	if err := rep.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(b.String(), "\n") {
		if f := strings.Split(line, " | "); len(f) == 14 {
			rows[strings.TrimPrefix(f[0], "| ")] = strings.TrimSuffix(f[13], " |")
		}
	}
	for label, want := range map[string]string{LabelOrdersNATSBatch: "28.8µs", "failed": "-", "echo": "-", LabelOrdersHTTP: "-"} {
		if got := rows[label]; got != want {
			t.Errorf("CPU per acked of %s = %q, want %q", label, got, want)
		}
	}
}

// TestOwnRSS: the Vitess run's row shows the peak RSS of its own surge
// up, read from the file, not the main surge up's samples during it; with
// no reading it shows none.
func TestOwnRSS(t *testing.T) {
	t0 := time.Now()
	path := filepath.Join(t.TempDir(), "own-rss")
	if err := os.WriteFile(path, []byte(LabelOrdersNATSVitess+" 204800\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	main := []string{fmt.Sprintf("%d 1048576", t0.Add(time.Second).UnixMilli())}
	samples := filepath.Join(t.TempDir(), "rss")
	if err := os.WriteFile(samples, []byte(strings.Join(main, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vt := &Result{Label: LabelOrdersNATSVitess, Scenario: "orders-nats", Start: t0, End: t0.Add(2 * time.Second)}
	rssOf := func(o ReportOptions) int64 {
		o.RSSSamples = samples
		rep, err := BuildReport(o)
		if err != nil {
			t.Fatal(err)
		}
		return rep.rssOf(vt)
	}
	if got := rssOf(ReportOptions{OwnRSS: path}); got != 204800 {
		t.Errorf("Vitess run RSS = %d KiB, want its own surge up's 204800", got)
	}
	if got := rssOf(ReportOptions{}); got != 0 {
		t.Errorf("Vitess run RSS without its own reading = %d KiB, want none (the main surge up's samples are not its)", got)
	}
	if err := os.WriteFile(path, []byte(LabelOrdersNATSVitess+" -1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := BuildReport(ReportOptions{OwnRSS: path}); err == nil {
		t.Error("a negative KiB figure was accepted")
	}
}
