// Package bench is the load generator behind `surge bench` and `make bench`.
//
// A Scenario is one kind of request (an HTTP call through the gateway, a
// JetStream publish); Run drives it closed-loop (N workers as fast as they
// can) or open-loop (a fixed rate, latency measured from each request's
// intended send time so a stall is not hidden by coordinated omission),
// bounded by a duration or a count, and returns a Result: throughput,
// errors by kind and an HDR latency histogram. Scenarios that implement
// Verifier check afterwards that the platform did what it acknowledged: the
// order scenarios wait for the ORDERS backlog to drain and compare the
// stored orders with the acknowledged ones, one by one.
//
// The baselines `make bench` compares surge with (a bare Echo server, an
// Echo server doing a NATS request to an in-process responder, a raw
// JetStream publish) live here too, as does the BENCHMARKS.md report.
package bench
