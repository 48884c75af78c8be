package manifests

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const minimalYAML = `apiVersion: surge/v1
kind: Function
metadata: {name: order-get}
spec:
  handler: orders.get
  trigger: {subject: fn.orders.get}
`

const minimalJSON = `{"apiVersion":"surge/v1","kind":"Function","metadata":{"name":"order-get"},
"spec":{"handler":"orders.get","trigger":{"subject":"fn.orders.get"}}}`

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr error
	}{
		{name: "unknown field", in: minimalYAML + "  subjct: x\n",
			want: "f.yaml: document 1: spec.subjct: unknown field", wantErr: ErrUnknownField},
		{name: "duplicate key", in: minimalYAML + "kind: Function\n",
			want: "f.yaml: document 1: kind: duplicate field", wantErr: ErrDuplicateField},
		{name: "wrong type", in: minimalYAML + "  replicas: two\n",
			want: `f.yaml: document 1: spec.replicas: expected an integer, got "two"`, wantErr: ErrWrongType},
		{name: "unquoted number as string", in: minimalYAML + "  queue: 42\n",
			want: "f.yaml: document 1: spec.queue: expected a string, got 42", wantErr: ErrWrongType},
		{name: "bool spelled yes", in: minimalYAML + "  http: {method: POST, path: /x, async: yes}\n",
			want: `f.yaml: document 1: spec.http.async: expected a boolean, got "yes"`, wantErr: ErrWrongType},
		{name: "duration without unit", in: minimalYAML + "  timeout: 2\n",
			want: `f.yaml: document 1: spec.timeout: expected a duration string like "2s", got 2`, wantErr: ErrWrongType},
		{name: "bad duration", in: minimalYAML + "  timeout: 2 seconds\n",
			want: `f.yaml: document 1: spec.timeout: invalid duration "2 seconds"`, wantErr: ErrInvalidDuration},
		{name: "explicit zero timeout", in: minimalYAML + "  timeout: 0s\n",
			want: "f.yaml: document 1: spec.timeout: must be at least 1ms, got 0s", wantErr: ErrInvalid},
		{name: "explicit zero maxDeliver and batch size", in: minimalYAML + "  retry: {maxDeliver: 0}\n  batch: {size: 0}\n",
			want: "f.yaml: document 1: spec.retry.maxDeliver: must be between 1 and 100, got 0\n" +
				"f.yaml: document 1: spec.batch.size: must be between 1 and 10000, got 0"},
		{name: "config with non-finite number", in: minimalYAML + "  config: {x: .nan}\n",
			want: "f.yaml: document 1: spec.config.x: not a finite number: .nan", wantErr: ErrWrongType},
		{name: "config with custom tag", in: minimalYAML + "  config: {x: !secret abc}\n",
			want: "f.yaml: document 1: spec.config.x: unsupported YAML tag !secret", wantErr: ErrWrongType},
		{name: "config duplicate key", in: minimalYAML + "  config: {x: 1, x: 2}\n",
			want: "f.yaml: document 1: spec.config.x: duplicate field", wantErr: ErrDuplicateField},
		{name: "syntax", in: "a: [\n", want: "f.yaml: document 1: syntax error: yaml: line 1: did not find expected node content", wantErr: ErrSyntax},
		{name: "empty", in: "", want: "f.yaml: no manifest found", wantErr: ErrNoManifest},
		{name: "duplicate name", in: minimalYAML + "---\n" + minimalYAML,
			want: `f.yaml: document 2: metadata.name: duplicate name "order-get", first defined in document 1`, wantErr: ErrDuplicateName},
		{name: "json duplicate key", in: `{"kind":"Function","kind":"Function"}`,
			want: "f.yaml: document 1: kind: duplicate field", wantErr: ErrDuplicateField},
		{name: "alias bomb", in: aliasBomb(), want: "f.yaml: document 1: spec.config.e[7][8][8][7][9]: document expands to more than 100000 nodes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fns, err := Parse("f.yaml", []byte(tt.in))
			if err == nil {
				t.Fatalf("Parse() = %+v, want error %q", fns, tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Parse() error\n got %q\nwant %q", got, tt.want)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Parse() error %v does not wrap %v", err, tt.wantErr)
			}
			var fe *FileError
			if !errors.As(err, &fe) || fe.File != "f.yaml" {
				t.Errorf("Parse() error %T is not a *FileError for f.yaml", err)
			}
		})
	}
}

// aliasBomb is a "billion laughs" document: ten aliases per level.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString(minimalYAML + "  config:\n    a: &a [x, x, x, x, x, x, x, x, x, x]\n")
	for c := 'b'; c <= 'i'; c++ {
		p := string(c - 1)
		b.WriteString("    " + string(c) + ": &" + string(c) + " [*" + p + ", *" + p + ", *" + p + ", *" + p + ", *" + p +
			", *" + p + ", *" + p + ", *" + p + ", *" + p + ", *" + p + "]\n")
	}
	return b.String()
}

func TestParseAliases(t *testing.T) {
	in := `apiVersion: surge/v1
kind: Function
metadata: {name: order-get}
spec:
  handler: orders.get
  trigger: &t {subject: fn.orders.get}
  config: {trigger: *t}
`
	fns, err := Parse("f.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(fns[0].Spec.Config), `{"trigger":{"subject":"fn.orders.get"}}`; got != want {
		t.Errorf("config = %s, want %s", got, want)
	}
}

