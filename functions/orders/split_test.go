package orders

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzSplitArray: splitArray accepts every valid JSON array and splits it
// as encoding/json does; what it accepts that is not valid JSON has an
// item that is not (decodeBatch rejects such a message whole).
func FuzzSplitArray(f *testing.F) {
	for _, s := range []string{
		`[]`, ` [ ] `, `[1]`, `[1,2]`, ` [ {"a":1} , {"b":[1,2,{"c":"]"}]} ] `,
		`["a\"],[", "\\"]`, `[{"order_id":"x","items":[{"sku":"A"}]}]`, `[[],[[]],{}]`,
		`[`, `]`, `[1,]`, `[,1]`, `[1 2]`, `[1}`, `[{]`, `[{"a":1}}]`, `["a]`, `["\`, `[1] x`,
		`[{"order_id": }]`, `[1,,2]`, `{"a":1}`, `[` + "\t\r\n" + `1` + "\n" + `]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		items, ok := splitArray(data)
		var raws []json.RawMessage
		valid := json.Unmarshal(data, &raws) == nil && firstNonSpace(data) >= 0 && data[firstNonSpace(data)] == '['
		if valid {
			if !ok {
				t.Fatalf("valid array %q refused", data)
			}
			if len(items) != len(raws) {
				t.Fatalf("%q: %d items, encoding/json finds %d", data, len(items), len(raws))
			}
			for i := range raws {
				if !bytes.Equal(items[i], bytes.TrimSpace(raws[i])) {
					t.Fatalf("%q: item %d is %q, encoding/json has %q", data, i, items[i], raws[i])
				}
			}
			return
		}
		if !ok {
			return
		}
		for _, it := range items {
			if !json.Valid(it) {
				return // decodeBatch rejects the message on this item
			}
		}
		t.Fatalf("%q is not a JSON array, yet split into %d valid items", data, len(items))
	})
}
