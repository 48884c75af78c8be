package gateway

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"

	"github.com/surgefn/surge/runtime/wire"
)

// forwarded are the HTTP request headers a function sees, besides the
// method, path, query, path parameters, request id and authenticated user,
// which buildMsg sets itself. It is an allow-list: every other client
// header stays behind, so a client can never send a Surge-* header (a
// forged Surge-User-Id, Surge-Call-Id, Surge-Function...) or a Nats-* one
// to a function, nor its Authorization.
var forwarded = [...]string{
	wire.HeaderContentType,
	wire.HeaderIdempotencyKey,
	"If-Match", // the user centre's optimistic lock
	"Accept",
	"User-Agent",
	"X-Forwarded-For",
}

// hop is the request id and the traceparent of the gateway's hop that the
// requestID middleware put on the response.
func hop(c echo.Context) (reqID, traceparent string) {
	h := c.Response().Header()
	return first(h[echo.HeaderXRequestID]), first(h[wire.HeaderTraceresponse])
}

// first is vs[0], "" for none.
func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// The headers invokeSync and invokeAsync add to buildMsg's (its extra).
const (
	syncHeaders  = 2 // the client IP, the deadline
	asyncHeaders = 4 // the client IP, the call id, the function, the Nats-Msg-Id
)

// buildMsg turns an HTTP call into the NATS message a function receives:
// body as data, request details as headers; user, when not 0, is the end
// user the gateway authenticated (Surge-User-Id). extra is how many
// headers the caller adds (the deadline of a sync call, the three of an
// async one, the client IP): the header map is sized once for them all,
// no larger, since a map sized for more than eight takes a table of its
// own. Every value slice is the message's own: a local call hands the
// header to the function (host.Host.LocalCall), which may write to it.
func buildMsg(subject string, r *http.Request, reqID, traceparent string, p *Params, user int64, body []byte, extra int) *nats.Msg {
	var fwd [len(forwarded)]string
	n := 2 + p.n + extra // method and path
	for i, k := range forwarded {
		if fwd[i] = r.Header.Get(k); fwd[i] != "" {
			n++
		}
	}
	// tracestate belongs to the caller's trace: it goes on only when that
	// trace was continued, not when a new one was started.
	var tracestate string
	if traceparent != "" {
		if ts := r.Header.Get(wire.HeaderTracestate); ts != "" && wire.TraceID(r.Header.Get(wire.HeaderTraceparent)) != "" {
			tracestate = ts
		}
	}
	for _, v := range []string{r.URL.RawQuery, reqID, traceparent, tracestate} {
		if v != "" {
			n++
		}
	}
	if user > 0 {
		n++
	}
	h := make(nats.Header, n)
	h[wire.HeaderMethod] = []string{r.Method}
	h[wire.HeaderPath] = []string{r.URL.Path}
	if r.URL.RawQuery != "" {
		h[wire.HeaderQuery] = []string{r.URL.RawQuery}
	}
	p.Each(func(k, v string) { h[wire.HeaderParamPrefix+k] = []string{v} })
	for i, k := range forwarded {
		if fwd[i] != "" {
			h[k] = []string{fwd[i]}
		}
	}
	if reqID != "" {
		h[wire.HeaderRequestID] = []string{reqID}
	}
	if traceparent != "" {
		h[wire.HeaderTraceparent] = []string{traceparent}
	}
	if tracestate != "" {
		h[wire.HeaderTracestate] = []string{tracestate}
	}
	if user > 0 {
		h[wire.HeaderUserID] = []string{strconv.FormatInt(user, 10)}
	}
	return &nats.Msg{Subject: subject, Header: h, Data: body}
}

// setClientIP adds Surge-Client-Ip, the client address as the proxies
// allow it to be known (a client-sent copy never got into msg: buildMsg
// forwards no Surge-* header).
func setClientIP(msg *nats.Msg, r *http.Request, proxies TrustedProxies) {
	if ip := proxies.ClientIP(r); ip != "" {
		msg.Header[wire.HeaderClientIP] = []string{ip}
	}
}

// writeReply copies a function's reply to the HTTP response: the status
// the function chose (200 by default), its content type (JSON by default)
// and its headers other than the platform's own.
func writeReply(w http.ResponseWriter, m *nats.Msg) {
	status := http.StatusOK
	hdr := w.Header()
	ct := "application/json"
	for k, v := range m.Header {
		switch {
		case k == wire.HeaderStatus:
			if n, err := strconv.Atoi(v[0]); err == nil && n >= 200 && n <= 599 {
				status = n
			}
		case k == wire.HeaderContentType:
			ct = v[0]
		case len(k) > 6 && (k[:6] == "Surge-" || k[:5] == "Nats-"):
		case k == wire.HeaderRequestID:
		default:
			hdr[http.CanonicalHeaderKey(k)] = v
		}
	}
	hdr.Set("Content-Type", ct)
	w.WriteHeader(status)
	_, _ = w.Write(m.Data)
}
