// Package clustertest holds the tests of surge on a 3-node NATS cluster
// (testenv.StartCluster): replicated streams and buckets, losing the
// ORDERS leader under load, a runtime host killed in the middle of a
// batch, the KV compare-and-set flows at 3 replicas, and the kill drill
// (TestChaos, also `make chaos`): 2 gateways and 3 runtime hosts on Vitess
// under mixed load while the ORDERS leader, a runtime host and a gateway
// are SIGKILLed in turn. It has no code of its own.
package clustertest
