#!/usr/bin/env bash
# make bench: starts `surge up` on the embedded defaults (loopback, random
# free ports, a temporary data dir, every manifest under manifests/),
# measures the three baselines and the surge scenarios with the same load
# generator (`surge bench`), samples the RSS of `surge up` throughout, and
# writes BENCHMARKS.md. Bounded: every run has a timeout; the whole script
# takes about 12 minutes. echo and orders-http run twice,
# on their routes and on auth: user twins with a JWT per simulated user.
#
# Knobs (environment): BENCH_DURATION (10s), BENCH_WARMUP (2s),
# BENCH_KEEP=1 keeps the temporary directory (results, logs),
# BENCH_ONLY=REGEX runs only the runs whose label matches (e.g. '^overload')
# and writes their report into the kept temporary directory, not BENCHMARKS.md,
# BENCH_ORDERS_ENGINE=pebble|buntdb runs both embedded-store surge ups with
# that --orders-engine (default: surge up's own),
# BENCH_MEMORY_LIMIT=SIZE runs every surge up with --memory-limit SIZE
# (e.g. 448MiB; default: surge up's own, auto) and says so in the report,
# BENCH_NATS_SYNC=auto|always|DURATION runs every surge up with --nats-sync
# (the cost of an fsync policy; default: surge up's own, auto) and says so,
# BENCH_SURGE=PATH runs that surge binary instead of building bin/surge
# (to compare two builds in alternating runs),
# BENCH_PPROF=127.0.0.1:6060 serves net/http/pprof from `surge up` there and
# saves an 8-second CPU profile of it during each surge run (implies
# BENCH_KEEP; read them with `go tool pprof -top bin/surge FILE`).
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
loadavg=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null | tr ' ' ',' | sed 's/,/, /g' || true)
duration=${BENCH_DURATION:-10s}
warmup=${BENCH_WARMUP:-2s}
pprof=${BENCH_PPROF:-}
surge=bin/surge
surge_prebuilt=${BENCH_SURGE:-}

# The platform runs on its defaults: no SURGE_* setting of the caller's
# shell may change it (or the bench flags).
while read -r v; do unset "$v"; done < <(env | sed -n 's/^\(SURGE_[A-Za-z0-9_]*\)=.*/\1/p')
if [[ -n "$pprof" || -n "${BENCH_ONLY:-}" ]]; then
	BENCH_KEEP=1
fi

for tool in curl awk timeout; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 1; }
done
if [[ -n "$surge_prebuilt" ]]; then
	surge=$surge_prebuilt
else
	go build -o "$surge" ./cmd/surge
fi

