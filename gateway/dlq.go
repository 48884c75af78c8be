package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/wire"
)

// Bounds of GET /admin/dlq's page.
const (
	dlqDefaultLimit = 100
	dlqMaxLimit     = 1000
)

// DeadLetter is one entry of GET /admin/dlq: a message that exhausted its
// deliveries (or was rejected), as the DLQ stream holds it. Headers are the
// original message's, without the Surge-Dlq-* ones and the DLQ's own
// Nats-Msg-Id; MsgID is the client's original Nats-Msg-Id, if it had one.
type DeadLetter struct {
	Seq             uint64    `json:"seq"`
	Subject         string    `json:"subject"`
	Stream          string    `json:"stream,omitempty"`
	StreamSeq       uint64    `json:"stream_seq,omitempty"`
	Error           string    `json:"error"`
	Deliveries      int       `json:"deliveries"`
	Time            time.Time `json:"time"`
	MsgID           string    `json:"msg_id,omitempty"`
	Payload         string    `json:"payload"`
	PayloadEncoding string    `json:"payload_encoding"`
	// PayloadTruncated says Payload holds only the first bytes of a
	// larger one (GET /admin/overview, for the console; GET /admin/dlq
	// always sends it whole).
	PayloadTruncated bool        `json:"payload_truncated,omitempty"`
	Headers          nats.Header `json:"headers,omitempty"`
	// Index is, for one item of a message that carried several (an order
	// of an orders.submit array), the item's position in it.
	Index *int `json:"index,omitempty"`
}

// ReplayResult is the outcome of replaying one dead letter.
type ReplayResult struct {
	Seq      uint64 `json:"seq"`
	Replayed bool   `json:"replayed"`
	Subject  string `json:"subject,omitempty"`
	Error    string `json:"error,omitempty"`
}

// DLQPage is the answer of GET /admin/dlq: Next is the after of the next
// page, 0 on the last; Total is how many dead letters the function has.
type DLQPage struct {
	Function    string       `json:"function"`
	DeadLetters []DeadLetter `json:"dead_letters"`
	Total       uint64       `json:"total"`
	Next        uint64       `json:"next"`
}

// ReplayReport is the answer of POST /admin/dlq/{function}/replay.
type ReplayReport struct {
	Function string         `json:"function"`
	Replayed int            `json:"replayed"`
	Failed   int            `json:"failed"`
	Results  []ReplayResult `json:"results"`
	// Remaining is how many dead letters the function still has: those
	// that failed, and those past the first dlqMaxLimit of a replay of all.
	Remaining uint64 `json:"remaining"`
}

func dlqSubject(fn string) string { return "dlq." + fn }

// originalHeaders is the message's headers without what dead-lettering added.
func originalHeaders(h nats.Header) nats.Header {
	out := nats.Header{}
	for k, v := range h {
		if k == wire.HeaderMsgID || strings.HasPrefix(k, "Surge-Dlq-") {
			continue
		}
		out[k] = v
	}
	return out
}

func deadLetter(m *jetstream.RawStreamMsg) DeadLetter {
	d := DeadLetter{Seq: m.Sequence, Subject: m.Header.Get(wire.HeaderDLQSubject), Stream: m.Header.Get(wire.HeaderDLQStream),
		Error: m.Header.Get(wire.HeaderDLQError), Time: m.Time, MsgID: m.Header.Get(wire.HeaderDLQMsgID), PayloadEncoding: "utf-8",
		Payload: string(m.Data)}
	d.StreamSeq, _ = strconv.ParseUint(m.Header.Get(wire.HeaderDLQSeq), 10, 64)
	d.Deliveries, _ = strconv.Atoi(m.Header.Get(wire.HeaderDLQDeliveries))
	if i, err := strconv.Atoi(m.Header.Get(wire.HeaderDLQIndex)); err == nil {
		d.Index = &i
	}
	if !utf8.Valid(m.Data) {
		d.Payload, d.PayloadEncoding = base64.StdEncoding.EncodeToString(m.Data), "base64"
	}
	if h := originalHeaders(m.Header); len(h) > 0 {
		d.Headers = h
	}
	return d
}

// truncated is d with at most n bytes of its payload (whole UTF-8
// characters of a text one), marked when it was cut.
func (d DeadLetter) truncated(n int) DeadLetter {
	if len(d.Payload) <= n {
		return d
	}
	cut := n
	for cut > 0 && d.PayloadEncoding == "utf-8" && !utf8.RuneStart(d.Payload[cut]) {
		cut--
	}
	d.Payload, d.PayloadTruncated = d.Payload[:cut], true
	return d
}

