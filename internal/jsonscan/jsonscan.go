// Package jsonscan reads JSON in one known compact form, front to back,
// for the fast paths that skip encoding/json: an order as order-accept
// writes it (functions/orders), a sale's takes header (runtime/stock).
// Each method consumes what it matched and reports false for anything
// else; the caller then hands the whole input to encoding/json, so the two
// paths decode alike and differ in speed only.
package jsonscan

import "unicode/utf8"

// Scanner consumes In from the front. Its methods store what they read
// in dst and report whether it matched; on false In is as it was.
type Scanner[T ~string | ~[]byte] struct{ In T }

// Lit consumes s when In starts with it.
func (p *Scanner[T]) Lit(s string) bool {
	if len(p.In) < len(s) || string(p.In[:len(s)]) != s {
		return false
	}
	p.In = p.In[len(s):]
	return true
}

// Str consumes a JSON string without escapes (no backslash, no control
// character) of valid UTF-8, which encoding/json would decode to the same
// bytes, into dst: for a string In a part of it, for []byte a copy.
func (p *Scanner[T]) Str(dst *string) bool {
	if len(p.In) == 0 || p.In[0] != '"' {
		return false
	}
	ascii := true
	for i := 1; i < len(p.In); i++ {
		switch c := p.In[i]; {
		case c == '"':
			s := p.In[1:i]
			if !ascii && !validUTF8(s) {
				return false // encoding/json would replace the bad bytes
			}
			*dst = string(s)
			p.In = p.In[i+1:]
			return true
		case c == '\\' || c < 0x20:
			return false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return false
}

func validUTF8[T ~string | ~[]byte](s T) bool {
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		var buf [utf8.UTFMax]byte
		n := copy(buf[:], s[i:min(i+utf8.UTFMax, len(s))])
		r, size := utf8.DecodeRune(buf[:n])
		if r == utf8.RuneError && size <= 1 {
			return false
		}
		i += size
	}
	return true
}

// Int consumes a JSON integer that fits an int64 into dst: an optional
// minus, then 0 or a digit 1-9 and more digits, not followed by a fraction
// or an exponent.
func (p *Scanner[T]) Int(dst *int64) bool {
	b := p.In
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	n := 0
	for n < len(b) && '0' <= b[n] && b[n] <= '9' {
		n++
	}
	if n == 0 || n > 19 || n > 1 && b[0] == '0' {
		return false
	}
	if n < len(b) && (b[n] == '.' || b[n] == 'e' || b[n] == 'E') {
		return false
	}
	var v uint64
	for i := range n {
		v = v*10 + uint64(b[i]-'0') // 19 digits fit in a uint64
	}
	switch {
	case !neg && v > 1<<63-1, neg && v > 1<<63:
		return false
	case neg:
		*dst = -int64(v) // -(1<<63) wraps to itself, the minimum
	default:
		*dst = int64(v)
	}
	p.In = b[n:]
	return true
}
