package manifests

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// LoadPath loads the manifests at path: a file of any extension, or a
// directory as LoadDir reads it.
func LoadPath(path string) ([]Function, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("manifests: %w", err)
	}
	if info.IsDir() {
		return LoadDir(path)
	}
	return load([]string{path})
}

// LoadDir loads every *.yaml, *.yml and *.json file under dir, recursively
// and in lexical order, skipping hidden directories and any directory named
// testdata or vitess. Each function is normalized and validated; a name
// declared twice, in one file or two, is ErrDuplicateName. The error joins
// the problems of every file.
func LoadDir(dir string) ([]Function, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != dir && skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("manifests: %w", err)
	}
	slices.Sort(files)
	return load(files)
}

// skipDir reports whether LoadDir leaves a directory out: hidden ones,
// golden test cases, and the Vitess tooling's own YAML.
func skipDir(name string) bool {
	return strings.HasPrefix(name, ".") || name == "testdata" || name == "vitess"
}

// load parses files in order and checks names are unique across them.
func load(files []string) ([]Function, error) {
	type origin struct {
		file string
		doc  int
	}
	var (
		fns  []Function
		errs []error
		seen = map[string]origin{}
	)
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			errs = append(errs, fmt.Errorf("manifests: %w", err))
			continue
		}
		ps, err := parseFile(file, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, p := range ps {
			name := p.fn.Metadata.Name
			if o, dup := seen[name]; dup {
				errs = append(errs, &FileError{File: file, Document: p.doc, Err: fieldErr("metadata.name", ErrDuplicateName,
					fmt.Sprintf("duplicate name %q, first defined in %s document %d", name, o.file, o.doc))})
				continue
			}
			seen[name] = origin{file, p.doc}
			fns = append(fns, p.fn)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return fns, nil
}
