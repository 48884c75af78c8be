#!/usr/bin/env bash
# Runs every Go test. When SURGE_TEST_VTGATE is not already set, starts a
# real 2-shard Vitess (scripts/vitess-test-env.sh) for the Vitess tests and
# always stops it afterwards. make test promises the Vitess tests: if Vitess
# cannot be started this script fails before any test runs, and
# SURGE_TEST_REQUIRE_VITESS=1 makes a Vitess test without a vtgate fail
# instead of skipping (internal/vttest).
set -euo pipefail
cd "$(dirname "$0")/.."

state=""
cleanup() {
	if [[ -n "$state" ]]; then
		scripts/vitess-test-env.sh stop "$state" || true
		rm -rf "$state"
	fi
}
trap cleanup EXIT INT TERM

if [[ -z "${SURGE_TEST_VTGATE:-}" ]]; then
	state=$(mktemp -d /tmp/surge-vt.XXXXXX)
	if ! scripts/vitess-test-env.sh start manifests/vitess "$state"; then
		echo "test.sh: Vitess could not be started (see above); the Vitess tests cannot run, so make test fails" >&2
		exit 1
	fi
	# shellcheck disable=SC1091
	set -a; source "$state/env"; set +a
fi
export SURGE_TEST_REQUIRE_VITESS=1

# SURGE_TEST_PKGS narrows the packages (make chaos: ./internal/clustertest).
go test -count=1 -timeout 30m "$@" ${SURGE_TEST_PKGS:-./...}