// dlqFunction checks the {function} of a DLQ route: a valid name that is
// deployed or still has dead letters (those of a removed function can be
// handled too). It returns the DLQ stream.
func dlqFunction(ctx context.Context, reg functionStore, js jetstream.JetStream, name string) (jetstream.Stream, error) {
	if name == "" {
		return nil, runtime.BadRequest("function", "is required")
	}
	if !manifests.ValidName(name) {
		return nil, runtime.BadRequest("function", "%q is not a function name (lowercase letters, digits and '-', at most 63)", name)
	}
	st, err := js.Stream(ctx, wire.StreamDLQ)
	if err != nil {
		return nil, &runtime.Error{Status: http.StatusServiceUnavailable, Code: "dlq_unavailable", Msg: "cannot read the dead-letter stream", Err: err}
	}
	if _, err := reg.Get(ctx, name); err == nil {
		return st, nil
	} else if !errors.Is(err, manifests.ErrNotDeployed) {
		return nil, registryError(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(dlqSubject(name)))
	if err != nil {
		return nil, &runtime.Error{Status: http.StatusServiceUnavailable, Code: "dlq_unavailable", Msg: "cannot read the dead-letter stream", Err: err}
	}
	if info.State.Subjects[dlqSubject(name)] == 0 {
		return nil, &runtime.Error{Status: http.StatusNotFound, Code: "function_not_found", Msg: "function " + name + " is not deployed and has no dead letters"}
	}
	return st, nil
}

// nextDeadLetter is the function's first dead letter at or after seq, nil when none.
func nextDeadLetter(ctx context.Context, st jetstream.Stream, fn string, seq uint64) (*jetstream.RawStreamMsg, error) {
	m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(dlqSubject(fn)))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, &runtime.Error{Status: http.StatusServiceUnavailable, Code: "dlq_unavailable", Msg: "cannot read the dead-letter stream", Err: err}
	}
	return m, nil
}

// getDeadLetter is dead letter seq of function fn; a seq that does not
// exist or is another function's is a 404.
func getDeadLetter(ctx context.Context, st jetstream.Stream, fn string, seq uint64) (*jetstream.RawStreamMsg, error) {
	m, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) || (err == nil && m.Subject != dlqSubject(fn)) {
		return nil, &runtime.Error{Status: http.StatusNotFound, Code: "dead_letter_not_found",
			Msg: "function " + fn + " has no dead letter " + strconv.FormatUint(seq, 10)}
	}
	if err != nil {
		return nil, &runtime.Error{Status: http.StatusServiceUnavailable, Code: "dlq_unavailable", Msg: "cannot read the dead-letter stream", Err: err}
	}
	return m, nil
}

func parseSeq(field, s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, runtime.BadRequest(field, "%q is not a DLQ sequence (a positive integer)", s)
	}
	return n, nil
}

// newDLQListHandler serves GET /admin/dlq?function=NAME[&limit=N][&after=SEQ]:
// the function's dead letters in DLQ order, at most limit (default 100,
// at most 1000) after sequence after; next is the after of the next page
// (0 when this one is the last), total how many the function has.
func newDLQListHandler(reg functionStore, js jetstream.JetStream) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		fn := c.QueryParam("function")
		limit := dlqDefaultLimit
		if s := c.QueryParam("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > dlqMaxLimit {
				return runtime.BadRequest("limit", "%q is not a number from 1 to %d", s, dlqMaxLimit)
			}
			limit = n
		}
		var after uint64
		if s := c.QueryParam("after"); s != "" {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return runtime.BadRequest("after", "%q is not a DLQ sequence", s)
			}
			after = n
		}
		st, err := dlqFunction(ctx, reg, js, fn)
		if err != nil {
			return err
		}
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(dlqSubject(fn)))
		if err != nil {
			return &runtime.Error{Status: http.StatusServiceUnavailable, Code: "dlq_unavailable", Msg: "cannot read the dead-letter stream", Err: err}
		}
		out := []DeadLetter{}
		var next uint64
		for seq := after + 1; ; {
			m, err := nextDeadLetter(ctx, st, fn, seq)
			if err != nil {
				return err
			}
			if m == nil {
				break
			}
			if len(out) == limit {
				next = out[len(out)-1].Seq
				break
			}
			out = append(out, deadLetter(m))
			seq = m.Sequence + 1
		}
		return c.JSON(http.StatusOK, DLQPage{Function: fn, DeadLetters: out, Total: info.State.Subjects[dlqSubject(fn)], Next: next})
	}
}

