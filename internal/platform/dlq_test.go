package platform_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/runtime/wire"
)

type dlqPage struct {
	DeadLetters []struct {
		Seq             uint64      `json:"seq"`
		Subject         string      `json:"subject"`
		Stream          string      `json:"stream"`
		Error           string      `json:"error"`
		Deliveries      int         `json:"deliveries"`
		Time            time.Time   `json:"time"`
		MsgID           string      `json:"msg_id"`
		Payload         string      `json:"payload"`
		PayloadEncoding string      `json:"payload_encoding"`
		Headers         nats.Header `json:"headers"`
	} `json:"dead_letters"`
	Total uint64 `json:"total"`
	Next  uint64 `json:"next"`
}

type replayAnswer struct {
	Replayed  int    `json:"replayed"`
	Failed    int    `json:"failed"`
	Remaining uint64 `json:"remaining"`
	Results   []struct {
		Seq      uint64 `json:"seq"`
		Replayed bool   `json:"replayed"`
		Subject  string `json:"subject"`
		Error    string `json:"error"`
	} `json:"results"`
}

const adminAuth = "Authorization: Bearer " + testenv.Token

func listDLQ(t *testing.T, env *testenv.Env, query string) dlqPage {
	t.Helper()
	r := env.Do(t, "GET", "/admin/dlq?"+query, nil, adminAuth)
	if r.Status != 200 {
		t.Fatalf("GET /admin/dlq?%s = %d %s", query, r.Status, r.Body)
	}
	var p dlqPage
	r.JSON(t, &p)
	return p
}

