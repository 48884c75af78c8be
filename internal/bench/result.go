package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: microsecond resolution from 1µs to 60s, 3 significant
// digits (0.1% error).
const (
	histMinUS  = 1
	histMaxUS  = 60_000_000
	histDigits = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMinUS, histMaxUS, histDigits)
}

// recordUS records d in microseconds, clamped into the histogram's range.
func recordUS(h *hdrhistogram.Histogram, d time.Duration) {
	us := d.Microseconds()
	switch {
	case us < histMinUS:
		us = histMinUS
	case us > histMaxUS:
		us = histMaxUS
	}
	_ = h.RecordValue(us) // cannot fail: us is in range
}

// Latency is a latency distribution in microseconds: percentiles, the
// maximum and the mean of an HDR histogram.
type Latency struct {
	P50  float64 `json:"p50"`   // median
	P90  float64 `json:"p90"`   // 90th percentile
	P99  float64 `json:"p99"`   // 99th percentile
	P999 float64 `json:"p99_9"` // 99.9th percentile
	Max  float64 `json:"max"`   // slowest operation
	Mean float64 `json:"mean"`  // arithmetic mean
}

func latencyOf(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		P50:  float64(h.ValueAtQuantile(50)),
		P90:  float64(h.ValueAtQuantile(90)),
		P99:  float64(h.ValueAtQuantile(99)),
		P999: float64(h.ValueAtQuantile(99.9)),
		Max:  float64(h.Max()),
		Mean: h.Mean(),
	}
}

// Verification is what a Verifier found.
type Verification struct {
	// Passed is true when nothing below is wrong.
	Passed bool `json:"passed"`
	// Acked is how many operations the platform acknowledged during the
	// whole run, warm-up included (they all must be stored).
	Acked int64 `json:"acked"`
	// Stored is how many distinct acknowledged items the platform holds.
	Stored int64 `json:"stored"`
	// Lost are acknowledged but not stored.
	Lost int64 `json:"lost"`
	// Duplicated are listed more than once.
	Duplicated int64 `json:"duplicated"`
	// Unexpected are stored under this run's keys but were never acknowledged.
	Unexpected int64 `json:"unexpected"`
	// Sampled items were read back one by one.
	Sampled int `json:"sampled"`
	// SampleMismatches differed from what was acknowledged (read back or listed).
	SampleMismatches int `json:"sample_mismatches"`
	// DrainSeconds is how long the backlog took to drain after the intake ended.
	DrainSeconds float64 `json:"drain_seconds"`
	// PersistedRate is Acked over the time from the first operation until
	// the backlog drained: the end-to-end rate, not only the intake rate.
	PersistedRate float64 `json:"persisted_rate"`
	// Problems describe every failed check (a few examples each).
	Problems []string `json:"problems,omitempty"`
}

// Result is the outcome of one Run.
type Result struct {
	Label       string            `json:"label"`                 // the run's name (Options.Label)
	Scenario    string            `json:"scenario"`              // Scenario.Name
	Target      string            `json:"target"`                // what was loaded (URL, subject)
	Mode        string            `json:"mode"`                  // "closed" or "open"
	Concurrency int               `json:"concurrency"`           // workers
	Rate        float64           `json:"rate,omitempty"`        // open loop: intended ops/s
	Params      map[string]string `json:"params,omitempty"`      // scenario settings (payload size...)
	Start       time.Time         `json:"start"`                 // warm-up included
	Warmup      float64           `json:"warmup_seconds"`        // before the measured window
	Seconds     float64           `json:"seconds"`               // the measured window
	Ops         int64             `json:"ops"`                   // successful measured operations
	Errors      int64             `json:"errors"`                // failed measured operations
	ErrorKinds  map[string]int64  `json:"error_kinds,omitempty"` // errors by kind
	Throughput  float64           `json:"throughput"`            // successful ops/s
	Unit        string            `json:"unit,omitempty"`        // Counter scenarios: what an op carries
	UnitRate    float64           `json:"unit_rate,omitempty"`   // units/s
	Latency     Latency           `json:"latency_us"`            // of the successful measured operations
	// ErrorLatency is of the failed measured operations (how fast a
	// refusal comes back); nil without errors.
	ErrorLatency *Latency      `json:"error_latency_us,omitempty"`
	Verify       *Verification `json:"verify,omitempty"` // nil: not verified
	End          time.Time     `json:"end"`              // verification included
	// TargetPID is Options.CPUPID, and TargetCPU the user + system CPU
	// seconds it used from the start of the load (warm-up included) until
	// the run's work settled: the backlog drained, for the runs whose
	// verification waits for one, else the load ended. The verification's
	// reading back is not counted.
	TargetPID int     `json:"target_pid,omitempty"`
	TargetCPU float64 `json:"target_cpu_seconds,omitempty"`

	cpu0    time.Duration // TargetPID's CPU time when the load started
	settles int           // calls of settled (tests)
}

