package manifests

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxNodes bounds the nodes one document may expand to: YAML aliases can
// turn a few lines into billions of nodes ("billion laughs").
const maxNodes = 100_000

var (
	durationType = reflect.TypeFor[Duration]()
	ageType      = reflect.TypeFor[Age]()
	rawType      = reflect.TypeFor[json.RawMessage]()
)

// walker checks a document node against a Go type before anything is
// decoded, so every structural problem (unknown or repeated key, wrong kind,
// bad duration) is reported with its full path, all of them at once.
//
// It also records what a struct cannot: which fields were written. Fields
// whose zero value is meaningful (replicas: 0) or forbidden (concurrency: 0)
// need that to be told apart from fields left out.
type walker struct {
	errs    []error
	present map[string]bool // paths written with a non-null value
	config  any             // spec.config as a JSON value, nil when absent
	budget  int
}

func newWalker() *walker {
	return &walker{present: map[string]bool{}, budget: maxNodes}
}

// fail records one problem.
func (w *walker) fail(path string, sentinel error, reason string) {
	w.errs = append(w.errs, fieldErr(path, sentinel, reason))
}

// spend takes one node from the budget and reports whether any was left.
func (w *walker) spend(path string) bool {
	w.budget--
	if w.budget == 0 {
		w.fail(path, ErrInvalid, fmt.Sprintf("document expands to more than %d nodes", maxNodes))
	}
	return w.budget > 0
}

// walk checks n against t; path is where n sits in the document.
func (w *walker) walk(path string, n *yaml.Node, t reflect.Type) {
	n = resolve(n)
	if !w.spend(path) || isNull(n) {
		return
	}
	w.present[path] = true
	switch {
	case t == durationType:
		if _, ferr := parseDurationNode(n); ferr != nil {
			ferr.Path = path
			w.errs = append(w.errs, ferr)
		}
		return
	case t == ageType:
		if _, ferr := parseAgeNode(n); ferr != nil {
			ferr.Path = path
			w.errs = append(w.errs, ferr)
		}
		return
	case t == rawType:
		if n.Kind != yaml.MappingNode {
			w.wrongKind(path, "a mapping", n)
			return
		}
		w.config = w.jsonValue(path, n)
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		w.walk(path, n, t.Elem())
	case reflect.Struct:
		w.walkStruct(path, n, t)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.wrongKind(path, "a list", n)
			return
		}
		for i, el := range n.Content {
			w.walk(indexPath(path, i), el, t.Elem())
		}
	case reflect.String:
		w.scalar(path, n, "!!str", "a string")
	case reflect.Int:
		if w.scalar(path, n, "!!int", "an integer") {
			var v int
			if err := n.Decode(&v); err != nil {
				w.fail(path, ErrWrongType, "integer out of range: "+n.Value)
			}
		}
	case reflect.Bool:
		w.scalar(path, n, "!!bool", "a boolean")
	default:
		panic("manifests: walker cannot check " + t.String())
	}
}

// walkStruct checks a mapping against the yaml tags of struct type t.
func (w *walker) walkStruct(path string, n *yaml.Node, t reflect.Type) {
	if n.Kind != yaml.MappingNode {
		w.wrongKind(path, "a mapping", n)
		return
	}
	fields := yamlFields(t)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := resolve(n.Content[i]), n.Content[i+1]
		if key.Kind != yaml.ScalarNode {
			w.fail(path, ErrWrongType, "mapping keys must be strings, got "+describe(key))
			continue
		}
		p := joinPath(path, key.Value)
		if seen[key.Value] {
			w.fail(p, ErrDuplicateField, "duplicate field")
			continue
		}
		seen[key.Value] = true
		ft, ok := fields[key.Value]
		if !ok {
			w.fail(p, ErrUnknownField, "unknown field")
			continue
		}
		w.walk(p, val, ft)
	}
}

// scalar checks that n is a scalar with the given resolved tag.
func (w *walker) scalar(path string, n *yaml.Node, tag, want string) bool {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != tag {
		w.wrongKind(path, want, n)
		return false
	}
	return true
}

func (w *walker) wrongKind(path, want string, n *yaml.Node) {
	w.fail(path, ErrWrongType, "expected "+want+", got "+describe(n))
}

// jsonValue converts free-form YAML (spec.config) into a value that
// encoding/json can write: string keys only, no NaN, no custom tags.
func (w *walker) jsonValue(path string, n *yaml.Node) any {
	n = resolve(n)
	if !w.spend(path) {
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := resolve(n.Content[i])
			if key.Kind != yaml.ScalarNode {
				w.fail(path, ErrWrongType, "mapping keys must be strings, got "+describe(key))
				continue
			}
			p := joinPath(path, key.Value)
			if _, dup := m[key.Value]; dup {
				w.fail(p, ErrDuplicateField, "duplicate field")
				continue
			}
			m[key.Value] = w.jsonValue(p, n.Content[i+1])
		}
		return m
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		for i, el := range n.Content {
			s[i] = w.jsonValue(indexPath(path, i), el)
		}
		return s
	}
	switch tag := n.ShortTag(); tag {
	case "!!null":
		return nil
	case "!!str", "!!timestamp", "!!binary":
		return n.Value
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			w.fail(path, ErrWrongType, "invalid boolean "+n.Value)
		}
		return b
	case "!!int":
		var i int64
		if err := n.Decode(&i); err == nil {
			return json.Number(strconv.FormatInt(i, 10))
		}
		var u uint64
		if err := n.Decode(&u); err == nil {
			return json.Number(strconv.FormatUint(u, 10))
		}
		w.fail(path, ErrWrongType, "integer out of range: "+n.Value)
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			w.fail(path, ErrWrongType, "not a finite number: "+n.Value)
			return nil
		}
		return f
	default:
		w.fail(path, ErrWrongType, "unsupported YAML tag "+tag)
	}
	return nil
}

// yamlFields maps the yaml key of each field of struct type t to its type.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := make(map[string]reflect.Type, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
	}
	return m
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is an explicit null ("~", "null" or nothing),
// which the manifest treats as a field left out.
func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe renders a node for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!str" {
			return strconv.Quote(n.Value)
		}
		if n.ShortTag() == "!!null" {
			return "null"
		}
		return n.Value
	}
	return "nothing"
}