// TestDeadLetterAdmin dead-letters messages of a stream function that
// fails every delivery without a replay marker, then lists, pages, replays
// (one, then all), discards, and checks every bad input.
func TestDeadLetterAdmin(t *testing.T) {
	env := testenv.Start(t, nil)
	env.Deploy(t, streamManifest("doomed", `{failUnlessReplayed: true}`, 2, "50ms"))
	env.Deploy(t, streamManifest("other", `{fail: true}`, 1, "50ms"))
	ctx := context.Background()
	testenv.Eventually(t, 2*time.Second, "streams exist", func() bool {
		_, e1 := env.JS.Stream(ctx, "TEST_DOOMED")
		_, e2 := env.JS.Stream(ctx, "TEST_OTHER")
		return e1 == nil && e2 == nil
	})
	for i := 1; i <= 3; i++ {
		m := &nats.Msg{Subject: "test.doomed", Data: []byte(fmt.Sprintf(`{"n":%d}`, i)),
			Header: nats.Header{"X-Trace": {fmt.Sprint("t", i)}, wire.HeaderMsgID: {fmt.Sprint("client-", i)}}}
		if _, err := env.JS.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := env.JS.Publish(ctx, "test.other", []byte("theirs")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "3 dead letters of doomed, 1 of other", func() bool {
		return listDLQ(t, env, "function=doomed").Total == 3 && listDLQ(t, env, "function=other").Total == 1
	})
	otherSeq := listDLQ(t, env, "function=other").DeadLetters[0].Seq

	page := listDLQ(t, env, "function=doomed")
	if len(page.DeadLetters) != 3 || page.Next != 0 {
		t.Fatalf("list = %+v", page)
	}
	seqs := make([]uint64, 3)
	for i, d := range page.DeadLetters {
		seqs[i] = d.Seq
		want := fmt.Sprintf(`{"n":%d}`, i+1)
		if d.Subject != "test.doomed" || d.Stream != "TEST_DOOMED" || d.Error != "failing on purpose" || d.Deliveries != 2 ||
			d.Payload != want || d.PayloadEncoding != "utf-8" || d.MsgID != fmt.Sprint("client-", i+1) ||
			d.Headers.Get("X-Trace") != fmt.Sprint("t", i+1) || time.Since(d.Time) > time.Minute {
			t.Errorf("dead letter %d = %+v", i, d)
		}
		for k := range d.Headers {
			if strings.HasPrefix(k, "Surge-Dlq-") || k == wire.HeaderMsgID {
				t.Errorf("dead letter %d lists the DLQ's own header %s", i, k)
			}
		}
	}
	// Paging: two, then the rest.
	p1 := listDLQ(t, env, "function=doomed&limit=2")
	if len(p1.DeadLetters) != 2 || p1.Next != seqs[1] || p1.Total != 3 {
		t.Fatalf("page 1 = %+v", p1)
	}
	p2 := listDLQ(t, env, fmt.Sprintf("function=doomed&limit=2&after=%d", p1.Next))
	if len(p2.DeadLetters) != 1 || p2.DeadLetters[0].Seq != seqs[2] || p2.Next != 0 {
		t.Fatalf("page 2 = %+v", p2)
	}

	// Replay one: it runs again with its original headers and the marker,
	// succeeds, and its entry is gone.
	r := env.Do(t, "POST", "/admin/dlq/doomed/replay", []byte(fmt.Sprintf(`{"seq":[%d]}`, seqs[0])), adminAuth)
	var ra replayAnswer
	if r.Status != 200 {
		t.Fatalf("replay = %d %s", r.Status, r.Body)
	}
	r.JSON(t, &ra)
	if ra.Replayed != 1 || ra.Failed != 0 || len(ra.Results) != 1 || !ra.Results[0].Replayed || ra.Results[0].Subject != "test.doomed" {
		t.Fatalf("replay = %s", r.Body)
	}
	rec := recorderFor("doomed")
	replayedDelivery := func(seq uint64) *delivery {
		for _, d := range rec.deliveries() {
			if d.Header.Get(wire.HeaderReplay) == fmt.Sprint("dlq:", seq) {
				return &d
			}
		}
		return nil
	}
	testenv.Eventually(t, 5*time.Second, "replayed message delivered", func() bool { return replayedDelivery(seqs[0]) != nil })
	d := replayedDelivery(seqs[0])
	if d.Data != `{"n":1}` || d.Header.Get("X-Trace") != "t1" || d.Header.Get(wire.HeaderMsgID) != fmt.Sprint("replay:", seqs[0]) {
		t.Errorf("replayed delivery = %+v", d)
	}
	for k := range d.Header {
		if strings.HasPrefix(k, "Surge-Dlq-") {
			t.Errorf("replayed message carries %s", k)
		}
	}
	if p := listDLQ(t, env, "function=doomed"); p.Total != 2 || p.DeadLetters[0].Seq != seqs[1] {
		t.Errorf("after replay of %d: %+v", seqs[0], p)
	}
	// Replaying it again: no such dead letter any more.
	if r := env.Do(t, "POST", "/admin/dlq/doomed/replay", []byte(fmt.Sprintf(`{"seq":[%d]}`, seqs[0])), adminAuth); r.Status != 404 || r.ErrorCode() != "dead_letter_not_found" {
		t.Errorf("replay of a replayed seq = %d %s", r.Status, r.Body)
	}

	// A republish that is not acked (no stream takes the subject) leaves
	// the entry where it was. Its payload is not UTF-8: listed as base64.
	ack, err := env.JS.PublishMsg(ctx, &nats.Msg{Subject: "dlq.doomed", Data: []byte{0xff, 'l'},
		Header: nats.Header{wire.HeaderDLQSubject: {"nowhere.doomed"}, wire.HeaderDLQError: {"planted"}}})
	if err != nil {
		t.Fatal(err)
	}
	r = env.Do(t, "POST", "/admin/dlq/doomed/replay", []byte(fmt.Sprintf(`{"seq":[%d]}`, ack.Sequence)), adminAuth)
	ra = replayAnswer{}
	r.JSON(t, &ra)
	if r.Status != 200 || ra.Replayed != 0 || ra.Failed != 1 || ra.Remaining != 3 || !strings.Contains(ra.Results[0].Error, "nowhere.doomed") {
		t.Errorf("unacked replay = %d %s", r.Status, r.Body)
	}
	if p := listDLQ(t, env, "function=doomed"); p.Total != 3 || p.DeadLetters[2].Seq != ack.Sequence ||
		p.DeadLetters[2].PayloadEncoding != "base64" || p.DeadLetters[2].Payload != "/2w=" {
		t.Errorf("after an unacked replay: %+v", p)
	}
	// Discard it; twice is a 404.
	if r := env.Do(t, "DELETE", fmt.Sprintf("/admin/dlq/doomed/%d", ack.Sequence), nil, adminAuth); r.Status != 204 {
		t.Errorf("rm = %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, "DELETE", fmt.Sprintf("/admin/dlq/doomed/%d", ack.Sequence), nil, adminAuth); r.Status != 404 {
		t.Errorf("rm again = %d %s", r.Status, r.Body)
	}

	// Bad input.
	bad := []struct {
		name, method, path, body string
		noAuth                   bool
		wantStatus               int
		wantCode                 string
	}{
		{name: "no token", method: "GET", path: "/admin/dlq?function=doomed", noAuth: true, wantStatus: 401},
		{name: "unknown function", method: "GET", path: "/admin/dlq?function=nope", wantStatus: 404, wantCode: "function_not_found"},
		{name: "no function", method: "GET", path: "/admin/dlq", wantStatus: 400, wantCode: "invalid_request"},
		{name: "bad function name", method: "GET", path: "/admin/dlq?function=a.%3E", wantStatus: 400, wantCode: "invalid_request"},
		{name: "limit 0", method: "GET", path: "/admin/dlq?function=doomed&limit=0", wantStatus: 400, wantCode: "invalid_request"},
		{name: "limit too big", method: "GET", path: "/admin/dlq?function=doomed&limit=5000", wantStatus: 400, wantCode: "invalid_request"},
		{name: "after not a number", method: "GET", path: "/admin/dlq?function=doomed&after=x", wantStatus: 400, wantCode: "invalid_request"},
		{name: "rm unknown function", method: "DELETE", path: "/admin/dlq/nope/1", wantStatus: 404, wantCode: "function_not_found"},
		{name: "rm bad seq", method: "DELETE", path: "/admin/dlq/doomed/abc", wantStatus: 400, wantCode: "invalid_request"},
		{name: "rm seq 0", method: "DELETE", path: "/admin/dlq/doomed/0", wantStatus: 400, wantCode: "invalid_request"},
		{name: "rm seq of another function", method: "DELETE", path: fmt.Sprintf("/admin/dlq/doomed/%d", otherSeq), wantStatus: 404, wantCode: "dead_letter_not_found"},
		{name: "rm seq past the end", method: "DELETE", path: "/admin/dlq/doomed/999999", wantStatus: 404, wantCode: "dead_letter_not_found"},
		{name: "replay unknown function", method: "POST", path: "/admin/dlq/nope/replay", wantStatus: 404, wantCode: "function_not_found"},
		{name: "replay seq of another function", method: "POST", path: "/admin/dlq/doomed/replay", body: fmt.Sprintf(`{"seq":[%d,%d]}`, seqs[1], otherSeq), wantStatus: 404, wantCode: "dead_letter_not_found"},
		{name: "replay empty list", method: "POST", path: "/admin/dlq/doomed/replay", body: `{"seq":[]}`, wantStatus: 400, wantCode: "invalid_request"},
		{name: "replay seq 0", method: "POST", path: "/admin/dlq/doomed/replay", body: `{"seq":[0]}`, wantStatus: 400, wantCode: "invalid_request"},
		{name: "replay seq not a number", method: "POST", path: "/admin/dlq/doomed/replay", body: `{"seq":["x"]}`, wantStatus: 400, wantCode: "invalid_request"},
		{name: "replay unknown field", method: "POST", path: "/admin/dlq/doomed/replay", body: `{"seqs":[1]}`, wantStatus: 400, wantCode: "invalid_request"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			var h []string
			if !tt.noAuth {
				h = append(h, adminAuth)
			}
			r := env.Do(t, tt.method, tt.path, []byte(tt.body), h...)
			if r.Status != tt.wantStatus || (tt.wantCode != "" && r.ErrorCode() != tt.wantCode) {
				t.Errorf("= %d %s, want %d %s", r.Status, r.Body, tt.wantStatus, tt.wantCode)
			}
		})
	}
	// The refused replay named one good seq: nothing was replayed.
	if p := listDLQ(t, env, "function=doomed"); p.Total != 2 {
		t.Errorf("after refused replays: %+v", p)
	}
	if p := listDLQ(t, env, "function=other"); p.Total != 1 {
		t.Errorf("other's dead letters after the bad input: %+v", p)
	}

	// Replay all: both go, both run with their marker.
	r = env.Do(t, "POST", "/admin/dlq/doomed/replay", nil, adminAuth)
	ra = replayAnswer{}
	r.JSON(t, &ra)
	if r.Status != 200 || ra.Replayed != 2 || ra.Failed != 0 || ra.Remaining != 0 {
		t.Fatalf("replay all = %d %s", r.Status, r.Body)
	}
	testenv.Eventually(t, 5*time.Second, "both replayed", func() bool {
		return replayedDelivery(seqs[1]) != nil && replayedDelivery(seqs[2]) != nil
	})
	testenv.Eventually(t, 5*time.Second, "replayed messages acked", func() bool {
		c, err := env.JS.Consumer(ctx, "TEST_DOOMED", "doomed")
		if err != nil {
			return false
		}
		ci, err := c.Info(ctx)
		return err == nil && ci.NumAckPending == 0 && ci.NumPending == 0 && ci.AckFloor.Stream == 6
	})
	if p := listDLQ(t, env, "function=doomed"); p.Total != 0 || len(p.DeadLetters) != 0 {
		t.Errorf("after replay all: %+v", p)
	}

	// A removed function's dead letters can still be handled.
	if r := env.Do(t, "DELETE", "/admin/functions/other", nil, adminAuth); r.Status != http.StatusNoContent {
		t.Fatalf("rm other = %d", r.Status)
	}
	if p := listDLQ(t, env, "function=other"); p.Total != 1 || p.DeadLetters[0].Payload != "theirs" {
		t.Errorf("removed function's dead letters: %+v", p)
	}
	if r := env.Do(t, "DELETE", fmt.Sprintf("/admin/dlq/other/%d", otherSeq), nil, adminAuth); r.Status != 204 {
		t.Errorf("rm of a removed function's dead letter = %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, "GET", "/admin/dlq?function=other", nil, adminAuth); r.Status != 404 {
		t.Errorf("removed function without dead letters = %d %s", r.Status, r.Body)
	}
}

// TestDeadLetterReplayAllIsBounded: a replay of all takes the oldest 1000
// and says how many are left; the next call takes the rest.
func TestDeadLetterReplayAllIsBounded(t *testing.T) {
	env := testenv.Start(t, nil)
	env.Deploy(t, streamManifest("bulk", `{failUnlessReplayed: true}`, 1, "50ms"))
	ctx := context.Background()
	testenv.Eventually(t, 2*time.Second, "stream", func() bool { _, err := env.JS.Stream(ctx, "TEST_BULK"); return err == nil })
	// Planted dead letters (as deadLetter writes them), faster than 1002 failures.
	const n = 1002
	msgs := make([]*nats.Msg, n)
	for i := range msgs {
		msgs[i] = &nats.Msg{Subject: "dlq.bulk", Data: []byte(fmt.Sprint(i)),
			Header: nats.Header{wire.HeaderDLQSubject: {"test.bulk"}, wire.HeaderDLQError: {"planted"}}}
	}
	for i, a := range testenv.PublishAsync(t, env.JS, msgs) {
		if a == nil {
			t.Fatalf("dead letter %d not stored", i)
		}
	}
	for _, want := range []struct{ replayed, remaining int }{{1000, 2}, {2, 0}} {
		r := env.Do(t, "POST", "/admin/dlq/bulk/replay", nil, adminAuth)
		var ra replayAnswer
		r.JSON(t, &ra)
		if r.Status != 200 || ra.Replayed != want.replayed || ra.Failed != 0 || ra.Remaining != uint64(want.remaining) {
			t.Fatalf("replay all = %d replayed %d failed %d remaining %d, want %+v", r.Status, ra.Replayed, ra.Failed, ra.Remaining, want)
		}
	}
	testenv.Eventually(t, 10*time.Second, "all replayed and acked", func() bool {
		c, err := env.JS.Consumer(ctx, "TEST_BULK", "bulk")
		if err != nil {
			return false
		}
		ci, err := c.Info(ctx)
		return err == nil && ci.AckFloor.Stream == n && ci.NumAckPending == 0
	})
}

// TestDeadAsyncCallReplayed: an async call that died is run again by a
// replay, under the same call id, and its status follows.
func TestDeadAsyncCallReplayed(t *testing.T) {
	env := testenv.Start(t, nil)
	env.Deploy(t, strings.Replace(failManifest, "path: /v1/fail}", "path: /v1/fail, async: true}\n  retry: {maxDeliver: 1}", 1))
	r := env.Do(t, "POST", "/v1/fail?status=500", []byte(`{}`))
	if r.Status != 202 {
		t.Fatalf("async route = %d %s", r.Status, r.Body)
	}
	id := r.Header.Get("X-Call-Id")
	var st wire.CallStatus
	testenv.Eventually(t, 5*time.Second, "call dead", func() bool {
		env.Do(t, "GET", "/calls/"+id, nil).JSON(t, &st)
		return st.Status == wire.CallDead
	})
	p := listDLQ(t, env, "function=failer")
	if p.Total != 1 || p.DeadLetters[0].Subject != "calls.failer" || p.DeadLetters[0].Headers.Get(wire.HeaderCallID) != id {
		t.Fatalf("dead letters = %+v", p)
	}
	r = env.Do(t, "POST", "/admin/dlq/failer/replay", nil, adminAuth)
	var ra replayAnswer
	r.JSON(t, &ra)
	if r.Status != 200 || ra.Replayed != 1 {
		t.Fatalf("replay = %d %s", r.Status, r.Body)
	}
	testenv.Eventually(t, 5*time.Second, "replayed call succeeded", func() bool {
		env.Do(t, "GET", "/calls/"+id, nil).JSON(t, &st)
		return st.Status == wire.CallSucceeded
	})
	if string(st.Result) != `{"ok":"yes"}` {
		t.Errorf("result = %s", st.Result)
	}
}