// settled records TargetCPU up to now, if the run has a TargetPID: the
// runner calls it when the load ends, and the wait for a backlog
// (DrainConfig.wait, CountVerifier) again once the backlog has drained. A process that
// is gone keeps the figure of the last call.
func (r *Result) settled() {
	if r.TargetPID <= 0 {
		return
	}
	r.settles++
	if cpu, err := ProcessCPU(r.TargetPID); err == nil {
		r.TargetCPU = (cpu - r.cpu0).Seconds()
	}
}

// WriteJSON writes r as indented JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ReadResult reads a result written by WriteJSON.
func ReadResult(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// WriteTable writes r for people.
func (r *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	mode := fmt.Sprintf("closed loop, %d workers", r.Concurrency)
	if r.Mode == "open" {
		mode = fmt.Sprintf("open loop at %s ops/s, %d workers", FormatRate(r.Rate), r.Concurrency)
	}
	fmt.Fprintf(tw, "scenario\t%s (%s)\n", r.Label, mode)
	if r.Target != "" {
		fmt.Fprintf(tw, "target\t%s\n", r.Target)
	}
	if len(r.Params) > 0 {
		fmt.Fprintf(tw, "params\t%s\n", formatParams(r.Params))
	}
	fmt.Fprintf(tw, "duration\t%.2fs measured (+%.1fs warm-up)\n", r.Seconds, r.Warmup)
	fmt.Fprintf(tw, "ok\t%d ops, %s ops/s\n", r.Ops, FormatRate(r.Throughput))
	if r.Unit != "" {
		fmt.Fprintf(tw, "%s\t%s %s/s\n", r.Unit, FormatRate(r.UnitRate), r.Unit)
	}
	fmt.Fprintf(tw, "errors\t%d%s\n", r.Errors, formatKinds(r.ErrorKinds))
	if el := r.ErrorLatency; el != nil {
		fmt.Fprintf(tw, "error latency\tp50 %s  p99 %s  max %s\n", FormatUS(el.P50), FormatUS(el.P99), FormatUS(el.Max))
	}
	l := r.Latency
	fmt.Fprintf(tw, "latency\tp50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (mean %s)\n",
		FormatUS(l.P50), FormatUS(l.P90), FormatUS(l.P99), FormatUS(l.P999), FormatUS(l.Max), FormatUS(l.Mean))
	if v := r.Verify; v != nil {
		state := "PASSED"
		if !v.Passed {
			state = "FAILED"
		}
		sample := ""
		if v.Sampled > 0 {
			sample = fmt.Sprintf(", read back %d/%d ok", v.Sampled-v.SampleMismatches, v.Sampled)
		}
		fmt.Fprintf(tw, "verify\t%s: acked %d, stored %d, lost %d, duplicated %d, unexpected %d%s\n",
			state, v.Acked, v.Stored, v.Lost, v.Duplicated, v.Unexpected, sample)
		if v.PersistedRate > 0 {
			fmt.Fprintf(tw, "persisted\t%s/s end to end (backlog drained %.2fs after the intake)\n", FormatRate(v.PersistedRate), v.DrainSeconds)
		}
		for _, p := range v.Problems {
			fmt.Fprintf(tw, "  problem\t%s\n", p)
		}
	}
	if r.TargetPID > 0 {
		per := ""
		if v := r.Verify; v != nil && v.Acked > 0 {
			per = fmt.Sprintf(", %s per acked", FormatUS(r.TargetCPU*1e6/float64(v.Acked)))
		}
		fmt.Fprintf(tw, "target cpu\t%.2fs of pid %d until the work settled%s\n", r.TargetCPU, r.TargetPID, per)
	}
	return tw.Flush()
}

func formatParams(p map[string]string) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + p[k]
	}
	return strings.Join(parts, " ")
}

// formatKinds is " (http_503: 3, timeout: 1)", most frequent first.
func formatKinds(kinds map[string]int64) string {
	if len(kinds) == 0 {
		return ""
	}
	return " (" + FormatKinds(kinds) + ")"
}

// FormatKinds lists error kinds with their counts, most frequent first.
func FormatKinds(kinds map[string]int64) string {
	keys := make([]string, 0, len(kinds))
	for k := range kinds {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if kinds[keys[i]] != kinds[keys[j]] {
			return kinds[keys[i]] > kinds[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, kinds[k])
	}
	return strings.Join(parts, ", ")
}

// FormatUS formats microseconds with a unit that keeps 3 significant
// digits: 950µs, 1.25ms, 2.50s.
func FormatUS(us float64) string {
	switch {
	case us < 1000:
		return fmt.Sprintf("%.0fµs", us)
	case us < 1_000_000:
		return fmt.Sprintf("%.2fms", us/1000)
	default:
		return fmt.Sprintf("%.2fs", us/1_000_000)
	}
}

// FormatRate formats a rate with a thousands suffix: 950, 12.3k, 1.25M.
func FormatRate(r float64) string {
	switch {
	case r < 10_000:
		return fmt.Sprintf("%.0f", r)
	case r < 1_000_000:
		return fmt.Sprintf("%.1fk", r/1000)
	default:
		return fmt.Sprintf("%.2fM", r/1_000_000)
	}
}
