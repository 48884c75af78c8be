package runtime

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Async call states, as GET /calls/{id} reports them.
const (
	CallQueued    = "queued"
	CallRunning   = "running"
	CallSucceeded = "succeeded"
	CallFailed    = "failed"
	CallDead      = "dead"
)

// CallStatus is the record kept per async call in the calls bucket.
type CallStatus struct {
	CallID    string          `json:"call_id"`
	Function  string          `json:"function"`
	Status    string          `json:"status"`
	Attempts  int             `json:"attempts"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *ErrorBody      `json:"error,omitempty"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// ErrorBody is the JSON form of an error: {"code":..., "message":...}.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// callTracker writes async call status for messages that carry a call id.
type callTracker struct {
	kv       jetstream.KeyValue
	function string
	log      *slog.Logger
}

func (c *callTracker) put(m *Msg, status string, result []byte, err error) {
	if c == nil || c.kv == nil {
		return
	}
	id := m.Header.Get(HeaderCallID)
	if id == "" {
		return
	}
	st := CallStatus{CallID: id, Function: c.function, Status: status, Attempts: m.Delivered, UpdatedAt: time.Now().UTC()}
	if len(result) > 0 {
		if json.Valid(result) {
			st.Result = result
		} else {
			st.Result, _ = json.Marshal(string(result))
		}
	}
	if err != nil {
		e := AsError(err)
		st.Error = &ErrorBody{Code: e.Code, Message: e.Msg}
	}
	b, _ := json.Marshal(st)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, perr := c.kv.Put(ctx, id, b); perr != nil {
		c.log.Warn("call status not recorded", "call_id", id, "status", status, "err", perr)
	}
}

func (c *callTracker) begin(batch []*Msg) {
	for _, m := range batch {
		c.put(m, CallRunning, nil, nil)
	}
}

func (c *callTracker) succeeded(m *Msg)         { c.put(m, CallSucceeded, m.result, nil) }
func (c *callTracker) failed(m *Msg, err error) { c.put(m, CallFailed, nil, err) }
func (c *callTracker) dead(m *Msg, err error)   { c.put(m, CallDead, nil, err) }
