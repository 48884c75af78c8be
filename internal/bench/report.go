package bench

import (
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The labels `make bench` gives its runs; the report looks results up by them.
const (
	LabelBaselineEcho     = "baseline-echo"      // (a) bare Echo
	LabelBaselineNATSEcho = "baseline-nats-echo" // (b) Echo -> NATS request -> responder
	LabelBaselineJS       = "baseline-js"        // (c) raw JetStream async publish
	LabelEcho             = "echo"
	// echo on a surge up with --no-local-calls: the gateway calls the
	// function through NATS, the path baseline (b) measures.
	LabelEchoNATS       = "echo-nats"
	LabelOrdersHTTP     = "orders-http"
	LabelOrdersHTTPOpen = "orders-http-open"
	LabelOrdersNATS     = "orders-nats"
	// orders-nats with 100 orders per message (batched intake).
	LabelOrdersNATSBatch = "orders-nats-batch"
	// orders-nats against a second surge up on --store vitess.
	LabelOrdersNATSVitess = "orders-nats-vitess"
	// The peer stack (../shared/peer: Echo -> RabbitMQ with confirms ->
	// batched MariaDB inserts) under the orders-http load, closed loop
	// and open loop at orders-http-open's rate.
	LabelPeer     = "peer"
	LabelPeerOpen = "peer-open"
	LabelSignIn   = "signin"
	LabelEvents   = "events"
	LabelEnvelope = "envelope"
	// A function of known capacity (echo with a delay) at a quarter of
	// it, then at three times it (scripts/bench-overload.yaml).
	LabelOverloadUnloaded = "overload-unloaded"
	LabelOverload         = "overload"
	// The same two runs against routes with auth: user (a JWT per user).
	LabelEchoAuth       = "echo-auth"
	LabelOrdersHTTPAuth = "orders-http-auth"
	// The store-growth runs, against a third surge up on an empty
	// embedded store: orders-nats --batch 100 measured on the empty
	// store, then (after growth-fill runs) with 5M orders stored.
	LabelGrowthEmpty = "growth-empty"
	LabelGrowthFull  = "growth-5m"
	growthPrefix     = "growth-" // every store-growth run, growth-fill ones included
)

// RSSLimitKiB is the memory target for `surge up` through the whole bench.
const RSSLimitKiB = 512 << 10

// Target is one goal of the issue: a figure of a run, either as a ratio to
// a baseline's throughput (Base set, ratio >= Min), as a ratio to the same
// figure of the baseline (Base and MaxRatio set, ratio <= MaxRatio) or
// absolute (value <= Max). Targets with none are informational.
type Target struct {
	Name   string  // what the report calls it
	Label  string  // the result it reads
	Metric string  // "throughput", "persisted", "p99", "error-p99" or "refused"
	Base   string  // the baseline result it is a ratio to ("" for absolute)
	Min    float64 // least ratio to pass (0 with a Base: informational)
	Max    float64 // largest absolute value to pass (µs for p99)
	// MaxRatio is the largest ratio of Metric to the Base's own Metric
	// that passes (a latency that may grow at most so much).
	MaxRatio float64
	// BaseMetric is the Base's figure the ratio is to (default its
	// throughput), e.g. "persisted" for one persisted rate against another.
	BaseMetric string
}

// Targets are the goals, in report order.
var Targets = []Target{
	{Name: "echo through the gateway (surge up: a local call, no NATS hop)", Label: LabelEcho, Metric: "throughput", Base: LabelBaselineNATSEcho, Min: 0.8},
	{Name: "echo through the gateway over NATS (--no-local-calls: the path of baseline (b); no target)", Label: LabelEchoNATS, Metric: "throughput", Base: LabelBaselineNATSEcho},
	{Name: "orders-http accepted (202, durable)", Label: LabelOrdersHTTP, Metric: "throughput", Base: LabelBaselineNATSEcho, Min: 0.8},
	{Name: "orders-http p99, open loop at half that rate", Label: LabelOrdersHTTPOpen, Metric: "p99", Max: 5000},
	{Name: "orders-http accepted vs the peer (Echo -> RabbitMQ -> MariaDB), side by side", Label: LabelOrdersHTTP, Metric: "throughput", Base: LabelPeer, Min: 2.0},
	{Name: "orders-http p99 vs the peer's, open loop at the same rate", Label: LabelOrdersHTTPOpen, Metric: "p99", Base: LabelPeerOpen, MaxRatio: 1.0},
	{Name: "the peer's persisted rate, verified by its count (no target)", Label: LabelPeer, Metric: "persisted", Base: LabelBaselineJS},
	{Name: "orders-nats intake (acked)", Label: LabelOrdersNATS, Metric: "throughput", Base: LabelBaselineJS, Min: 0.7},
	{Name: "orders-nats persisted end to end (verified)", Label: LabelOrdersNATS, Metric: "persisted", Base: LabelBaselineJS, Min: 0.6},
	{Name: "orders-nats persisted on --store vitess vs the peer's persisted rate", Label: LabelOrdersNATSVitess, Metric: "persisted", Base: LabelPeer, BaseMetric: "persisted", Min: 1.0},
	{Name: "orders-nats --batch 100 persisted end to end, orders/s (verified)", Label: LabelOrdersNATSBatch, Metric: "persisted", Base: LabelBaselineJS, Min: 1.5},
	{Name: "persisted rate with 5M orders stored vs an empty store (orders-nats --batch 100, verified)", Label: LabelGrowthFull, Metric: "persisted",
		Base: LabelGrowthEmpty, BaseMetric: "persisted", Min: 0.9},
	{Name: "orders-nats --batch 100 intake, orders/s (no target)", Label: LabelOrdersNATSBatch, Metric: "units", Base: LabelBaselineJS},
	{Name: "echo with auth: user vs without", Label: LabelEchoAuth, Metric: "throughput", Base: LabelEcho, Min: 0.9},
	{Name: "orders-http with auth: user vs without", Label: LabelOrdersHTTPAuth, Metric: "throughput", Base: LabelOrdersHTTP, Min: 0.9},
	{Name: "signin (no target)", Label: LabelSignIn, Metric: "throughput", Base: LabelBaselineNATSEcho},
	{Name: "events requests (no target)", Label: LabelEvents, Metric: "throughput", Base: LabelBaselineNATSEcho},
	{Name: "envelope grabs, verified (no target)", Label: LabelEnvelope, Metric: "throughput", Base: LabelBaselineNATSEcho},
	{Name: "baseline (b) vs bare Echo (a) (no target)", Label: LabelBaselineNATSEcho, Metric: "throughput", Base: LabelBaselineEcho},
	{Name: "overload: admitted p99 at 3x capacity vs unloaded p99", Label: LabelOverload, Metric: "p99", Base: LabelOverloadUnloaded, MaxRatio: 2},
	{Name: "overload: refusal p99 (503 overloaded, Retry-After)", Label: LabelOverload, Metric: "error-p99", Max: 50000},
	{Name: "overload: share refused at 3x capacity (no target; about 67% is the ideal)", Label: LabelOverload, Metric: "refused"},
}

// Verdicts of a target.
const (
	Pass = "PASS"
	Miss = "MISS"
	Info = "info"
	NA   = "n/a"
)

// Evaluation is a target applied to a set of results.
type Evaluation struct {
	Target
	Value     float64 // the figure
	BaseValue float64 // the baseline's throughput (0 for absolute targets)
	// BaseRuns are the throughputs of the baseline's runs, in label order,
	// when it ran more than once (BaseValue is their mean).
	BaseRuns []float64
	// Runs are the throughputs of the measured runs when the target's
	// label ran more than once (label, label.2, ...; Value is their mean).
	Runs    []float64
	Ratio   float64 // Value / BaseValue, NaN when there is none
	Verdict string  // Pass, Miss, Info or NA
}

// Evaluate applies t to the results (by label).
func (t Target) Evaluate(byLabel map[string]*Result) Evaluation {
	ev := Evaluation{Target: t, Verdict: NA, Ratio: math.NaN()}
	r, ok := byLabel[t.Label]
	if !ok {
		return ev
	}
	ev.Value = metric(r, t.Metric)
	if t.Metric == "" || t.Metric == "throughput" {
		// A figure measured more than once (alternating with its base, so
		// neither side always runs on the warmer or the fuller platform)
		// is the mean of its runs, as a repeated baseline is.
		if runs := baselineRuns(byLabel, t.Label, ""); len(runs) > 1 {
			ev.Value, ev.Runs = 0, runs
			for _, v := range runs {
				ev.Value += v / float64(len(runs))
			}
		}
	}
	if t.Base == "" {
		switch {
		case r.Ops == 0:
		case t.Max > 0 && ev.Value <= t.Max:
			ev.Verdict = Pass
		case t.Max > 0:
			ev.Verdict = Miss
		default:
			ev.Verdict = Info
		}
		return ev
	}
	if t.MaxRatio > 0 {
		b, ok := byLabel[t.Base]
		if !ok || r.Ops == 0 || b.Ops == 0 {
			return ev
		}
		ev.BaseValue = metric(b, t.Metric)
		ev.Ratio = ev.Value / ev.BaseValue
		ev.Verdict = Miss
		if ev.Ratio <= t.MaxRatio {
			ev.Verdict = Pass
		}
		return ev
	}
	runs := baselineRuns(byLabel, t.Base, t.BaseMetric)
	if len(runs) == 0 {
		return ev
	}
	for _, v := range runs {
		ev.BaseValue += v / float64(len(runs))
	}
	if len(runs) > 1 {
		ev.BaseRuns = runs
	}
	ev.Ratio = ev.Value / ev.BaseValue
	switch {
	case t.Min == 0:
		ev.Verdict = Info
	case ev.Ratio >= t.Min:
		ev.Verdict = Pass
	default:
		ev.Verdict = Miss
	}
	return ev
}

// baselineRuns are the throughputs (or metricName) of the runs of baseline label: the run
// labelled so and any labelled label.2, label.3, ... (make bench measures a
// baseline again later in the run, since the shared machine drifts), in
// label order; runs without throughput are left out.
func baselineRuns(byLabel map[string]*Result, label, metricName string) []float64 {
	var labels []string
	for l := range byLabel {
		if l == label || strings.HasPrefix(l, label+".") {
			labels = append(labels, l)
		}
	}
	slices.Sort(labels)
	var runs []float64
	for _, l := range labels {
		v := byLabel[l].Throughput
		if metricName != "" {
			v = metric(byLabel[l], metricName)
		}
		if v > 0 {
			runs = append(runs, v)
		}
	}
	return runs
}

func metric(r *Result, name string) float64 {
	switch name {
	case "persisted":
		// A rate whose verification failed (orders lost or doubled) is no
		// persisted rate.
		if r.Verify == nil || !r.Verify.Passed {
			return 0
		}
		return r.Verify.PersistedRate
	case "units":
		return r.UnitRate
	case "p99":
		return r.Latency.P99
	case "error-p99":
		if r.ErrorLatency == nil {
			return 0
		}
		return r.ErrorLatency.P99
	case "refused":
		// Refusals are the 503s (overloaded); a timeout or another error
		// is not one.
		if r.Ops+r.Errors == 0 {
			return 0
		}
		return float64(r.ErrorKinds["http_503"]) / float64(r.Ops+r.Errors)
	}
	return r.Throughput
}

// FormatRatio is "0.82x", or "-" when there is no ratio.
func FormatRatio(r float64) string {
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return "-"
	}
	return fmt.Sprintf("%.2fx", r)
}

