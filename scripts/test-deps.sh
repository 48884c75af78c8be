#!/usr/bin/env bash
# Installs the programs the console, monitoring and Vitess tests drive, when
# they are missing: Debian's chromium (the console's browser test, through
# chromedp) and prometheus with promtool (the real-Prometheus test and the
# promtool checks of deploy/prometheus). make test and .ci/run call it; the
# tests themselves fail, naming the package, when a program is still missing.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
{ command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; } || need+=(prometheus)
if ((${#need[@]} == 0)); then
	exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "test-deps.sh: missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root" >&2
	exit 1
fi
echo "test-deps.sh: installing ${need[*]} via apt" >&2
# Keep the packages' postinst from starting a system-wide prometheus on
# :9090: only the binaries are wanted. policy-rc.d exit 101 = "action forbidden".
policy=/usr/sbin/policy-rc.d
created=0
if [[ ! -e $policy ]]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 0755 "$policy"
	created=1
fi
rc=0
{
	DEBIAN_FRONTEND=noninteractive apt-get update -q &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
} >&2 || rc=$?
if ((created)); then rm -f "$policy"; fi
if ((rc != 0)); then
	echo "test-deps.sh: apt-get install ${need[*]} failed (rc=$rc)" >&2
	exit 1
fi
