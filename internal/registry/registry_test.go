package registry

import (
	"slices"
	"testing"
)

func TestOf(t *testing.T) {
	var r Of[int]
	if _, ok := r.Get("a"); ok {
		t.Fatal("empty registry has a")
	}
	r.Add("thing", "b", 2)
	r.Add("thing", "a", 1)
	if v, ok := r.Get("a"); !ok || v != 1 {
		t.Errorf("Get(a) = %d, %v", v, ok)
	}
	if got := r.IDs(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("IDs = %v", got)
	}
	for _, tt := range []struct{ name, id, want string }{
		{"duplicate", "a", "thing registered twice: a"},
		{"empty id", "", "thing registered without an id"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if got := recover(); got != tt.want {
					t.Errorf("panic %v, want %q", got, tt.want)
				}
			}()
			r.Add("thing", tt.id, 3)
		})
	}
}
