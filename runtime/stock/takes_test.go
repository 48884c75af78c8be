package stock

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// wantTakes is what encoding/json makes of v, as applyLocked read it
// before parseTakes.
func wantTakes(v string) ([]Taken, bool) { return decodeTakesJSON(v, nil) }

// entry is one take as assemble writes it.
func entry(t *testing.T, claim, holder string, units int64, key string) string {
	t.Helper()
	b, err := json.Marshal([4]any{claim, holder, units, key})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDecodeTakes: the takes assemble writes are parsed directly, to what
// encoding/json makes of them; other JSON (escapes, spaces, non-ASCII,
// other shapes) gives the same as encoding/json; what is not an array of
// takes is refused.
func TestDecodeTakes(t *testing.T) {
	written := "[" + strings.Join([]string{
		entry(t, "01JCLAIM0000000000000000A", "42", 1, ""),
		entry(t, "01JCLAIM0000000000000000B", "7", 3, "retry-1"),
		entry(t, "c", "h", 999999999999999, "k"),
	}, ",") + "]"
	if _, ok := parseTakes(written, nil); !ok {
		t.Errorf("parseTakes refused what assemble writes: %s", written)
	}
	for _, v := range []string{
		written,
		"[]",
		entry(t, "a", "b", 2, "") + "", // not an array of takes: one take
		"[" + entry(t, `q"uote`, "h", 1, `back\slash`) + "]",
		"[" + entry(t, "<&>", "h", 1, "") + "]", // escaped as \u003c by json.Marshal
		"[" + entry(t, "ünï", "h", 1, "κλειδί") + "]",
		`[ ["a","b",1,""] ]`,
		`[["a","b",1.0,""]]`,
		`[["a","b",0,""]]`,
		`[["a","b",01,""]]`,
		`[["a","b",-1,""]]`,
		`[["a","b",1e3,""]]`,
		`[["a","b",1234567890123456,""]]`,
		`[["a","b",1,""],]`,
		`[["a","b",1,""]`,
		`[["a","b",1]]`,
		`[["a","b",1,"",5]]`,
		`[[1,2,3,4]]`,
		`[["a","b","1","k"]]`,
		`[["a","b",1,"k"]]x`,
		`null`,
		``,
		`[`,
		`["a"]`,
	} {
		want, wantOK := wantTakes(v)
		got, ok := decodeTakes(v, nil)
		if ok != wantOK || (ok && !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0)) {
			t.Errorf("decodeTakes(%s) = %v, %v; encoding/json gives %v, %v", v, got, ok, want, wantOK)
		}
	}
}

// FuzzDecodeTakes: decodeTakes agrees with encoding/json on any input.
func FuzzDecodeTakes(f *testing.F) {
	for _, s := range []string{`[["a","b",1,""]]`, `[["a","b",12,"k"],["c","d",3,""]]`, `[]`, `[["a\"","b",1,""]]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		want, wantOK := wantTakes(v)
		got, ok := decodeTakes(v, nil)
		if ok != wantOK || (ok && !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0)) {
			t.Fatalf("decodeTakes(%q) = %v, %v; encoding/json gives %v, %v", v, got, ok, want, wantOK)
		}
	})
}

func BenchmarkDecodeTakes(b *testing.B) {
	var sb strings.Builder
	sb.WriteByte('[')
	for i := range 1000 {
		if i > 0 {
			sb.WriteByte(',')
		}
		e, _ := json.Marshal([4]any{"01JCLAIM00000000000000" + string(rune('A'+i%26)), "1234567", 1, ""})
		sb.Write(e)
	}
	sb.WriteByte(']')
	v := sb.String()
	b.Run("parse", func(b *testing.B) {
		var out []Taken
		for b.Loop() {
			out, _ = decodeTakes(v, out[:0])
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			wantTakes(v)
		}
	})
}