// Report is everything BENCHMARKS.md is made of.
type Report struct {
	Date    time.Time // when it was made
	Commit  string    // surge commit measured
	Machine Machine   // where
	Results []*Result // in table order
	// PeakRSSKiB is the largest resident set of `surge up` seen during the
	// bench (0: not measured).
	PeakRSSKiB int64
	// RSSSamples is how many samples PeakRSSKiB rests on (besides VmHWM).
	RSSSamples int
	// growth is the resident set of the store-growth surge up at its
	// checkpoints (ReportOptions.GrowthRSS), and growthRest the same
	// checkpoints read once the process was at rest
	// (ReportOptions.GrowthRSSRest; nil when not measured).
	growth, growthRest []growthPoint
	// ownRSS is the peak resident set of the surge up of its own that
	// served a run, by label (ReportOptions.OwnRSS).
	ownRSS map[string]int64
	// Notes are printed after the targets (ReportOptions.Notes).
	Notes []string
	rss   []rssSample
	// Elapsed is how long the whole `make bench` run took (0: unknown).
	Elapsed time.Duration
	// LoadAvg is the machine's load average when the bench started ("":
	// unknown): other work on a shared machine skews every figure.
	LoadAvg string
}

// WriteMarkdown writes the report as BENCHMARKS.md.
func (rep *Report) WriteMarkdown(w io.Writer) error {
	byLabel := map[string]*Result{}
	for _, r := range rep.Results {
		byLabel[r.Label] = r
	}
	m := rep.Machine
	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmarks\n\n")
	fmt.Fprintf(&b, "Generated by `make bench` (`scripts/bench.sh`) on %s; do not edit by hand.\n", rep.Date.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Every figure comes from that one run: `surge up` on its embedded defaults (loopback, a temporary data dir),\n")
	fmt.Fprintf(&b, "the baselines and the load generator (`surge bench`) all on the same machine, sharing its cores.\n\n")
	fmt.Fprintf(&b, "## Machine\n\n| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| CPU | %d x %s |\n", m.CPUs, orDash(m.CPUModel))
	fmt.Fprintf(&b, "| memory | %.1f GiB |\n", float64(m.MemKiB)/(1<<20))
	fmt.Fprintf(&b, "| OS | %s, kernel %s |\n", m.OS, orDash(m.Kernel))
	fmt.Fprintf(&b, "| Go | %s |\n", m.Go)
	for _, k := range []string{"nats-server", "nats.go", "echo"} {
		fmt.Fprintf(&b, "| %s | %s |\n", k, orDash(m.Versions[k]))
	}
	fmt.Fprintf(&b, "| surge | %s |\n", orDash(rep.Commit))
	if rep.Elapsed > 0 {
		fmt.Fprintf(&b, "| bench run | %s in total |\n", rep.Elapsed.Round(time.Second))
	}
	if rep.LoadAvg != "" {
		fmt.Fprintf(&b, "| load average before the run | %s (1, 5, 15 min; the cores are shared with whatever else runs) |\n", rep.LoadAvg)
	}

	fmt.Fprintf(&b, "\n## Targets\n\nEach surge figure as a ratio to its baseline's throughput, measured in the same run (a baseline measured\n")
	fmt.Fprintf(&b, "twice, before and after the surge runs it serves, counts as the mean of both):\n")
	fmt.Fprintf(&b, "(a) a bare Echo handler echoing the body, (b) Echo -> NATS request -> in-process responder,\n")
	fmt.Fprintf(&b, "(c) raw JetStream async publish with `Nats-Msg-Id` to a file-backed stream.\n\n")
	fmt.Fprintf(&b, "| figure | value | baseline | ratio | target | result |\n|---|---:|---|---:|---|---|\n")
	for _, t := range Targets {
		ev := t.Evaluate(byLabel)
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", t.Name, formatValue(ev), formatBase(ev), FormatRatio(ev.Ratio), formatGoal(t), ev.Verdict)
	}
	for _, l := range []string{LabelOrdersHTTP, LabelOrdersHTTPOpen, LabelOrdersNATS} {
		if r, ok := byLabel[l]; ok && r.Verify != nil {
			v, verdict := r.Verify, Pass
			if !v.Passed {
				verdict = Miss
			}
			fmt.Fprintf(&b, "| %s verified in the store | %d acked: %d lost, %d duplicated, %d unexpected | | | 0 lost, 0 duplicated | %s |\n",
				l, v.Acked, v.Lost, v.Duplicated, v.Unexpected, verdict)
		}
	}
	if rep.PeakRSSKiB > 0 {
		verdict := Pass
		if rep.PeakRSSKiB >= RSSLimitKiB {
			verdict = Miss
		}
		fmt.Fprintf(&b, "| RSS of `surge up`, peak over the whole bench (%d samples + VmHWM) | %.0f MiB | | | < 512 MiB | %s |\n",
			rep.RSSSamples, float64(rep.PeakRSSKiB)/1024, verdict)
	}
	slope, rest := rep.growth, false
	if ps := rep.restPoints(); len(ps) > 0 {
		slope, rest = ps, true
	}
	when := ""
	if rest {
		when = " at rest (the process idle, then 11 s, then a GC)"
	}
	if per, points, from, upTo, ok := rep.rssSlopeTo(slope, slopeOrders); ok {
		verdict := Pass
		if per > RSSPerOrderLimit {
			verdict = Miss
		}
		fmt.Fprintf(&b, "| RSS per stored order: slope of the store-growth surge up's RSS%s from %d (after its warm-up run) to %d orders stored (%d points, least squares) | %.0f B | | | <= %d B | %s |\n",
			when, from, upTo, points, per, RSSPerOrderLimit, verdict)
	}
	if per, points, from, upTo, ok := rep.rssSlopeTo(rep.growth, slopeOrders); ok && rest {
		fmt.Fprintf(&b, "| RSS per stored order right after each run (the run's stream block caches and the GC's garbage included; no target): slope from %d to %d orders stored (%d points, least squares) | %.0f B | | | | %s |\n",
			from, upTo, points, per, Info)
	}
	if per, points, from, upTo, ok := rep.rssSlopeTo(slope, math.MaxInt64); ok && upTo > slopeOrders {
		// Beyond 1M the slope tells a store whose memory grows with its
		// orders from one whose RSS up to 1M was the process's working
		// set still growing (pull buffers filling with a backlog).
		fmt.Fprintf(&b, "| RSS per stored order over the whole fill%s: slope from %d to %d orders stored (%d points, least squares; no target) | %.0f B | | | | %s |\n",
			when, from, upTo, points, per, Info)
	}
	if stored, kib, ok := rep.growthBefore(LabelGrowthFull); ok {
		fmt.Fprintf(&b, "| store-growth surge up before %s: orders stored, RSS%s (no target) | %d | | | | %s (%.0f B per order) |\n",
			LabelGrowthFull, when, stored, formatMiB(kib), float64(kib)*1024/float64(max(stored, 1)))
	}
	if per, orders, ok := rep.rssPerOrder(); ok {
		fmt.Fprintf(&b, "| RSS per stored order over the whole bench: growth of the main surge up / %d orders stored (no target: its other stores grow too) | %.0f B | | | | %s |\n",
			orders, per, Info)
	}
	if len(rep.Notes) > 0 {
		fmt.Fprintf(&b, "\n## Notes\n\n")
		for _, n := range rep.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}

	fmt.Fprintf(&b, "\n## Results\n\nThroughput counts successful operations per second of the measured window (after warm-up).\n")
	fmt.Fprintf(&b, "Latency is from the HDR histogram of every measured operation; for open-loop runs it is measured from each request's\n")
	fmt.Fprintf(&b, "intended send time, so queueing in the load generator counts too. surge RSS is the largest resident set of\n")
	fmt.Fprintf(&b, "`surge up` sampled during the run, its verification included (for the growth-* runs, the RSS of their own surge up after the run;\n")
	fmt.Fprintf(&b, "for orders-nats-vitess, the peak RSS of its own surge up).\n")
	fmt.Fprintf(&b, "surge CPU per acked is the user + system CPU time of the `surge up` serving the run (the embedded NATS server included,\n")
	fmt.Fprintf(&b, "the load generator not) from the start of the load, warm-up included, until its backlog drained (or the load ended, for the runs\n")
	fmt.Fprintf(&b, "without one), over the operations acknowledged in that time (orders, for the order runs); verification's reading back is not counted.\n\n")
	fmt.Fprintf(&b, "| run | target | mode | ok ops | throughput | errors | p50 | p90 | p99 | p99.9 | max | verified | surge RSS | surge CPU per acked |\n")
	fmt.Fprintf(&b, "|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|---|---:|---:|\n")
	for _, r := range rep.Results {
		cpu := "-"
		if d, ok := rep.cpuPerAcked(r); ok {
			cpu = fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %s/s%s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.Label, strings.TrimSpace(r.Scenario+" "+formatParams(r.Params)), formatMode(r), r.Ops, FormatRate(r.Throughput), formatUnit(r),
			formatErrors(r), FormatUS(r.Latency.P50), FormatUS(r.Latency.P90), FormatUS(r.Latency.P99),
			FormatUS(r.Latency.P999), FormatUS(r.Latency.Max), formatVerify(r.Verify), formatMiB(rep.rssOf(r)), cpu)
	}
	fmt.Fprintf(&b, "\nReproduce with `make bench` (a few minutes). Run single scenarios against any deployment with\n")
	fmt.Fprintf(&b, "`surge bench SCENARIO --help`.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func formatMiB(kib int64) string {
	if kib == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f MiB", float64(kib)/1024)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func formatValue(ev Evaluation) string {
	if ev.Verdict == NA && ev.Value == 0 {
		return "-"
	}
	switch ev.Metric {
	case "p99", "error-p99":
		return FormatUS(ev.Value)
	case "refused":
		return fmt.Sprintf("%.0f%%", ev.Value*100)
	}
	if len(ev.Runs) > 1 {
		runs := make([]string, len(ev.Runs))
		for i, v := range ev.Runs {
			runs[i] = FormatRate(v)
		}
		return fmt.Sprintf("%s/s (mean of %s)", FormatRate(ev.Value), strings.Join(runs, ", "))
	}
	return FormatRate(ev.Value) + "/s"
}

func formatBase(ev Evaluation) string {
	if ev.Base == "" || ev.BaseValue == 0 {
		return ""
	}
	if ev.MaxRatio > 0 && ev.Metric == "p99" {
		return fmt.Sprintf("%s p99 %s", ev.Base, FormatUS(ev.BaseValue))
	}
	if len(ev.BaseRuns) > 1 {
		runs := make([]string, len(ev.BaseRuns))
		for i, v := range ev.BaseRuns {
			runs[i] = FormatRate(v)
		}
		return fmt.Sprintf("%s %s/s (mean of %s)", ev.Base, FormatRate(ev.BaseValue), strings.Join(runs, ", "))
	}
	return fmt.Sprintf("%s %s/s", ev.Base, FormatRate(ev.BaseValue))
}

func formatGoal(t Target) string {
	switch {
	case t.Min > 0:
		return fmt.Sprintf(">= %.1fx", t.Min)
	case t.MaxRatio > 0:
		return fmt.Sprintf("<= %.1fx", t.MaxRatio)
	case t.Max > 0 && (t.Metric == "p99" || t.Metric == "error-p99"):
		return "<= " + FormatUS(t.Max)
	}
	return ""
}

func formatMode(r *Result) string {
	if r.Mode == "open" {
		return fmt.Sprintf("open %s/s, c=%d", FormatRate(r.Rate), r.Concurrency)
	}
	return fmt.Sprintf("closed, c=%d", r.Concurrency)
}

func formatUnit(r *Result) string {
	if r.Unit == "" {
		return ""
	}
	return fmt.Sprintf(" (%s %s/s)", FormatRate(r.UnitRate), r.Unit)
}

func formatErrors(r *Result) string {
	if r.Errors == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%s)", r.Errors, FormatKinds(r.ErrorKinds))
}

func formatVerify(v *Verification) string {
	switch {
	case v == nil:
		return "-"
	case !v.Passed:
		return fmt.Sprintf("FAILED: %d acked, %d lost, %d dup", v.Acked, v.Lost, v.Duplicated)
	case v.PersistedRate > 0:
		return fmt.Sprintf("%d acked, all stored once; %s/s end to end", v.Acked, FormatRate(v.PersistedRate))
	}
	return fmt.Sprintf("%d acked, all stored once", v.Acked)
}

// ReportOptions say where BuildReport finds its inputs.
type ReportOptions struct {
	// Results are JSON files written by `surge bench --out`, in table order.
	Results []string
	// Commit is the surge commit measured.
	Commit string
	// RSSSamples is a file of VmRSS samples in KiB, one per line.
	RSSSamples string
	// PID is the `surge up` process, still running, whose VmHWM to read.
	PID int
	// StartedUnix is when the bench run started (0: unknown).
	StartedUnix int64
	// LoadAvg is the load average when it started, as /proc/loadavg says it.
	LoadAvg string
	// Notes are sentences for the report's Notes section (a scenario that
	// could not run here, and why).
	Notes []string
	// GrowthRSS is a file of "LABEL KIB" lines: the resident set of the
	// store-growth surge up before its first run ("start") and right after
	// each run of that label (see Report.rssSlope).
	GrowthRSS string
	// GrowthRSSRest is a file of the same lines read at rest: once the
	// process was idle, 11 s on (nats-server drops the cache of a stream
	// block 10 s after its last read), after a GC. The RSS slope target is
	// read from these when they are there (Report.restPoints).
	GrowthRSSRest string
	// OwnRSS is a file of "LABEL KIB" lines: the peak resident set (VmHWM)
	// of a surge up other than the main one that served the run of that
	// label (the Vitess run's), read after it.
	OwnRSS string
}

// BuildReport reads the results and the memory samples and describes the
// machine.
func BuildReport(o ReportOptions) (*Report, error) {
	rep := &Report{Date: time.Now(), Commit: o.Commit, Machine: ReadMachine(), LoadAvg: o.LoadAvg, Notes: o.Notes}
	for _, path := range o.Results {
		r, err := ReadResult(path)
		if err != nil {
			return nil, err
		}
		rep.Results = append(rep.Results, r)
	}
	if o.RSSSamples != "" {
		samples, err := readRSSSamples(o.RSSSamples)
		if err != nil {
			return nil, err
		}
		rep.rss = samples
		rep.RSSSamples = len(samples)
		for _, s := range samples {
			rep.PeakRSSKiB = max(rep.PeakRSSKiB, s.kib)
		}
	}
	if o.GrowthRSS != "" {
		points, err := readGrowthRSS(o.GrowthRSS, "--growth-rss")
		if err != nil {
			return nil, err
		}
		rep.growth = points
	}
	if o.GrowthRSSRest != "" {
		points, err := readGrowthRSS(o.GrowthRSSRest, "--growth-rss-rest")
		if err != nil {
			return nil, err
		}
		rep.growthRest = points
	}
	if o.OwnRSS != "" {
		own := map[string]int64{}
		err := readLabelled(o.OwnRSS, "--own-rss", "KIB", func(label, v string) error {
			kib, err := strconv.ParseInt(v, 10, 64)
			if err != nil || kib <= 0 {
				return fmt.Errorf("want a positive KiB figure, got %q", v)
			}
			own[label] = kib
			return nil
		})
		if err != nil {
			return nil, err
		}
		rep.ownRSS = own
	}
	if o.PID > 0 {
		_, hwm, err := ProcessRSS(o.PID)
		if err != nil {
			return nil, fmt.Errorf("--pid %d: %w", o.PID, err)
		}
		rep.PeakRSSKiB = max(rep.PeakRSSKiB, hwm)
	}
	if o.StartedUnix > 0 {
		rep.Elapsed = time.Since(time.Unix(o.StartedUnix, 0))
	}
	return rep, nil
}

// rssSample is one reading of the platform's resident set.
type rssSample struct {
	at  time.Time // zero when the file has no times
	kib int64
}

// readRSSSamples reads lines of "KIB" or "UNIX_MILLIS KIB".
func readRSSSamples(path string) ([]rssSample, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--rss-samples: %w", err)
	}
	var out []rssSample
	for i, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		var s rssSample
		if len(f) > 2 {
			return nil, fmt.Errorf("--rss-samples %s:%d: want KIB or UNIX_MILLIS KIB, got %q", path, i+1, line)
		}
		if len(f) == 2 {
			ms, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("--rss-samples %s:%d: %w", path, i+1, err)
			}
			s.at = time.UnixMilli(ms)
		}
		if s.kib, err = strconv.ParseInt(f[len(f)-1], 10, 64); err != nil {
			return nil, fmt.Errorf("--rss-samples %s:%d: %w", path, i+1, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// RSSPerOrderLimit is the goal for the resident memory an order stored in
// the embedded store costs, in bytes.
const RSSPerOrderLimit = 200

// rssPerOrder is how much the resident set grew per order stored during
// the bench: (peak - first sample) / the verified orders of every run
// that stores orders in surge; false without samples or such orders. The
// growth includes everything else that grew (caches, the Go heap's
// headroom), so it is an upper bound on the store's own cost.
func (rep *Report) rssPerOrder() (float64, int64, bool) {
	if len(rep.rss) == 0 || rep.PeakRSSKiB == 0 {
		return 0, 0, false
	}
	var orders int64
	for _, r := range rep.Results {
		if r.Verify == nil || !r.Verify.Passed || r.Scenario != "orders-http" && r.Scenario != "orders-nats" && r.Scenario != "sale" {
			continue
		}
		if strings.HasPrefix(r.Label, LabelPeer) || strings.HasPrefix(r.Label, LabelOrdersNATSVitess) || strings.HasPrefix(r.Label, growthPrefix) {
			continue // the peer's orders are in MariaDB, the Vitess leg's in Vitess, the growth runs' in their own surge up
		}
		orders += r.Verify.Acked
	}
	if orders == 0 {
		return 0, 0, false
	}
	growth := float64(rep.PeakRSSKiB-rep.rss[0].kib) * 1024
	return max(growth, 0) / float64(orders), orders, true
}

// growthPoint is the store-growth surge up's resident set after the run
// of Label ("start": before the first).
type growthPoint struct {
	label string
	kib   int64
}

// readGrowthRSS reads lines of "LABEL KIB" from the file of flag.
func readGrowthRSS(path, flag string) ([]growthPoint, error) {
	var out []growthPoint
	err := readLabelled(path, flag, "KIB", func(label, v string) error {
		kib, err := strconv.ParseInt(v, 10, 64)
		if err != nil || kib <= 0 {
			return fmt.Errorf("want a positive KiB figure, got %q", v)
		}
		out = append(out, growthPoint{label, kib})
		return nil
	})
	return out, err
}

// readLabelled reads the lines "LABEL VALUE" of the file flag names (blank
// lines skipped), handing each to f; an error names the file and line.
func readLabelled(path, flag, value string, f func(label, v string) error) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	for i, line := range strings.Split(string(b), "\n") {
		fs := strings.Fields(line)
		if len(fs) == 0 {
			continue
		}
		if len(fs) != 2 {
			return fmt.Errorf("%s %s:%d: want LABEL %s, got %q", flag, path, i+1, value, line)
		}
		if err := f(fs[0], fs[1]); err != nil {
			return fmt.Errorf("%s %s:%d: %w", flag, path, i+1, err)
		}
	}
	return nil
}

// cpuPerAcked is the surge up's CPU time of r's run (Result.TargetCPU:
// from the start of the load until the backlog drained) per acknowledged
// operation (an order for the order scenarios, batched ones included;
// both count the warm-up). False without a passed verification or a CPU
// figure.
func (rep *Report) cpuPerAcked(r *Result) (time.Duration, bool) {
	if r.TargetCPU <= 0 || r.Verify == nil || !r.Verify.Passed || r.Verify.Acked <= 0 {
		return 0, false
	}
	return time.Duration(r.TargetCPU*float64(time.Second)) / time.Duration(r.Verify.Acked), true
}

// storedAt pairs each store-growth checkpoint of growth (rep.growth, or
// restPoints) with the orders stored by then: the start has none, each
// later point adds the acknowledged orders of its run, which verification
// found stored exactly once. It stops at a checkpoint whose run has no
// passed verification (its orders are not known), or one that does not
// follow the start.
func (rep *Report) storedAt(growth []growthPoint) (stored []int64, points []growthPoint) {
	if len(growth) == 0 || growth[0].label != "start" {
		return nil, nil
	}
	byLabel := map[string]*Result{}
	for _, r := range rep.Results {
		byLabel[r.Label] = r
	}
	stored = []int64{0}
	for _, p := range growth[1:] {
		r, ok := byLabel[p.label]
		if !ok || r.Verify == nil || !r.Verify.Passed {
			break
		}
		stored = append(stored, stored[len(stored)-1]+r.Verify.Acked)
	}
	return stored, growth[:len(stored)]
}

// slopeOrders is how far the RSS slope reaches: the issue asks for the
// slope from 0 to 1M stored orders.
const slopeOrders = 1_000_000

// rssSlope is the resident memory a stored order costs: the least-squares
// slope, in bytes per order, of the store-growth surge up's resident set
// against the orders it stored, over its checkpoints after the first run
// (the warm-up, whose one-time costs, pull buffers and pools, are not the
// orders') up to the first at or past slopeOrders. It reports the orders
// of the first and last points and how many it rests on; false with fewer
// than three. It reads the checkpoints at rest when there are any: right
// after a run the RSS also holds that run's traffic (nats-server keeps the
// cache of every stream block read in the last 10 s, about 1 GB at the
// batched intake's 100 MB/s) and the garbage of the GC cycle in progress,
// which depend on when the run ended, not on the orders stored.
func (rep *Report) rssSlope() (perOrder float64, points int, from, upTo int64, ok bool) {
	return rep.rssSlopeTo(rep.slopePoints(), slopeOrders)
}

// slopePoints is the checkpoints the RSS slopes are read from: at rest when
// they were measured (restPoints), else right after each run.
func (rep *Report) slopePoints() []growthPoint {
	if ps := rep.restPoints(); len(ps) > 0 {
		return ps
	}
	return rep.growth
}

// restPoints is the checkpoints of rep.growth, in its order and up to its
// first one without a reading at rest, each with its RSS at rest: a point
// whose rest was not read (the bench skips one it cannot take) must not
// shift the orders stored at the later ones, which come from the runs
// between rep.growth's points. Nil when the start has no reading at rest.
func (rep *Report) restPoints() []growthPoint {
	at := map[string]int64{}
	for _, p := range rep.growthRest {
		at[p.label] = p.kib
	}
	var out []growthPoint
	for _, p := range rep.growth {
		kib, ok := at[p.label]
		if !ok {
			break
		}
		out = append(out, growthPoint{p.label, kib})
	}
	return out
}

// rssSlopeTo is rssSlope over growth up to the first checkpoint at or past
// limit (all of them when none is).
func (rep *Report) rssSlopeTo(growth []growthPoint, limit int64) (perOrder float64, points int, from, upTo int64, ok bool) {
	stored, ps := rep.storedAt(growth)
	for i, n := range stored {
		if n >= limit {
			stored, ps = stored[:i+1], ps[:i+1]
			break
		}
	}
	if len(stored) < 4 {
		return 0, 0, 0, 0, false
	}
	stored, ps = stored[1:], ps[1:] // from the warm-up run's checkpoint
	var sx, sy, sxx, sxy float64
	for i, n := range stored {
		x, y := float64(n), float64(ps[i].kib)*1024
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	k := float64(len(stored))
	den := k*sxx - sx*sx
	if den == 0 {
		return 0, 0, 0, 0, false
	}
	return (k*sxy - sx*sy) / den, len(stored), stored[0], stored[len(stored)-1], true
}

// growthBefore is the orders the store-growth surge up held before the
// run of label, and its resident set then; false when that is not known.
func (rep *Report) growthBefore(label string) (int64, int64, bool) {
	stored, ps := rep.storedAt(rep.slopePoints())
	for i := 1; i < len(ps); i++ {
		if ps[i].label == label {
			return stored[i-1], ps[i-1].kib, true
		}
	}
	return 0, 0, false
}

// rssOf is the resident set the results table shows for r: the
// store-growth surge up's after r, for its runs; the peak of the surge up
// of its own for a run that had one (Vitess); otherwise the main surge
// up's peak during r.
func (rep *Report) rssOf(r *Result) int64 {
	if kib, ok := rep.ownRSS[r.Label]; ok {
		return kib
	}
	if strings.HasPrefix(r.Label, LabelOrdersNATSVitess) {
		return 0 // not the main surge up's, and its own was not read
	}
	for _, p := range rep.growth {
		if p.label == r.Label {
			return p.kib
		}
	}
	if strings.HasPrefix(r.Label, growthPrefix) {
		return 0 // not the main surge up's, and its own was not read
	}
	return rep.peakDuring(r)
}

// peakDuring is the largest timed sample within r's run, verification
// included (0 when none).
func (rep *Report) peakDuring(r *Result) int64 {
	var peak int64
	for _, s := range rep.rss {
		if !s.at.IsZero() && !s.at.Before(r.Start) && !s.at.After(r.End) {
			peak = max(peak, s.kib)
		}
	}
	return peak
}
