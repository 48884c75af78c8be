package orders

import (
	"encoding/json"
	"errors"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/surgefn/surge/runtime"
)

// explain turns a body the strict decoder refused into a 400 naming the
// field at fault. encoding/json reports an unknown field without its path
// and a type error without the array index ("items.qty"), so the body is
// walked again here, field by field. This is the error path only: the
// valid path never comes here.
func explain(data []byte, decErr error, fields []string) *runtime.Error {
	var syn *json.SyntaxError
	switch {
	case errors.As(decErr, &syn):
		return runtime.BadRequest("body", "malformed JSON at offset %d: %s", syn.Offset, syn.Error())
	case errors.Is(decErr, io.ErrUnexpectedEOF), errors.Is(decErr, io.EOF):
		return runtime.BadRequest("body", "malformed JSON: unexpected end of input")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		if errors.As(err, &syn) {
			return runtime.BadRequest("body", "malformed JSON at offset %d: %s", syn.Offset, syn.Error())
		}
		return runtime.BadRequest("body", "must be a JSON object")
	}
	for _, k := range slices.Sorted(maps.Keys(top)) {
		name, ok := match(k, fields)
		if !ok {
			return runtime.BadRequest(k, "unknown field")
		}
		if e := explainField(name, top[k]); e != nil {
			return e
		}
	}
	if decErr == nil {
		return runtime.BadRequest("body", "must be a JSON object")
	}
	return runtime.BadRequest("body", "%s", strings.TrimPrefix(decErr.Error(), "json: "))
}

// explainField checks that raw has the JSON type field name needs.
func explainField(name string, raw json.RawMessage) *runtime.Error {
	switch name {
	case "user_id", "total_cents":
		var n int64
		if json.Unmarshal(raw, &n) != nil {
			want := "a 64-bit integer"
			if name == "user_id" {
				want = "a positive 64-bit integer"
			}
			return runtime.BadRequest(name, "must be %s, got %s", want, clip(raw))
		}
	case "page", "size":
		var n int
		if json.Unmarshal(raw, &n) != nil {
			return runtime.BadRequest(name, "must be an integer, got %s", clip(raw))
		}
	case "currency", "order_id", "created_at", "after":
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return runtime.BadRequest(name, "must be a string, got %s", clip(raw))
		}
	case "items":
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return runtime.BadRequest("items", "must be an array of items, got %s", clip(raw))
		}
		for i, r := range items {
			if e := explainItem(i, r); e != nil {
				return e
			}
		}
	}
	return nil
}

func explainItem(i int, raw json.RawMessage) *runtime.Error {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil || obj == nil {
		return runtime.BadRequest("items["+strconv.Itoa(i)+"]", "must be an object, got %s", clip(raw))
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		name, ok := match(k, itemFields)
		if !ok {
			return runtime.BadRequest(itemField(i, k), "unknown field")
		}
		v := obj[k]
		var err error
		switch name {
		case "sku":
			var s string
			err = json.Unmarshal(v, &s)
		case "qty":
			var n int
			err = json.Unmarshal(v, &n)
		case "price_cents":
			var n int64
			err = json.Unmarshal(v, &n)
		}
		if err != nil {
			want := "an integer"
			if name == "sku" {
				want = "a string"
			}
			return runtime.BadRequest(itemField(i, name), "must be %s, got %s", want, clip(v))
		}
	}
	return nil
}

// match finds k among fields the way encoding/json does: exact, else
// case-insensitive.
func match(k string, fields []string) (string, bool) {
	for _, f := range fields {
		if f == k {
			return f, true
		}
	}
	for _, f := range fields {
		if strings.EqualFold(f, k) {
			return f, true
		}
	}
	return "", false
}

// clip shortens a JSON value for an error message.
func clip(raw json.RawMessage) string {
	const max = 40
	s := string(raw)
	if len(s) > max {
		s = s[:max] + "..."
	}
	return s
}
