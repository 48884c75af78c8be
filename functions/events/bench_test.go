package events

import (
	"strings"
	"testing"
)

func BenchmarkParse1000(b *testing.B) {
	parts := make([]string, 1000)
	for i := range parts {
		parts[i] = evJSON(i+1, "view", "item-1234")
	}
	body := []byte("[" + strings.Join(parts, ",") + "]")
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Parse(body); err != nil {
			b.Fatal(err)
		}
	}
}
