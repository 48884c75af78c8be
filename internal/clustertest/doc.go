// Package clustertest holds the tests of surge on a 3-node NATS cluster
// (testenv.StartCluster): replicated streams and buckets, losing the
// ORDERS leader under load, a runtime host killed in the middle of a
// batch, and the KV compare-and-set flows at 3 replicas. It has no code of
// its own.
package clustertest
