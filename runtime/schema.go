package runtime

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// HTTPDescriber is implemented by functions that describe the JSON of
// their HTTP route, for the gateway's OpenAPI document (GET /openapi.json).
// It is called on a fresh value from the module's constructor, before any
// config is decoded, so it must not depend on the config. A function that
// does not implement it gets a generic JSON body and answer.
type HTTPDescriber interface {
	DescribeHTTP() HTTPShape
}

// Schema is a JSON Schema (2020-12) document.
type Schema = json.RawMessage

// HTTPShape describes a function's route as JSON Schema (2020-12, the
// dialect of OpenAPI 3.1).
type HTTPShape struct {
	// Summary is one line on what the route does.
	Summary string
	// Request is the schema of the request body; nil: the route reads none.
	Request Schema
	// Params are the query and header parameters the function reads; path
	// parameters come from the route's path.
	Params []Param
	// Responses are the answers by status. A nil schema under an error
	// status (400 and up) is the platform's error body
	// {"error":{"code","message"}}; under a success status it is no body.
	Responses map[int]Schema
}

// Param is a query or header parameter of a route.
type Param struct {
	Name string
	// In is "query" or "header".
	In          string
	Required    bool
	Description string
	// Schema is the parameter's JSON Schema; nil is a string.
	Schema Schema
}

// DescribeHTTP returns the shape the module of handler id describes; ok is
// false when no such module is registered or it does not describe itself.
func DescribeHTTP(id string) (shape HTTPShape, ok bool) {
	m, found := modules.Get(id)
	if !found {
		return HTTPShape{}, false
	}
	d, ok := m.New().(HTTPDescriber)
	if !ok {
		return HTTPShape{}, false
	}
	return d.DescribeHTTP(), true
}

// SchemaOf returns the JSON Schema (2020-12) of the JSON encoding of v's
// type, so a function describes its request and answer from the very Go
// types it decodes and encodes. Field names come from the json tags. A
// field is required unless it is a pointer, has omitempty, or its
// jsonschema tag says optional; objects take no other properties, as
// DecodeJSON refuses unknown fields. The tag `jsonschema:"..."` adds
// constraints, separated by ";": minimum=N, maximum=N, minLength=N,
// maxLength=N, minItems=N, maxItems=N, pattern=RE, format=F, enum=a|b|c,
// type=T (for a type with its own MarshalJSON), nullable, optional,
// required, description=TEXT. It panics on a malformed tag, a programming
// error the package's tests catch.
func SchemaOf(v any) Schema {
	b, err := json.Marshal(schemaOf(reflect.TypeOf(v), 0))
	if err != nil {
		panic("runtime: SchemaOf: " + err.Error())
	}
	return b
}

// ArrayOf returns the schema of a JSON array of items, with at least min
// and at most max of them (max 0: no bound).
func ArrayOf(items Schema, min, max int) Schema {
	s := map[string]any{"type": "array", "items": items, "minItems": min}
	if max > 0 {
		s["maxItems"] = max
	}
	b, _ := json.Marshal(s)
	return b
}

// WithProperty returns the object schema s with its property name set to
// prop (a Schema or a value that marshals to one): for a constraint a tag
// cannot state, such as an enum computed from the code. It panics when s
// is not an object schema, a programming error.
func WithProperty(s Schema, name string, prop any) Schema {
	var m map[string]any
	if err := json.Unmarshal(s, &m); err != nil {
		panic("runtime: WithProperty: " + err.Error())
	}
	props, ok := m["properties"].(map[string]any)
	if !ok {
		panic("runtime: WithProperty: not an object schema")
	}
	props[name] = prop
	b, err := json.Marshal(m)
	if err != nil {
		panic("runtime: WithProperty: " + err.Error())
	}
	return b
}

// OneOf returns the schema matching exactly one of schemas.
func OneOf(schemas ...Schema) Schema {
	b, _ := json.Marshal(map[string]any{"oneOf": schemas})
	return b
}

var (
	timeType      = reflect.TypeFor[time.Time]()
	rawType       = reflect.TypeFor[json.RawMessage]()
	marshalerType = reflect.TypeFor[json.Marshaler]()
)

func schemaOf(t reflect.Type, depth int) map[string]any {
	if depth > 16 {
		panic("runtime: SchemaOf: type nests too deep (recursive?): " + t.String())
	}
	switch {
	case t == nil || t == rawType:
		return map[string]any{}
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t.Kind() == reflect.Pointer:
		return schemaOf(t.Elem(), depth+1)
	case t.Implements(marshalerType) || reflect.PointerTo(t).Implements(marshalerType):
		return map[string]any{} // its own encoding: a tag type= says what it is
	}
	switch t.Kind() {
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "contentEncoding": "base64"}
		}
		return map[string]any{"type": "array", "items": schemaOf(t.Elem(), depth+1)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem(), depth+1)}
	case reflect.Struct:
		return structSchema(t, depth)
	case reflect.Interface:
		return map[string]any{}
	}
	panic("runtime: SchemaOf: no JSON Schema for " + t.String())
}

func structSchema(t reflect.Type, depth int) map[string]any {
	props := map[string]any{}
	required := []string{}
	addFields(t, depth, props, &required)
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

// addFields adds t's exported fields, and those of its embedded structs
// without a json name, as encoding/json does.
func addFields(t reflect.Type, depth int, props map[string]any, required *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addFields(ft, depth+1, props, required)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		s := schemaOf(f.Type, depth+1)
		req := f.Type.Kind() != reflect.Pointer && !strings.Contains(","+opts+",", ",omitempty,")
		if js, ok := f.Tag.Lookup("jsonschema"); ok {
			req = applyTag(s, js, req, t.String()+"."+f.Name)
		}
		props[name] = s
		if req {
			*required = append(*required, name)
		}
	}
}

// applyTag adds the constraints of a jsonschema tag to s and returns
// whether the field is required.
func applyTag(s map[string]any, tag string, req bool, field string) bool {
	for _, part := range strings.Split(tag, ";") {
		k, v, hasValue := strings.Cut(part, "=")
		switch k {
		case "optional":
			req = false
		case "required":
			req = true
		case "nullable":
			if typ, ok := s["type"].(string); ok {
				s["type"] = []string{typ, "null"}
			}
		case "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				panic(fmt.Sprintf("runtime: SchemaOf: %s: jsonschema %s=%q is not an integer", field, k, v))
			}
			s[k] = n
		case "pattern", "format", "type", "description":
			if !hasValue || v == "" {
				panic(fmt.Sprintf("runtime: SchemaOf: %s: jsonschema %s needs a value", field, k))
			}
			s[k] = v
		case "enum":
			s[k] = strings.Split(v, "|")
		default:
			panic(fmt.Sprintf("runtime: SchemaOf: %s: unknown jsonschema tag key %q", field, k))
		}
	}
	return req
}
