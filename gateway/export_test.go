package gateway

// LeaderCallStatus is leaderCallStatus, for the tests of package gateway_test.
var LeaderCallStatus = leaderCallStatus
