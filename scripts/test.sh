#!/usr/bin/env bash
# Runs every Go test. When SURGE_TEST_VTGATE is not already set, starts a
# real 2-shard Vitess (scripts/vitess-test-env.sh) for the Vitess tests and
# always stops it afterwards.
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

if [[ -z "${SURGE_TEST_VTGATE:-}" && -x scripts/vitess-test-env.sh && -d manifests/vitess ]]; then
	state=$(mktemp -d /tmp/surge-vt.XXXXXX)
	scripts/vitess-test-env.sh start manifests/vitess "$state"
	# shellcheck disable=SC1091
	set -a; source "$state/env"; set +a
fi

go test -count=1 -timeout 30m "$@" ./...
