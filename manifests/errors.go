package manifests

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel errors. Every error this package returns wraps one of them, so
// callers (the admin API, the CLI) can classify a failure with errors.Is
// while the message keeps the file, the field path and the reason.
var (
	// ErrSyntax means the input is not well-formed YAML or JSON.
	ErrSyntax = errors.New("syntax error")
	// ErrUnknownField means a mapping key is not a field of the manifest.
	ErrUnknownField = errors.New("unknown field")
	// ErrDuplicateField means a mapping key appears twice.
	ErrDuplicateField = errors.New("duplicate field")
	// ErrWrongType means a value has the wrong YAML/JSON kind, such as a
	// string where an integer belongs.
	ErrWrongType = errors.New("wrong type")
	// ErrInvalidDuration means a duration is not a Go duration string.
	ErrInvalidDuration = errors.New("invalid duration")
	// ErrRequired means a required field is missing or empty.
	ErrRequired = errors.New("required")
	// ErrInvalid means a field is well-typed but breaks a validation rule.
	ErrInvalid = errors.New("invalid value")
	// ErrNoManifest means the input holds no document at all.
	ErrNoManifest = errors.New("no manifest found")
	// ErrMultipleManifests means an API body holds more than one document.
	ErrMultipleManifests = errors.New("more than one manifest")
	// ErrDuplicateName means two manifests declare the same metadata.name.
	ErrDuplicateName = errors.New("duplicate function name")
	// ErrUnsupportedMediaType means Decode was given a content type that is
	// neither YAML nor JSON.
	ErrUnsupportedMediaType = errors.New("unsupported media type")
)

// FieldError is one problem with one field of a manifest. Path is the field
// path in manifest spelling ("spec.retry.backoff[1]"), empty for the
// document itself; Reason is the human explanation; Err, when set, is the
// sentinel it wraps.
type FieldError struct {
	Path   string
	Reason string
	Err    error
}

// Error formats the problem as "path: reason".
func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Reason
	}
	return e.Path + ": " + e.Reason
}

// Unwrap returns the sentinel the problem wraps.
func (e *FieldError) Unwrap() error { return e.Err }

// FileError places a problem in a file and a document of that file: its
// message reads "orders.yaml: document 2: spec.timeout: invalid duration ...".
// File is empty and Document 0 when the input had no name (API bodies).
type FileError struct {
	File     string
	Document int
	Err      error
}

// Error prefixes the wrapped message with the file name and document number.
func (e *FileError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	if e.Document > 0 {
		b.WriteString("document ")
		b.WriteString(strconv.Itoa(e.Document))
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the located problem.
func (e *FileError) Unwrap() error { return e.Err }

// fieldErr builds a *FieldError wrapping sentinel.
func fieldErr(path string, sentinel error, reason string) *FieldError {
	return &FieldError{Path: path, Reason: reason, Err: sentinel}
}

// locate wraps every problem with its file and document.
func locate(file string, doc int, errs []error) []error {
	out := make([]error, len(errs))
	for i, err := range errs {
		out[i] = &FileError{File: file, Document: doc, Err: err}
	}
	return out
}

// joinPath appends a mapping key to a field path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// indexPath appends a sequence index to a field path.
func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}
