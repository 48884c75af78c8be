package platform_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/internal/testenv"
)

const readTimeout = 300 * time.Millisecond

// TestBodyTimeout: a client that sends its headers and then stalls in its
// body gets 408 body_timeout at --read-timeout and its connection closed; a
// request that arrives in time leaves the call unbounded by it, however
// long the function runs after it, and its connection serves the next one.
// The calls are local ones and, with NoLocalCalls, go through NATS (the
// stalled body is refused before either, so it runs once).
func TestBodyTimeout(t *testing.T) {
	for _, noLocal := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoLocalCalls=%t", noLocal), func(t *testing.T) { testBodyTimeout(t, noLocal) })
	}
}

func testBodyTimeout(t *testing.T, noLocal bool) {
	env := testenv.Start(t, func(o *platform.Options) { o.ReadTimeout, o.NoLocalCalls = readTimeout, noLocal })
	env.Deploy(t, `
apiVersion: surge/v1
kind: Function
metadata: {name: sleepy-post}
spec:
  handler: test.sleep
  trigger: {subject: fn.sleepy.post}
  http: {method: POST, path: /v1/sleep-post}
  timeout: 5s
`)
	t.Run("stalled body", func(t *testing.T) {
		if noLocal {
			t.Skip("refused before the call is sent either way")
		}
		u, err := url.Parse(env.URL)
		if err != nil {
			t.Fatal(err)
		}
		// The server's clock starts at the accept, before the dial returns.
		start := time.Now()
		conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// 2 of the 100 bytes declared, then nothing.
		fmt.Fprintf(conn, "POST /v1/sleep-post HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{}", u.Host)
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("no answer to a stalled body: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		took := time.Since(start)
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("status = %d, want 408 (body %s)", resp.StatusCode, body)
		}
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != "body_timeout" {
			t.Errorf("body %s, want error code body_timeout", body)
		}
		if took < readTimeout || took > readTimeout+2*time.Second {
			t.Errorf("answered after %s, want about the body timeout %s", took.Round(time.Millisecond), readTimeout)
		}
		// The server closes the connection rather than wait for the rest.
		if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
			t.Errorf("read after the 408 = %v, want EOF (connection closed)", err)
		}
	})
	t.Run("slow function after a quick body", func(t *testing.T) {
		// The function runs five read timeouts: the read deadline must not
		// end the call (net/http clears it when the body has been read, a
		// declared length or chunked).
		ms := int(5 * readTimeout / time.Millisecond)
		for _, chunked := range []bool{false, true} {
			var body io.Reader = strings.NewReader(`{"x":1}`)
			if chunked {
				body = io.MultiReader(body) // no length: sent chunked
			}
			req, err := http.NewRequest("POST", fmt.Sprintf("%s/v1/sleep-post?ms=%d", env.URL, ms), body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := env.HTTP.Do(req)
			if err != nil {
				t.Fatalf("chunked=%t: %v", chunked, err)
			}
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), fmt.Sprintf(`"slept":%d`, ms)) {
				t.Fatalf("chunked=%t: status %d body %s, want 200 after %d ms", chunked, resp.StatusCode, b, ms)
			}
		}
		// And the connection they came on serves the next call.
		reused := false
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace),
			"POST", env.URL+"/v1/sleep-post?ms=1", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := env.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !reused {
			t.Fatalf("next call: status %d on a reused connection %t, want 200 on the same connection", resp.StatusCode, reused)
		}
	})
}

// TestClientHangUp: a client that hangs up while its sync call runs is
// answered nothing and counted as 499 client_closed; its call's slot is
// given back (the next call is served at once). Both for local calls and
// calls through NATS.
func TestClientHangUp(t *testing.T) {
	for _, noLocal := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoLocalCalls=%t", noLocal), func(t *testing.T) { testClientHangUp(t, noLocal) })
	}
}

func testClientHangUp(t *testing.T, noLocal bool) {
	env := testenv.Start(t, func(o *platform.Options) { o.NoLocalCalls = noLocal })
	env.Deploy(t, `
apiVersion: surge/v1
kind: Function
metadata: {name: hangup}
spec:
  handler: test.sleep
  trigger: {subject: fn.hangup}
  http: {method: POST, path: /v1/hangup}
  timeout: 5s
  concurrency: 1
`)
	// Half a second: the call reaches the function well before, even
	// on a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", env.URL+"/v1/hangup?ms=1500", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := env.HTTP.Do(req); err == nil {
		_ = resp.Body.Close()
		t.Fatalf("status %d, want the client's own timeout", resp.StatusCode)
	}
	// The function's one slot frees when its handler ends (1.5 s); a call
	// then is served, whatever the hung-up call left.
	time.Sleep(1500 * time.Millisecond)
	if r := env.Do(t, "POST", "/v1/hangup?ms=1", []byte(`{}`)); r.Status != http.StatusOK {
		t.Fatalf("next call: status %d body %s", r.Status, r.Body)
	}
	want := regexp.MustCompile(`(?m)^surge_gateway_requests_total\{code="499",route="POST /v1/hangup"\} 1$`)
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := env.Do(t, "GET", "/metrics", nil)
		if want.Match(m.Body) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics has no 499 for POST /v1/hangup:\n%s", grepLines(string(m.Body), "surge_gateway_requests_total"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
