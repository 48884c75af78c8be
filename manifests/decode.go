package manifests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"path/filepath"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// Parse decodes every manifest in one file: YAML documents separated by
// "---" (empty documents are skipped) or a single JSON object. Decoding is
// strict, and each function comes back normalized and validated; on any
// problem Parse returns no functions and an error joining every problem
// found, each a *FileError reading "file: document N: path: reason".
func Parse(file string, data []byte) ([]Function, error) {
	ps, err := parseFile(file, data)
	if err != nil {
		return nil, err
	}
	fns := make([]Function, len(ps))
	for i, p := range ps {
		fns[i] = p.fn
	}
	return fns, nil
}

// ParseJSON decodes one manifest from a JSON object, as the admin API
// receives it: unknown fields and invalid values are errors. The function
// comes back normalized and validated; the error joins one *FieldError per
// problem, each naming its field path.
func ParseJSON(data []byte) (Function, error) {
	fn, errs := decodeJSON(data)
	return fn, errors.Join(errs...)
}

// Decode decodes exactly one manifest from a request body, choosing the
// format from contentType: JSON for application/json and "+json" types,
// YAML (which includes JSON) for YAML types and for the types HTTP clients
// send by default (none, text/plain, application/octet-stream, form).
// Other types are ErrUnsupportedMediaType.
func Decode(contentType string, data []byte) (Function, error) {
	isJSON, err := jsonMediaType(contentType)
	if err != nil {
		return Function{}, err
	}
	if isJSON || json.Valid(data) {
		return ParseJSON(data)
	}
	docs, err := splitYAML("", data)
	if fe := (*FileError)(nil); errors.As(err, &fe) {
		return Function{}, fe.Err // one document expected: its number adds nothing
	}
	switch len(docs) {
	case 0:
		return Function{}, ErrNoManifest
	case 1:
	default:
		return Function{}, fmt.Errorf("%w: found %d documents", ErrMultipleManifests, len(docs))
	}
	fn, errs := decodeYAML(docs[0].node)
	return fn, errors.Join(errs...)
}

// jsonMediaType reports whether contentType names JSON, and rejects types
// that are neither JSON nor YAML nor an HTTP client's default.
func jsonMediaType(contentType string) (bool, error) {
	if strings.TrimSpace(contentType) == "" {
		return false, nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false, fmt.Errorf("%w: %q: %w", ErrUnsupportedMediaType, contentType, err)
	}
	switch {
	case mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json"):
		return true, nil
	case mt == "application/yaml" || mt == "application/x-yaml" || mt == "text/yaml" ||
		mt == "text/x-yaml" || strings.HasSuffix(mt, "+yaml"),
		mt == "text/plain" || mt == "application/octet-stream" || mt == "application/x-www-form-urlencoded":
		return false, nil
	}
	return false, fmt.Errorf("%w: %q", ErrUnsupportedMediaType, mt)
}

// parsed is one decoded manifest and the document it came from.
type parsed struct {
	fn  Function
	doc int
}

// parseFile is Parse keeping document numbers, which LoadDir needs to report
// duplicate names across files.
func parseFile(file string, data []byte) ([]parsed, error) {
	if strings.EqualFold(filepath.Ext(file), ".json") || json.Valid(data) {
		// JSON is YAML, but yaml.v3 rejects some valid JSON (the "\/" escape)
		// and explains broken JSON in YAML terms, so JSON takes the JSON path.
		fn, errs := decodeJSON(data)
		if len(errs) > 0 {
			return nil, errors.Join(locate(file, 1, errs)...)
		}
		return []parsed{{fn, 1}}, nil
	}
	docs, err := splitYAML(file, data)
	if err != nil {
		return nil, err
	}
	if len(docs) == 0 {
		return nil, &FileError{File: file, Err: ErrNoManifest}
	}
	var out []parsed
	var errs []error
	first := map[string]int{}
	for _, d := range docs {
		fn, ferrs := decodeYAML(d.node)
		if len(ferrs) > 0 {
			errs = append(errs, locate(file, d.index, ferrs)...)
			continue
		}
		name := fn.Metadata.Name
		if doc, dup := first[name]; dup {
			errs = append(errs, &FileError{File: file, Document: d.index, Err: fieldErr("metadata.name", ErrDuplicateName,
				fmt.Sprintf("duplicate name %q, first defined in document %d", name, doc))})
			continue
		}
		first[name] = d.index
		out = append(out, parsed{fn, d.index})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// yamlDoc is one non-empty YAML document and its 1-based position.
type yamlDoc struct {
	node  *yaml.Node
	index int
}

// splitYAML reads every document of a YAML stream, dropping empty ones.
func splitYAML(file string, data []byte) ([]yamlDoc, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []yamlDoc
	for i := 1; ; i++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, &FileError{File: file, Document: i, Err: fmt.Errorf("%w: %w", ErrSyntax, err)}
		}
		if len(n.Content) == 0 || isNull(n.Content[0]) {
			continue
		}
		docs = append(docs, yamlDoc{node: n.Content[0], index: i})
	}
}

// decodeYAML checks one document's structure, decodes it, then normalizes
// and validates the function. It returns every problem found.
func decodeYAML(root *yaml.Node) (Function, []error) {
	w := newWalker()
	w.walk("", root, reflect.TypeFor[Function]())
	if len(w.errs) > 0 {
		return Function{}, w.errs
	}
	var fn Function
	if err := withoutConfig(root).Decode(&fn); err != nil {
		// The walk accepts only what yaml.v3 decodes; reaching this is a bug.
		return Function{}, []error{fmt.Errorf("%w: %w", ErrInvalid, err)}
	}
	if w.config != nil {
		b, err := json.Marshal(w.config)
		if err != nil {
			return Function{}, []error{fieldErr("spec.config", ErrInvalid, err.Error())}
		}
		fn.Spec.Config = b
	}
	return fn, finish(&fn, w.present)
}

