package manifests

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// manifestFor is a valid manifest for a function called name.
func manifestFor(name string) string {
	return "apiVersion: surge/v1\nkind: Function\nmetadata: {name: " + name + "}\n" +
		"spec: {handler: h, trigger: {subject: fn." + name + "}}\n"
}

// writeTree creates files (path -> content) under a new temporary directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func names(fns []Function) string {
	var s []string
	for _, f := range fns {
		s = append(s, f.Metadata.Name)
	}
	return strings.Join(s, ",")
}

func TestLoadDir(t *testing.T) {
	tests := []struct {
		name      string
		files     map[string]string
		wantNames string
		wantErr   string // with the directory written as DIR
		wantIs    error
	}{
		{
			name: "recursive, sorted, filtered",
			files: map[string]string{
				"b.yaml":             manifestFor("b"),
				"a.yml":              manifestFor("a") + "---\n" + manifestFor("a2"),
				"sub/c.json":         `{"apiVersion":"surge/v1","kind":"Function","metadata":{"name":"c"},"spec":{"handler":"h","trigger":{"subject":"fn.c"}}}`,
				"sub/deeper/d.YAML":  manifestFor("d"),
				"notes.txt":          "not a manifest",
				"testdata/bad.yaml":  "kind: [",
				"vitess/vschema.yml": "keyspaces: {}",
				".git/x.yaml":        "kind: [",
				"sub/.hidden/y.yaml": "kind: [",
			},
			wantNames: "a,a2,b,c,d",
		},
		{
			name:      "empty directory",
			files:     map[string]string{},
			wantNames: "",
		},
		{
			name: "duplicate across files",
			files: map[string]string{
				"a.yaml":     manifestFor("x"),
				"sub/b.yaml": manifestFor("y") + "---\n" + manifestFor("x"),
			},
			wantErr: `DIR/sub/b.yaml: document 2: metadata.name: duplicate name "x", first defined in DIR/a.yaml document 1`,
			wantIs:  ErrDuplicateName,
		},
		{
			name: "every file's problems",
			files: map[string]string{
				"a.yaml": manifestFor("a") + "bogus: 1\n",
				"b.json": `{"kind": 1}`,
				"c.yaml": manifestFor("c"),
			},
			wantErr: "DIR/a.yaml: document 1: bogus: unknown field\n" +
				"DIR/b.json: document 1: kind: expected a string, got 1",
			wantIs: ErrWrongType,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, tt.files)
			fns, err := LoadDir(dir)
			if tt.wantErr != "" {
				want := strings.ReplaceAll(tt.wantErr, "DIR/", dir+string(filepath.Separator))
				if err == nil || err.Error() != want {
					t.Fatalf("LoadDir() error = %v, want %q", err, want)
				}
				if !errors.Is(err, tt.wantIs) {
					t.Errorf("LoadDir() error does not wrap %v", tt.wantIs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := names(fns); got != tt.wantNames {
				t.Errorf("LoadDir() = %s, want %s", got, tt.wantNames)
			}
			for _, f := range fns {
				if f.Spec.Concurrency != DefaultConcurrency {
					t.Errorf("%s not normalized", f.Metadata.Name)
				}
			}
		})
	}
}

func TestLoadPath(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"one.yaml":         manifestFor("one"),
		"sub/two.yaml":     manifestFor("two"),
		"manifest.txt":     manifestFor("txt"),
		"testdata/x.yaml":  manifestFor("golden"),
		"sub/three.yml":    manifestFor("three"),
		"sub/empty.yaml":   "# nothing yet\n",
		"other/four.json":  "{}",
		"other/broken.yml": "a: [",
	})
	tests := []struct {
		name      string
		path      string
		wantNames string
		wantErr   error
	}{
		{name: "file", path: "one.yaml", wantNames: "one"},
		{name: "file with any extension", path: "manifest.txt", wantNames: "txt"},
		{name: "testdata read when named", path: "testdata", wantNames: "golden"},
		{name: "directory", path: "sub", wantErr: ErrNoManifest},
		{name: "directory of bad files", path: "other", wantErr: ErrSyntax},
		{name: "missing", path: "nope", wantErr: fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fns, err := LoadPath(filepath.Join(dir, tt.path))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("LoadPath() error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := names(fns); got != tt.wantNames {
				t.Errorf("LoadPath() = %s, want %s", got, tt.wantNames)
			}
		})
	}
}
