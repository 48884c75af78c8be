package jsonscan

import (
	"encoding/json"
	"testing"
)

// TestScanner: each method on a string and on []byte input, what it
// matches and what it leaves; on false the input is untouched.
func TestScanner(t *testing.T) {
	tests := []struct {
		name, kind, in string
		want           any // false: no match
		rest           string
	}{
		{"lit", "lit", `{"a":1`, true, "1"},
		{"lit too short", "lit", `{"a`, false, ""},
		{"lit other", "lit", `{"b":1`, false, ""},
		{"str", "str", `"ab c",`, "ab c", ","},
		{"str utf-8", "str", `"秒杀"]`, "秒杀", "]"},
		{"str empty", "str", `""`, "", ""},
		{"str escape", "str", `"a\"b"`, false, ""},
		{"str control", "str", "\"a\tb\"", false, ""},
		{"str bad utf-8", "str", "\"a\xffb\"", false, ""},
		{"str unterminated", "str", `"ab`, false, ""},
		{"int", "int", `42,`, int64(42), ","},
		{"int negative", "int", `-7]`, int64(-7), "]"},
		{"int zero", "int", `0}`, int64(0), "}"},
		{"int min", "int", `-9223372036854775808`, int64(-1 << 63), ""},
		{"int max", "int", `9223372036854775807`, int64(1<<63 - 1), ""},
		{"int overflow", "int", `9223372036854775808`, false, ""},
		{"int leading zero", "int", `01`, false, ""},
		{"int fraction", "int", `1.5`, false, ""},
		{"int exponent", "int", `1e3`, false, ""},
		{"int minus alone", "int", `-`, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Scanner[string]{In: tt.in}
			got, left := scan(p, tt.kind), p.In
			b := &Scanner[[]byte]{In: []byte(tt.in)}
			bgot, bleft := scan(b, tt.kind), string(b.In)
			want, wantLeft := tt.want, tt.rest
			if want == false {
				wantLeft = tt.in
			}
			if got != want || left != wantLeft {
				t.Errorf("string: %v, leaving %q; want %v, leaving %q", got, left, want, wantLeft)
			}
			if bgot != want || bleft != wantLeft {
				t.Errorf("[]byte: %v, leaving %q; want %v, leaving %q", bgot, bleft, want, wantLeft)
			}
		})
	}
}

// scan runs the method kind names: what it read, true for a Lit that
// matched, false for no match.
func scan[T ~string | ~[]byte](p *Scanner[T], kind string) any {
	switch kind {
	case "lit":
		return p.Lit(`{"a":`)
	case "str":
		var s string
		if p.Str(&s) {
			return s
		}
	default:
		var n int64
		if p.Int(&n) {
			return n
		}
	}
	return false
}

// FuzzStr: what Str accepts, encoding/json decodes to the same string.
func FuzzStr(f *testing.F) {
	for _, s := range []string{`"a"`, `"秒杀"`, `"a\"b"`, "\"\xff\"", `""`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p := Scanner[string]{In: in}
		var got string
		if !p.Str(&got) {
			return
		}
		var want string
		if err := json.Unmarshal([]byte(in[:len(in)-len(p.In)]), &want); err != nil || got != want {
			t.Fatalf("Str(%q) = %q; encoding/json: %q, %v", in, got, want, err)
		}
	})
}
