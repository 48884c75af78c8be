package manifests

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// inputExts are the manifest files TestGolden runs; each has a sibling
// NAME.golden holding what Parse makes of it.
var inputExts = []string{".yaml", ".yml", ".json"}

// TestGolden parses each testdata manifest and compares the result with its
// golden file: the normalized functions as indented JSON, or the exact
// error text. Run with -update to rewrite the golden files.
func TestGolden(t *testing.T) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		ext := filepath.Ext(name)
		if !slices.Contains(inputExts, ext) {
			continue
		}
		base := strings.TrimSuffix(name, ext)
		if inputs[base] {
			t.Fatalf("two inputs share the golden file %s.golden", base)
		}
		inputs[base] = true
		t.Run(base, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			got := render(t, name, data)
			golden := filepath.Join("testdata", base+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("Parse(%s) differs from %s\n--- got\n%s--- want\n%s", name, golden, got, want)
			}
		})
	}
	for _, e := range entries {
		if base, ok := strings.CutSuffix(e.Name(), ".golden"); ok && !inputs[base] {
			t.Errorf("testdata/%s has no input file", e.Name())
		}
	}
}

// render is what a golden file holds for one input.
func render(t *testing.T, name string, data []byte) string {
	t.Helper()
	fns, err := Parse(name, data)
	if err != nil {
		return err.Error() + "\n"
	}
	b, err := json.MarshalIndent(fns, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}
