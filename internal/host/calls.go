package host

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/wire"
)

// callTracker writes async call status for messages that carry a call id.
type callTracker struct {
	kv       jetstream.KeyValue
	function string
	log      *slog.Logger
}

func (c *callTracker) put(m *runtime.Msg, status string, result []byte, err error) {
	if c == nil || c.kv == nil {
		return
	}
	id := m.Header.Get(wire.HeaderCallID)
	if id == "" {
		return
	}
	st := wire.CallStatus{CallID: id, Function: c.function, Status: status, Attempts: m.Delivered, UpdatedAt: time.Now().UTC()}
	st.UserID, _ = strconv.ParseInt(m.Header.Get(wire.HeaderUserID), 10, 64) // set by the gateway only
	if len(result) > 0 {
		if json.Valid(result) {
			st.Result = result
		} else {
			st.Result, _ = json.Marshal(string(result))
		}
	}
	if err != nil {
		e := runtime.AsError(err)
		st.Error = &wire.ErrorBody{Code: e.Code, Message: e.Msg}
	}
	b, _ := json.Marshal(st)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, perr := c.kv.Put(ctx, id, b); perr != nil {
		c.log.Warn("call status not recorded", "call_id", id, "status", status, "err", perr)
	}
}

func (c *callTracker) begin(batch []*runtime.Msg) {
	for _, m := range batch {
		c.put(m, wire.CallRunning, nil, nil)
	}
}

func (c *callTracker) succeeded(m *runtime.Msg, result []byte) {
	c.put(m, wire.CallSucceeded, result, nil)
}
func (c *callTracker) failed(m *runtime.Msg, err error) { c.put(m, wire.CallFailed, nil, err) }
func (c *callTracker) dead(m *runtime.Msg, err error)   { c.put(m, wire.CallDead, nil, err) }
