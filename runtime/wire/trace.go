package wire

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
)

// W3C Trace Context (https://www.w3.org/TR/trace-context/) on the wire.
// The gateway continues the caller's trace (or starts one) and sends the
// traceparent of its own hop to the function; a function's publishes carry
// a child of the traceparent it was called with, so one request can be
// followed across processes by its trace id in the logs.
const (
	// HeaderTraceparent is W3C's traceparent, lower case as the
	// specification writes it (NATS headers are case-sensitive).
	HeaderTraceparent = "traceparent"
	// HeaderTracestate is W3C's tracestate, passed on unchanged.
	HeaderTracestate = "tracestate"
	// HeaderTraceresponse is W3C Trace Context Level 2's traceresponse:
	// the gateway's own hop, so a caller that sent no traceparent learns
	// the trace id it was given.
	HeaderTraceresponse = "Traceresponse"
)

// traceparentLen is the length of a version 00 traceparent:
// "00-" 32 hex "-" 16 hex "-" 2 hex.
const traceparentLen = 55

// ChildTraceparent returns a traceparent for a new hop: the trace id and
// flags of parent with a new span id, or, when parent is empty or not a
// valid traceparent, a new trace (flags 00: not sampled). A traceparent of
// a later version is read as version 00, as the specification asks.
func ChildTraceparent(parent string) string {
	var b [traceparentLen]byte
	if !validTraceparent(parent) {
		copy(b[:], "00-")
		putHex(b[3:19], rand.Uint64()|1) // never all zero
		putHex(b[19:35], rand.Uint64())
		copy(b[35:], "-")
		copy(b[53:], "00")
	} else {
		copy(b[:], parent[:traceparentLen])
		copy(b[:2], "00")
	}
	b[35] = '-'
	putHex(b[36:52], rand.Uint64()|1)
	b[52] = '-'
	return string(b[:])
}

// TraceID is the trace id of a valid traceparent, "" otherwise; logs carry it.
func TraceID(traceparent string) string {
	if !validTraceparent(traceparent) {
		return ""
	}
	return traceparent[3:35]
}

func putHex(dst []byte, v uint64) {
	var raw [8]byte
	binary.BigEndian.PutUint64(raw[:], v)
	hex.Encode(dst, raw[:])
}

// validTraceparent reports whether s is a traceparent this code can
// continue: version 00 of exactly 55 characters, or a later version
// (not ff) whose first 55 characters have that shape and are followed by
// nothing or a '-'; lower-case hex; trace and span ids not all zero.
func validTraceparent(s string) bool {
	if len(s) < traceparentLen || (len(s) > traceparentLen && (s[:2] == "00" || s[traceparentLen] != '-')) {
		return false
	}
	if s[2] != '-' || s[35] != '-' || s[52] != '-' || s[:2] == "ff" {
		return false
	}
	return lowerHex(s[:2]) && lowerHex(s[3:35]) && lowerHex(s[36:52]) && lowerHex(s[53:55]) &&
		!zeros(s[3:35]) && !zeros(s[36:52])
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func zeros(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}
