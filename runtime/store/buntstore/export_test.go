package buntstore

// RowCurrencies exposes the compact row's currency list to the external
// tests.
var RowCurrencies = rowCurrencies[:]