// withoutConfig returns a shallow copy of a manifest's root mapping with
// spec.config left out: config is free-form and goes to JSON separately,
// which yaml.v3 cannot decode into a json.RawMessage.
func withoutConfig(root *yaml.Node) *yaml.Node {
	r := *root
	r.Content = append([]*yaml.Node(nil), root.Content...)
	for i := 0; i+1 < len(r.Content); i += 2 {
		if r.Content[i].Value != "spec" {
			continue
		}
		spec := *resolve(r.Content[i+1])
		spec.Content = nil
		src := resolve(r.Content[i+1]).Content
		for j := 0; j+1 < len(src); j += 2 {
			if resolve(src[j]).Value != "config" {
				spec.Content = append(spec.Content, src[j], src[j+1])
			}
		}
		r.Content[i+1] = &spec
	}
	return &r
}

// decodeJSON is decodeYAML for a JSON object. The structural walk runs on a
// yaml.Node built from the JSON tokens, so both formats report the same
// paths and reasons; the decoding itself is encoding/json's, strict.
func decodeJSON(data []byte) (Function, []error) {
	root, err := jsonNode(data)
	if err != nil {
		return Function{}, []error{err}
	}
	if isNull(root) {
		return Function{}, []error{fieldErr("", ErrWrongType, "expected a mapping, got null")}
	}
	w := newWalker()
	w.walk("", root, reflect.TypeFor[Function]())
	if len(w.errs) > 0 {
		return Function{}, w.errs
	}
	var fn Function
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fn); err != nil {
		return Function{}, []error{fmt.Errorf("%w: %w", ErrInvalid, err)}
	}
	return fn, finish(&fn, w.present)
}

// finish applies what only the decoder can know, whether a field was
// written, then normalizes and validates.
//
// Two fields have a default but also a meaningful zero (replicas: 0 is
// deployed but stopped; batch.wait: 0s is no wait), so their defaults are
// applied here, when the field is absent, and never by Normalize; with
// spec.autoscale, an absent replicas is autoscale.min. Six fields have a
// default and a forbidden zero, so writing 0 is an error rather than a
// silent default.
func finish(fn *Function, present map[string]bool) []error {
	s := &fn.Spec
	if !present["spec.replicas"] {
		s.Replicas = DefaultReplicas
		if a := s.Autoscale; a != nil {
			// An autoscaled function starts at its minimum.
			s.Replicas = a.Min
			if a.Min == 0 {
				s.Replicas = DefaultAutoscaleMin
			}
		}
	}
	if !present["spec.batch.wait"] {
		s.Batch.Wait = Duration(DefaultBatchWait)
	}
	var zeros []error
	if present["spec.concurrency"] && s.Concurrency == 0 {
		zeros = append(zeros, intRange("spec.concurrency", 0, 1, MaxConcurrency))
	}
	if present["spec.timeout"] && s.Timeout == 0 {
		zeros = append(zeros, durationRange("spec.timeout", 0, MinTimeout, MaxTimeout))
	}
	if present["spec.retry.maxDeliver"] && s.Retry.MaxDeliver == 0 {
		zeros = append(zeros, intRange("spec.retry.maxDeliver", 0, 1, MaxMaxDeliver))
	}
	if present["spec.batch.size"] && s.Batch.Size == 0 {
		zeros = append(zeros, intRange("spec.batch.size", 0, 1, MaxBatchSize))
	}
	if present["spec.autoscale.min"] && s.Autoscale.Min == 0 {
		zeros = append(zeros, intRange("spec.autoscale.min", 0, 1, MaxReplicas))
	}
	if present["spec.autoscale.cooldown"] && s.Autoscale.Cooldown == 0 {
		zeros = append(zeros, durationRange("spec.autoscale.cooldown", 0, MinCooldown, MaxCooldown))
	}
	fn.Normalize()
	return append(fn.problems(), zeros...)
}

// jsonNode parses one JSON value into a yaml.Node tree, keeping key order
// and duplicate keys so the walk can report them.
func jsonNode(data []byte) (*yaml.Node, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	n, err := jsonValueNode(dec)
	if err == nil {
		if _, err = dec.Token(); err == nil {
			err = errors.New("unexpected data after the manifest")
		} else if errors.Is(err, io.EOF) {
			return n, nil
		}
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n"))
		return nil, fmt.Errorf("%w: line %d: %w", ErrSyntax, line, err)
	}
	return nil, fmt.Errorf("%w: %w", ErrSyntax, err)
}

func jsonValueNode(dec *json.Decoder) (*yaml.Node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch v := tok.(type) {
	case json.Delim:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		if v == '[' {
			n.Kind, n.Tag = yaml.SequenceNode, "!!seq"
		}
		for dec.More() {
			if n.Kind == yaml.MappingNode {
				key, err := dec.Token()
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key.(string)})
			}
			el, err := jsonValueNode(dec)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, el)
		}
		_, err := dec.Token() // the closing delimiter
		return n, err
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v, Style: yaml.DoubleQuotedStyle}, nil
	case json.Number:
		tag := "!!float"
		if _, err := v.Int64(); err == nil {
			tag = "!!int"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: v.String()}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fmt.Sprint(v)}, nil
	default: // nil
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	}
}