func TestYAMLAndJSONAgree(t *testing.T) {
	y, err := Parse("f.yaml", []byte(minimalYAML+"  config: {b: 1, a: [x]}\n  replicas: 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	j, err := ParseJSON([]byte(strings.TrimSuffix(minimalJSON, "}}") + `,"replicas":0,"config":{"a":["x"], "b":1}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(y[0], j) {
		t.Errorf("YAML gives %+v\nJSON gives %+v", y[0], j)
	}
	if y[0].Revision() != j.Revision() {
		t.Error("YAML and JSON revisions differ")
	}
}

// TestJSONRoundTrip checks that a parsed function, written as JSON (as the
// CLI and the registry do) and parsed again, is unchanged, zero replicas
// included.
func TestJSONRoundTrip(t *testing.T) {
	fns, err := Parse("f.yaml", []byte(minimalYAML+"  replicas: 0\n  batch: {wait: 0s}\n  kv: [{bucket: b}]\n  config: {z: 1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(fns[0])
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fns[0], again) {
		t.Errorf("round trip changed the function:\n%+v\n%+v", fns[0], again)
	}
}

func TestParseJSONErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "syntax", in: "{\n\"a\": 1,\n}", want: "syntax error: line 3: invalid character '}' looking for beginning of object key string"},
		{name: "truncated", in: `{"a": [1`, want: "syntax error: unexpected EOF"},
		{name: "trailing data", in: minimalJSON + ` {}`, want: "syntax error: unexpected data after the manifest"},
		{name: "not an object", in: `[1]`, want: "expected a mapping, got a list"},
		{name: "null", in: `null`, want: "expected a mapping, got null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseJSON([]byte(tt.in))
			if err == nil || err.Error() != tt.want {
				t.Fatalf("ParseJSON() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParseJSONFieldErrors(t *testing.T) {
	in := `{"apiVersion":"surge/v1","kind":"Function","metadata":{"name":"x"},
"spec":{"handler":"h","trigger":{"subjct":"a"},"kv":[{"bucket":"b","ttl":5}]}}`
	_, err := ParseJSON([]byte(in))
	want := "spec.trigger.subjct: unknown field\n" + `spec.kv[0].ttl: expected a duration string like "2s", got 5`
	if err == nil || err.Error() != want {
		t.Fatalf("ParseJSON() = %v, want %q", err, want)
	}
	if !errors.Is(err, ErrUnknownField) || !errors.Is(err, ErrWrongType) {
		t.Errorf("ParseJSON() = %v, want it to wrap ErrUnknownField and ErrWrongType", err)
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		want        string // error text, "" for success
		wantErr     error
	}{
		{name: "json", contentType: "application/json", body: minimalJSON},
		{name: "json with charset", contentType: "application/json; charset=utf-8", body: minimalJSON},
		{name: "problem json suffix", contentType: "application/vnd.surge+json", body: minimalJSON},
		{name: "yaml", contentType: "application/yaml", body: minimalYAML},
		{name: "yaml with json body", contentType: "application/x-yaml", body: minimalJSON},
		{name: "no type", contentType: "", body: minimalYAML},
		{name: "curl default", contentType: "application/x-www-form-urlencoded", body: minimalYAML},
		{name: "json type with yaml body", contentType: "application/json", body: minimalYAML,
			want: "syntax error: line 1: invalid character 'a' looking for beginning of value", wantErr: ErrSyntax},
		{name: "unsupported", contentType: "image/png", body: minimalYAML,
			want: `unsupported media type: "image/png"`, wantErr: ErrUnsupportedMediaType},
		{name: "two documents", contentType: "application/yaml", body: minimalYAML + "---\n" + minimalYAML,
			want: "more than one manifest: found 2 documents", wantErr: ErrMultipleManifests},
		{name: "empty", contentType: "application/yaml", body: "---\n", want: "no manifest found", wantErr: ErrNoManifest},
		{name: "invalid yaml", contentType: "text/yaml", body: minimalYAML + "  concurrency: 0\n  trigger2: x\n",
			want: "spec.trigger2: unknown field", wantErr: ErrUnknownField},
		{name: "invalid value", contentType: "text/yaml", body: minimalYAML + "  concurrency: 0\n",
			want: "spec.concurrency: must be between 1 and 100000, got 0", wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn, err := Decode(tt.contentType, []byte(tt.body))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Fatalf("Decode() error = %q, want %q", got, tt.want)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Decode() error %v does not wrap %v", err, tt.wantErr)
			}
			if err == nil && (fn.Metadata.Name != "order-get" || fn.Spec.Concurrency != DefaultConcurrency || fn.Spec.Replicas != DefaultReplicas) {
				t.Errorf("Decode() = %+v, want order-get normalized", fn)
			}
		})
	}
}

func TestDurationYAML(t *testing.T) {
	var v struct{ D Duration }
	if err := yaml.Unmarshal([]byte("d: 250ms"), &v); err != nil || v.D.Std() != 250*time.Millisecond {
		t.Errorf("Unmarshal = %v, %v; want 250ms", v.D, err)
	}
	if err := yaml.Unmarshal([]byte("d: 5"), &v); err == nil {
		t.Error("Unmarshal of a bare number succeeded, want an error")
	}
	out, err := yaml.Marshal(v)
	if err != nil || string(out) != "d: 250ms\n" {
		t.Errorf("Marshal = %q, %v; want d: 250ms", out, err)
	}
}
