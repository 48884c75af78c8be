package runtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// DecodeJSON decodes exactly one JSON value from data into v, refusing
// unknown fields and anything but white space after the value. A failure
// is a 400 naming the field at fault under prefix ("" for the top level,
// or an element such as "[3]"); a *Error that a field's UnmarshalJSON
// returned passes through as it is.
func DecodeJSON(data []byte, v any, prefix string) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			return BadRequest(prefix, "malformed JSON: unexpected data after the value")
		}
		return nil
	}
	join := func(field string) string {
		switch {
		case prefix == "":
			return field
		case field == "":
			return prefix
		}
		return prefix + "." + field
	}
	var re *Error
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &re):
		return re
	case errors.As(err, &te):
		return BadRequest(join(te.Field), "must be a JSON %s, got %s", jsonKind(te.Type.Kind().String()), te.Value)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return BadRequest(join(strings.Trim(name, `"`)), "unknown field")
	}
	return BadRequest(prefix, "malformed JSON: %s", err.Error())
}

// jsonKind names a Go kind the way a JSON author thinks of it.
func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "map", "struct":
		return "object"
	case "slice", "array":
		return "array"
	case "bool":
		return "boolean"
	}
	return fmt.Sprintf("number (%s)", kind)
}