// newDLQReplayHandler serves POST /admin/dlq/{function}/replay with no body
// (every dead letter of the function) or {"seq":[...]}. Each goes back to
// its original subject with its original headers, plus Surge-Replay:
// dlq:<seq> and Nats-Msg-Id: replay:<seq> (a fresh id, so the stream does
// not drop it as a duplicate of the original, and a replay retried after
// a lost answer is not doubled); its DLQ entry is deleted only once the
// republish is acked. Named seqs are all checked first: one that is not
// this function's dead letter is a 404 and nothing is replayed. Without a
// body at most the oldest dlqMaxLimit (1000) go in one call, so that one
// answer stays quick; remaining says what is left.
func newDLQReplayHandler(reg functionStore, js jetstream.JetStream, limit int64) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		fn := c.Param("function")
		body, err := readBody(c.Request(), limit)
		if err != nil {
			return err
		}
		var req struct {
			Seq []uint64 `json:"seq"`
		}
		if len(bytes.TrimSpace(body)) > 0 {
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil {
				return runtime.BadRequest("body", "want {\"seq\":[N,...]} (or no body to replay all): %s", err.Error())
			}
			if len(req.Seq) == 0 {
				return runtime.BadRequest("seq", "is empty; send no body to replay every dead letter")
			}
			for _, s := range req.Seq {
				if s == 0 {
					return runtime.BadRequest("seq", "0 is not a DLQ sequence (a positive integer)")
				}
			}
		}
		st, err := dlqFunction(ctx, reg, js, fn)
		if err != nil {
			return err
		}
		var msgs []*jetstream.RawStreamMsg
		if req.Seq != nil {
			seen := map[uint64]bool{}
			for _, s := range req.Seq {
				if seen[s] {
					continue
				}
				seen[s] = true
				m, err := getDeadLetter(ctx, st, fn, s)
				if err != nil {
					return err
				}
				msgs = append(msgs, m)
			}
		} else {
			for seq := uint64(1); ; {
				m, err := nextDeadLetter(ctx, st, fn, seq)
				if err != nil {
					return err
				}
				if m == nil || len(msgs) == dlqMaxLimit {
					break
				}
				msgs = append(msgs, m)
				seq = m.Sequence + 1
			}
		}
		results := make([]ReplayResult, 0, len(msgs))
		replayed := 0
		for _, m := range msgs {
			r := replay(ctx, js, st, m)
			if r.Replayed {
				replayed++
			}
			results = append(results, r)
		}
		rep := ReplayReport{Function: fn, Replayed: replayed, Failed: len(results) - replayed, Results: results}
		if info, err := st.Info(ctx, jetstream.WithSubjectFilter(dlqSubject(fn))); err == nil {
			rep.Remaining = info.State.Subjects[dlqSubject(fn)]
		}
		return c.JSON(http.StatusOK, rep)
	}
}

// replay republishes one dead letter and, once acked, deletes it.
func replay(ctx context.Context, js jetstream.JetStream, st jetstream.Stream, m *jetstream.RawStreamMsg) ReplayResult {
	r := ReplayResult{Seq: m.Sequence, Subject: m.Header.Get(wire.HeaderDLQSubject)}
	if r.Subject == "" {
		r.Error = "the dead letter has no " + wire.HeaderDLQSubject + " header: its original subject is unknown"
		return r
	}
	h := originalHeaders(m.Header)
	seq := strconv.FormatUint(m.Sequence, 10)
	h.Set(wire.HeaderReplay, "dlq:"+seq)
	h.Set(wire.HeaderMsgID, "replay:"+seq)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := runtime.PublishDurable(pctx, js, &nats.Msg{Subject: r.Subject, Header: h, Data: m.Data}); err != nil {
		r.Error = "republish to " + r.Subject + ": " + err.Error()
		return r
	}
	if err := st.DeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		// Republished but still listed: a second replay is de-duplicated
		// by its Nats-Msg-Id within the stream's window.
		r.Error = "republished, but the dead letter could not be deleted: " + err.Error()
		return r
	}
	r.Replayed = true
	return r
}

// newDLQDeleteHandler serves DELETE /admin/dlq/{function}/{seq}: discards
// one dead letter; 404 when seq is not one of the function's.
func newDLQDeleteHandler(reg functionStore, js jetstream.JetStream) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		fn := c.Param("function")
		seq, err := parseSeq("seq", c.Param("seq"))
		if err != nil {
			return err
		}
		st, err := dlqFunction(ctx, reg, js, fn)
		if err != nil {
			return err
		}
		if _, err := getDeadLetter(ctx, st, fn, seq); err != nil {
			return err
		}
		if err := st.DeleteMsg(ctx, seq); err != nil {
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				return &runtime.Error{Status: http.StatusNotFound, Code: "dead_letter_not_found", Msg: "function " + fn + " has no dead letter " + c.Param("seq")}
			}
			return &runtime.Error{Status: http.StatusServiceUnavailable, Code: "dlq_unavailable", Msg: "cannot delete the dead letter", Err: err}
		}
		return c.NoContent(http.StatusNoContent)
	}
}