work=$(mktemp -d /tmp/surge-bench.XXXXXX)
results="$work/results"
mkdir -p "$results"
pids=()
peer_env="" vt_state=""
cleanup() {
	local p
	if [[ -n "$peer_env" ]]; then
		"$peer_env" down >/dev/null 2>&1 || true
	fi
	if [[ -n "$vt_state" ]]; then
		scripts/vitess-test-env.sh stop "$vt_state" >/dev/null 2>&1 || true
		rm -rf "$vt_state"
	fi
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	if [[ -n "${BENCH_KEEP:-}" ]]; then
		echo "bench: results and logs kept in $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf 'bench: %s\n' "$*" >&2; }

# wait_for FILE PATTERN PID: until FILE has a line matching PATTERN, or
# the process PID exits (then fail with its log).
wait_for() {
	for _ in $(seq 1 900); do
		if grep -q "$2" "$1" 2>/dev/null; then
			return 0
		fi
		if ! kill -0 "$3" 2>/dev/null; then
			log "process $3 exited; its output:"
			cat "$1" >&2
			return 1
		fi
		sleep 0.1
	done
	log "timed out waiting for $2 in $1"
	return 1
}

# 1. surge up. It prints its gateway and NATS addresses on stderr when it
# generated the admin token, which it does: SURGE_ADMIN_TOKEN is unset.
# The manifests are manifests/ plus the auth-on twins of echo and
# order-accept (scripts/bench-auth.yaml), whose tokens the JWT secret signs.
mkdir -p "$work/manifests"
cp manifests/*.yaml scripts/bench-auth.yaml scripts/bench-overload.yaml "$work/manifests/"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/jwt.secret"
up_flags=(--data "$work/data" --http 127.0.0.1:0 --nats-listen 127.0.0.1:-1
	--manifests "$work/manifests" --jwt-secret-file "$work/jwt.secret"
	--access-log=false --log-level warn --drain-timeout 5s)
if [[ -n "$pprof" ]]; then
	up_flags+=(--pprof "$pprof")
fi
# every_up_flags go to every surge up (main, store growth, Vitess).
engine_flags=() every_up_flags=()
if [[ -n "${BENCH_ORDERS_ENGINE:-}" ]]; then
	engine_flags=(--orders-engine "$BENCH_ORDERS_ENGINE")
	up_flags+=("${engine_flags[@]}")
fi
if [[ -n "${BENCH_MEMORY_LIMIT:-}" ]]; then
	every_up_flags=(--memory-limit "$BENCH_MEMORY_LIMIT")
	up_flags+=("${every_up_flags[@]}")
fi
if [[ -n "${BENCH_NATS_SYNC:-}" ]]; then
	every_up_flags+=(--nats-sync "$BENCH_NATS_SYNC")
	up_flags+=(--nats-sync "$BENCH_NATS_SYNC")
fi
unset SURGE_NATS_CREDS # the embedded server makes its own; set again below
"$surge" up "${up_flags[@]}" 2>"$work/up.log" &
up_pid=$!
pids+=("$up_pid")
# up_addrs LOG PID: waits for a surge up's start line in LOG and for its
# /readyz, and sets up_gateway and up_nats from the line.
up_addrs() {
	local line
	wait_for "$1" '^surge: gateway on' "$2" || return 1
	line=$(grep '^surge: gateway on' "$1")
	up_gateway=$(sed -E 's/^surge: gateway on ([^,]+), .*/\1/' <<<"$line")
	up_nats=$(sed -E 's/.*NATS on ([^,]+), .*/\1/' <<<"$line")
	for _ in $(seq 1 300); do
		curl -fsS "$up_gateway/readyz" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	curl -fsS "$up_gateway/readyz" >/dev/null
}
up_addrs "$work/up.log" "$up_pid"
gateway=$up_gateway nats=$up_nats
log "surge up (pid $up_pid): gateway $gateway, NATS $nats"
# Every bench command that connects to NATS (baselines, verification,
# orders-nats, js-raw) does so with surge's own credentials: verification
# reads consumer state and js-raw creates a stream, which client.creds may not.
export SURGE_NATS_CREDS="$work/data/nats/surge.creds"

# RSS of surge up, twice a second, for the whole bench: "UNIX_MILLIS KIB".
(
	while kill -0 "$up_pid" 2>/dev/null; do
		kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$up_pid/status" 2>/dev/null || true)
		[[ -n "$kib" ]] && echo "$(date +%s%3N) $kib"
		sleep 0.5
	done
) >"$work/rss" &
pids+=("$!")

# 2. The two baseline servers, on free ports; each prints its URL first.
start_baseline() { # KIND -> sets baseline_url, baseline_pid
	"$surge" bench serve-baseline --kind "$1" --http 127.0.0.1:0 --nats "$nats" >"$work/baseline-$1.out" 2>&1 &
	baseline_pid=$!
	pids+=("$baseline_pid")
	wait_for "$work/baseline-$1.out" '^http://' "$baseline_pid"
	baseline_url=$(head -1 "$work/baseline-$1.out")
}
start_baseline echo
url_a=$baseline_url pid_a=$baseline_pid
start_baseline nats-echo
url_b=$baseline_url pid_b=$baseline_pid

# 2b. The peer: the stack users would build instead (../shared/peer: Echo ->
# RabbitMQ with publisher confirms -> batched MariaDB INSERT IGNORE), same
# POST /v1/orders, measured with the same load generator, alternating with
# orders-http. Its env.sh installs rabbitmq-server and mariadb-server with
# apt once and starts both on loopback; without them the report says why.
peer_dir=${BENCH_PEER_DIR:-../shared/peer}
peer_url="" notes=()
if [[ -n "${BENCH_MEMORY_LIMIT:-}" ]]; then
	notes+=("Every surge up ran with --memory-limit $BENCH_MEMORY_LIMIT (BENCH_MEMORY_LIMIT), not surge up's default (auto).")
