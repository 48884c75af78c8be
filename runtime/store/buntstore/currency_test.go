package buntstore_test

import (
	"testing"

	"github.com/surgefn/surge/functions/orders"
	"github.com/surgefn/surge/runtime/store/buntstore"
)

// TestRowCurrencies: every currency functions/orders accepts is one byte
// in a compact row, and the row's list holds nothing else (the list may
// only grow, so a code it lacks costs its string in every row).
func TestRowCurrencies(t *testing.T) {
	inRow := make(map[string]bool)
	for _, c := range buntstore.RowCurrencies {
		if inRow[c] {
			t.Errorf("%s twice in the row's list", c)
		}
		inRow[c] = true
		if !orders.KnownCurrency(c) {
			t.Errorf("%s in the row's list but not accepted by functions/orders", c)
		}
	}
	var b [3]byte
	for i := range 26 * 26 * 26 {
		b[0], b[1], b[2] = byte('A'+i/676), byte('A'+i/26%26), byte('A'+i%26)
		if c := string(b[:]); orders.KnownCurrency(c) && !inRow[c] {
			t.Errorf("functions/orders accepts %s; add it to the end of rowCurrencies", c)
		}
	}
}