fi
if [[ -n "${BENCH_NATS_SYNC:-}" ]]; then
	notes+=("Every surge up ran with --nats-sync $BENCH_NATS_SYNC (BENCH_NATS_SYNC), not surge up's default (auto: fsync every 1s).")
fi
free_port() { # a loopback TCP port nothing listens on
	local p
	for p in $(seq 19090 19190); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}
start_peer() {
	if [[ ! -x "$peer_dir/env.sh" ]]; then
		notes+=("The peer was not run: no peer stack at $peer_dir (BENCH_PEER_DIR).")
		return 0
	fi
	if [[ -n "${BENCH_ONLY:-}" && ! "peer" =~ $BENCH_ONLY && ! "peer-open" =~ $BENCH_ONLY && ! "peer.2" =~ $BENCH_ONLY ]]; then
		return 0
	fi
	log "starting the peer (RabbitMQ + MariaDB via $peer_dir/env.sh)"
	# env.sh installs both only when rabbitmq-server is missing; make sure
	# of each, without letting the packages start system-wide services.
	local need=()
	command -v rabbitmq-server >/dev/null || need+=(rabbitmq-server)
	command -v mariadb >/dev/null || need+=(mariadb-server mariadb-client)
	if ((${#need[@]} > 0)) && [[ $(id -u) -eq 0 ]]; then
		local created=0
		if [[ ! -e /usr/sbin/policy-rc.d ]]; then
			printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d && created=1
		fi
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"; } >"$work/peer-apt.log" 2>&1 || true
		((created)) && rm -f /usr/sbin/policy-rc.d
	fi
	peer_env="$peer_dir/env.sh"
	if ! "$peer_env" up >"$work/peer-env.log" 2>&1 || ! grep -q 'peer env up' "$work/peer-env.log"; then
		notes+=("The peer was not run: its RabbitMQ and MariaDB could not be installed or started here ($(tail -1 "$work/peer-env.log" 2>/dev/null)).")
		return 0
	fi
	if ! (cd "$peer_dir" && go build -o "$work/peer" .) >"$work/peer-build.log" 2>&1; then
		notes+=("The peer was not run: it did not build ($(tail -1 "$work/peer-build.log")).")
		return 0
	fi
	local port
	port=$(free_port) || { notes+=("The peer was not run: no free port."); return 0; }
	"$work/peer" serve --http "127.0.0.1:$port" >"$work/peer.log" 2>&1 &
	pids+=("$!")
	for _ in $(seq 1 100); do
		[[ $(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/v1/orders" -d '{}' 2>/dev/null) == 400 ]] && break
		sleep 0.1
	done
	peer_url="http://127.0.0.1:$port"
	log "peer serving on $peer_url"
}
start_peer
# run_peer LABEL FLAGS...: orders-http against the peer, verified by its count.
run_peer() {
	local label=$1
	shift
	if [[ -z "$peer_url" ]]; then
		return 0
	fi
	cpu_pid=none run "$label" 150 orders-http --gateway "$peer_url" --verify-count "$work/peer count" --verify-timeout 90s "$@"
}

# 3. The runs. A failed run (or verification) is recorded and the bench
# goes on; the script fails at the end.
failed=()
files=()
run() { # LABEL LIMIT SCENARIO [FLAGS...]: LIMIT bounds the whole run, verification included
	local label=$1 limit=$2
	shift 2
	if [[ -n "${BENCH_ONLY:-}" && ! "$label" =~ $BENCH_ONLY ]]; then
		return 0
	fi
	log "run $label: surge bench $*"
	if [[ -n "$pprof" && "$label" != baseline-* ]]; then
		(sleep 2 && curl -fsS -o "$work/cpu-$label.pprof" "http://$pprof/debug/pprof/profile?seconds=8") &
	fi
	# The load generator records the CPU time of the surge up serving the
	# run (cpu_pid: "none" for the peer's runs) until its backlog drained,
	# for the report's CPU per acked operation.
	local pid=${cpu_pid:-${rss_pid:-$up_pid}} cpu_flags=()
	if [[ "$pid" != none ]]; then
		cpu_flags=(--cpu-pid "$pid")
	fi
	if timeout "$limit" "$surge" bench "$@" --label "$label" -d "$duration" --warmup "${run_warmup:-$warmup}" \
		"${cpu_flags[@]}" --out "$results/$label.json"; then
		:
	else
		failed+=("$label")
	fi
	[[ -s "$results/$label.json" ]] && files+=("$results/$label.json")
	log "surge up after $label: $(grep -E '^Vm(RSS|HWM)' "/proc/${rss_pid:-$up_pid}/status" 2>/dev/null | tr -s ' \t\n' ' ')"
	wait_jobs
	return 0
}
# wait_jobs waits for a profile being taken (not for the long-lived
# background processes, which are in pids).
wait_jobs() {
	local j
	for j in $(jobs -p); do
		if [[ " ${pids[*]} " != *" $j "* ]]; then
			wait "$j" 2>/dev/null || true
		fi
	done
}
throughput() { sed -n 's/^  "throughput": \([0-9.]*\).*/\1/p' "$results/$1.json" 2>/dev/null || true; }

# Baselines (b) and (c) run twice, before and after the surge runs they
# serve: the machine's speed drifts during a run (shared cores, page cache,
# the heap of surge up), and the report takes the mean of both.
run baseline-echo 60 echo --gateway "$url_a" -c 64
run baseline-nats-echo 60 echo --gateway "$url_b" -c 64
run baseline-js 60 js-raw --nats "$nats" -c 256

# Auth off, on, on, off (ABBA, as orders-http below): a single pair once
# read 0.83x and once 0.94x on the same code, as the machine's speed drifted.
run echo 60 echo --gateway "$gateway" -c 64
run echo-auth 60 echo --gateway "$gateway" -c 64 --path /v1/echo-user --jwt-secret-file "$work/jwt.secret"
run echo-auth.2 60 echo --gateway "$gateway" -c 64 --path /v1/echo-user --jwt-secret-file "$work/jwt.secret"
run echo.2 60 echo --gateway "$gateway" -c 64
run orders-http 150 orders-http --gateway "$gateway" --nats "$nats" -c 64 --verify-timeout 90s
run orders-http-auth 150 orders-http --gateway "$gateway" --nats "$nats" -c 64 --verify-timeout 90s \
	--path /v1/orders-user --jwt-secret-file "$work/jwt.secret"
# Auth on and off once more in the other order (ABBA): the second of two
# runs meets a warmer process and a fuller store, so each side's figure is
# the mean of one run in each position.
run orders-http-auth.2 150 orders-http --gateway "$gateway" --nats "$nats" -c 64 --verify-timeout 90s \
	--path /v1/orders-user --jwt-secret-file "$work/jwt.secret"
run orders-http.2 150 orders-http --gateway "$gateway" --nats "$nats" -c 64 --verify-timeout 90s
# Side by side with the peer, alternating: peer, surge, peer again.
run_peer peer -c 64
run orders-http.3 150 orders-http --gateway "$gateway" --nats "$nats" -c 64 --verify-timeout 90s
run_peer peer.2 -c 64
half=$(awk -v t="$(throughput orders-http)" 'BEGIN { r = t / 2; if (r < 100) r = 100; printf "%d", r }')
run orders-http-open 150 orders-http --gateway "$gateway" --nats "$nats" -c 128 --rate "$half" --verify-timeout 90s
run_peer peer-open -c 128 --rate "$half"
if [[ -n "$peer_env" ]]; then
	"$peer_env" down >/dev/null 2>&1 || true
	peer_env=""
fi
run baseline-nats-echo.2 60 echo --gateway "$url_b" -c 64
kill "$pid_a" "$pid_b" 2>/dev/null || true
# The closed-loop intake outruns the store: the backlog it leaves is what
# the end-to-end rate measures, so verification may wait minutes.
run orders-nats 300 orders-nats --gateway "$gateway" --nats "$nats" -c 256 --verify-timeout 240s
run baseline-js.2 60 js-raw --nats "$nats" -c 256
run signin 60 signin --gateway "$gateway" -c 64
run envelope 60 envelope --gateway "$gateway" -c 64 --envelopes 4 --shares 100
run events 150 events --gateway "$gateway" --nats "$nats" -c 32 --batch 100 --verify-timeout 90s
# One hot SKU, a new buyer per call: accepted orders (202) per second,
# compared with orders-http. The stock (the cap, 100k) outlasts the run at
# this machine's rates, so the figure is the selling rate; a sell-out would
# show as sold_out errors and a lower rate. Verification: never more
# accepted than the stock (exactly the stock once sold out), the sale's
# sold count equals the accepted orders, each stored once.
run sale 120 sale --gateway "$gateway" --nats "$nats" -c 64 --stock 1000000 --verify-timeout 120s \
	--admin-token "$(cat "$work/data/admin-token")"
# Batched intake: 100 orders per orders.submit message (API.md section 4),
# 16 messages in flight, 8,000 measured (800k orders, the most of any run:
# the embedded store keeps them in memory). Late in the bench.
run orders-nats-batch 300 orders-nats --gateway "$gateway" --nats "$nats" -c 16 --batch 100 --count 8000 --verify-timeout 240s
# Overload: echo-slow (scripts/bench-overload.yaml) serves 320 calls/s.
# Open loop at a quarter of that (the unloaded p99, and the gateway learns
# the function's latency), then at three times it: the admitted calls'
# p99 against the unloaded one, how fast the rest are refused, how many.
run overload-unloaded 60 echo --gateway "$gateway" --path /v1/echo-slow -c 64 --rate 80
run overload 60 echo --gateway "$gateway" --path /v1/echo-slow -c 2000 --rate 960

# 3b. Store growth: a second surge up, on an empty embedded store. The
# persisted rate of orders-nats --batch 100 on it (growth-empty), filled
# through the platform to 5M orders (growth-fill runs, each verified),
# then the same run again (growth-5m); and its RSS at the start and after
# every run, right after it (growth-rss) and at rest (growth-rss-rest:
# once the process is idle, nats-server's caches of the stream blocks the
# run read have expired, 10 s after their last read, and a GC has run,
# through its --pprof). The report takes the RSS per stored order as the
# slope of the RSS at rest against the orders stored, from the warm-up
# run's 100k to 1M: right after a run the RSS also holds that run's
# traffic (at the batched intake's 100 MB/s, up to 1 GB of block caches)
# and whatever garbage the GC has not yet collected, which depend on when
# the run ended, not on the orders stored. No run has a warm-up of its
# own: the two measured runs are alike (500k orders each, end to end, on
# a warm process at rest), and the orders stored at each point are the
# acked orders of the runs before it.
run_growth() {
	local fill=1
	if [[ -n "${BENCH_ONLY:-}" && ! "growth-empty" =~ $BENCH_ONLY && ! "growth-5m" =~ $BENCH_ONLY ]]; then
		fill=0
		[[ "echo-nats" =~ $BENCH_ONLY ]] || return 0
	fi
	mkdir -p "$work/growth-manifests"
	cp manifests/*.yaml "$work/growth-manifests/"
	env -u SURGE_NATS_CREDS "$surge" up --data "$work/growth-data" --http 127.0.0.1:0 --nats-listen 127.0.0.1:-1 \
		--manifests "$work/growth-manifests" --access-log=false --log-level info --drain-timeout 5s --no-local-calls \
		--pprof 127.0.0.1:0 --pprof-contention=false "${engine_flags[@]}" "${every_up_flags[@]}" 2>"$work/growth-up.log" &
	local growth_pid=$!
	pids+=("$growth_pid")
	if ! up_addrs "$work/growth-up.log" "$growth_pid"; then
		notes+=("The store-growth runs were not run: their surge up did not start or get ready (growth-up.log).")
		kill "$growth_pid" 2>/dev/null || true
		wait "$growth_pid" 2>/dev/null || true
		return 0
	fi
	# Its gateway calls functions through NATS (--no-local-calls), which
	# the orders-nats runs below do not use: echo over it is the gateway's
	# figure on the path baseline (b) measures, before any order is stored.
	rss_pid=$growth_pid run echo-nats 60 echo --gateway "$up_gateway" -c 64
	local kib
	kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/$growth_pid/status" 2>/dev/null || true)
	[[ -z "$kib" ]] || echo "echo-nats $kib" >>"$work/own-rss"
	if ((!fill)); then
		kill "$growth_pid" 2>/dev/null || true
		wait "$growth_pid" 2>/dev/null || true
		return 0
	fi
	local flags=(orders-nats --gateway "$up_gateway" --nats "$up_nats" -c 16 --batch 100 --verify-timeout 240s)
	local stored=0 n=1 label acked
	# Its pprof address (--pprof 127.0.0.1:0), for the GC of rest below.
	local growth_pprof
	growth_pprof=$(sed -n 's/.*msg="pprof listening" addr=\(http:[^ ]*\)\/debug\/pprof\/.*/\1/p' "$work/growth-up.log" | head -1)
	# checkpoint LABEL: the growth surge up's RSS now, then at rest (nothing
	# when it is gone).
	checkpoint() {
		local kib
		kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$growth_pid/status" 2>/dev/null || true)
		[[ -z "$kib" ]] || echo "$1 $kib" >>"$work/growth-rss"
		rest "$1"
	}
	# rest LABEL: waits until the growth surge up is idle (at most 5% of a
	# core over a second, for at most 30 s), then 11 s more (nats-server
	# drops a stream block's cache 10 s after its last read), runs a GC
	# through pprof's heap?gc=1 and records its RSS 2 s later.
	rest() {
		local kib t0 t1 idle=0
		[[ -n "$growth_pprof" ]] || return 0
		for _ in $(seq 1 30); do
			t0=$(awk '{ print $14 + $15 }' "/proc/$growth_pid/stat" 2>/dev/null) || return 0
			sleep 1
			t1=$(awk '{ print $14 + $15 }' "/proc/$growth_pid/stat" 2>/dev/null) || return 0
			if ((t1 - t0 <= 5)); then
				idle=1
				break
			fi
		done
		((idle)) || log "the store-growth surge up was still busy 30 s after $1; its RSS at rest is read anyway"
		sleep 11
		curl -fsS --max-time 30 -o /dev/null "$growth_pprof/debug/pprof/heap?gc=1" || return 0
		sleep 2
		kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$growth_pid/status" 2>/dev/null || true)
		[[ -z "$kib" ]] || echo "$1 $kib" >>"$work/growth-rss-rest"
	}
	# growth LABEL WARMUP COUNT: one verified run; false when it failed.
	growth() {
		SURGE_NATS_CREDS="$work/growth-data/nats/surge.creds" rss_pid=$growth_pid run_warmup=$2 BENCH_ONLY="" \
			run "$1" 300 "${flags[@]}" --count "$3"
		grep -q '^    "passed": true' "$results/$1.json" 2>/dev/null || return 1
		checkpoint "$1"
		acked=$(sed -n 's/^    "acked": \([0-9]*\).*/\1/p' "$results/$1.json")
		stored=$((stored + acked))
	}
	checkpoint start
	# A first run of 100k orders warms the process (pull buffers, pools,
	# the heap's first steps), so growth-empty and growth-5m both meet a
	# warm one and the RSS slope leaves those one-time costs out.
	if growth growth-warm 0s 1000 && growth growth-empty 0s 5000; then
		# To 1M in steps of 125k (the slope's points), then 1M at a time;
		# a run that stored nothing ends the fill (at most 12 runs).
		label=growth-fill
		while ((stored < 5000000 && n <= 12)); do
			growth "$label" 0s "$( ((stored < 1000000)) && echo 1250 || echo 10000)" || break
			((acked > 0)) || break
			n=$((n + 1))
			label=growth-fill.$n
		done
		if ((stored >= 5000000)); then
			log "the store-growth surge up holds $stored orders"
			growth growth-5m 0s 5000 || true
		fi
	fi
	kill "$growth_pid" 2>/dev/null || true
	wait "$growth_pid" 2>/dev/null || true
}
run_growth

# 3c. orders-nats on --store vitess: a third surge up, on a 2-shard
# vttestserver (scripts/vitess-test-env.sh, which make test uses too), its
# persisted rate against the peer's. Last: it needs the cores to itself.
run_vitess() {
	if [[ -n "${BENCH_ONLY:-}" && ! "orders-nats-vitess" =~ $BENCH_ONLY ]]; then
		return 0
	fi
	vt_state=$(mktemp -d /tmp/surge-bench-vt.XXXXXX)
	log "starting a 2-shard Vitess (scripts/vitess-test-env.sh)"
	if ! scripts/vitess-test-env.sh start manifests/vitess "$vt_state" >"$work/vitess.log" 2>&1; then
		notes+=("orders-nats on --store vitess was not run: the Vitess test environment did not start ($(tail -1 "$work/vitess.log")); scripts/vitess-test-env.sh install builds it.")
		return 0
	fi
	local vtgate vt_pid
	vtgate=$(sed -n 's/^SURGE_TEST_VTGATE=//p' "$vt_state/env")
	mkdir -p "$work/vt-manifests"
	cp manifests/*.yaml "$work/vt-manifests/"
	env -u SURGE_NATS_CREDS "$surge" up --data "$work/vt-data" --http 127.0.0.1:0 --nats-listen 127.0.0.1:-1 --manifests "$work/vt-manifests" \
		--store vitess --vtgate "$vtgate" --access-log=false --log-level warn "${every_up_flags[@]}" 2>"$work/vt-up.log" &
	vt_pid=$!
	pids+=("$vt_pid")
	if ! up_addrs "$work/vt-up.log" "$vt_pid"; then
		notes+=("orders-nats on --store vitess was not run: surge up did not start or get ready (vt-up.log).")
		return 0
	fi
	SURGE_NATS_CREDS="$work/vt-data/nats/surge.creds" cpu_pid=$vt_pid run orders-nats-vitess 420 orders-nats --gateway "$up_gateway" --nats "$up_nats" \
		-c 256 --verify-timeout 300s
	local kib
	kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/$vt_pid/status" 2>/dev/null || true)
	[[ -z "$kib" ]] || echo "orders-nats-vitess $kib" >>"$work/own-rss"
	kill "$vt_pid" 2>/dev/null || true
	wait "$vt_pid" 2>/dev/null || true
	scripts/vitess-test-env.sh stop "$vt_state" >/dev/null 2>&1 || true
	rm -rf "$vt_state"
	vt_state=""
}
run_vitess

# 4. The report, while surge up still runs (its VmHWM is the peak RSS).
if ((${#files[@]} == 0)); then
	log "no run produced a result"
	exit 1
fi
commit=$(git describe --always --dirty 2>/dev/null || echo unknown)
report_flags=()
if [[ -s "$work/growth-rss" ]]; then
	report_flags+=(--growth-rss "$work/growth-rss")
fi
if [[ -s "$work/growth-rss-rest" ]]; then
	report_flags+=(--growth-rss-rest "$work/growth-rss-rest")
fi
if [[ -s "$work/own-rss" ]]; then
	report_flags+=(--own-rss "$work/own-rss")
fi
out=BENCHMARKS.md
if [[ -n "${BENCH_ONLY:-}" ]]; then
	out="$work/BENCHMARKS.md"
fi
"$surge" bench report "${files[@]}" --out "$out" --commit "$commit" \
	--rss-samples "$work/rss" --pid "$up_pid" "${report_flags[@]}" --started "$started" --loadavg "$loadavg" \
	"${notes[@]/#/--note=}"
log "wrote $out in $(($(date +%s) - started))s"
sed -n '/^## Targets/,/^## Results/p' "$out" | grep '^|' >&2
if ((${#failed[@]} > 0)); then
	log "failed runs: ${failed[*]}"
	exit 1
fi
