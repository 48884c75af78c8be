#!/usr/bin/env bash
# vitess-test-env.sh — a real, throwaway Vitess cluster for surge's tests/CI.
#
# It runs Vitess' own `vttestserver` (one vtcombo process = vtgate + vttablets
# + in-memory topo, plus one mysqld managed by `mysqlctl`) on loopback ports,
# so integration tests can talk to a genuine vtgate over gRPC (vitessdriver)
# or over the MySQL protocol.
#
# Everything is built/installed from sources this machine can reach: the Go
# module proxy (vitess.io/vitess, pinned in tools/vitess/go.mod) and Debian
# apt (mariadb-server provides mysqld). Vitess does not officially support
# MariaDB for serving, but vttestserver works on it once three MySQL-8-only
# settings are patched out of a copy of Vitess' config/ dir (see
# prepare_vtroot below).
#
# Usage: see usage() or run with --help.

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${SCRIPT_DIR}/.." && pwd)"
TOOLS_MOD_DIR="${REPO_ROOT}/tools/vitess"

# The Vitess version comes from the tools module so there is a single place to
# bump it.
VT_VERSION="$(awk '$1 == "vitess.io/vitess" { print $2; exit }' "${TOOLS_MOD_DIR}/go.mod" 2>/dev/null || true)"
VT_VERSION="${VT_VERSION:-v0.24.0}"

# Where the built binaries (+ a stamp of the tools module) are cached. Lives
# outside the repo so fresh clones / CI runs on the same machine reuse it.
VT_CACHE="${SURGE_VT_CACHE:-${HOME:-/root}/.cache/surge/vitess-${VT_VERSION}}"

# Unprivileged user that runs vttestserver: mysqlctl refuses to run as root.
VT_USER="${SURGE_VT_USER:-surgevt}"
VT_USER_HOME="/var/lib/${VT_USER}"

# VTROOT (bin/ + patched config/) must be readable by VT_USER, and $HOME of
# root is usually mode 0700, so it lives in VT_USER's home rather than in
# VT_CACHE. It is still a cache: rebuilt only when missing or stale.
VTROOT_DIR="${SURGE_VTROOT:-${VT_USER_HOME}/vtroot-${VT_VERSION}}"

# Parent of the per-run data dirs (must be traversable by VT_USER; keep it
# short: mysqld's unix socket path must stay under ~107 bytes).
VT_DATA_PARENT="${SURGE_VT_DATA_PARENT:-/tmp}"

# How long `start` waits for vtgate to answer.
VT_START_TIMEOUT="${SURGE_VT_START_TIMEOUT:-180}"

VT_BINARIES=(vttestserver vtcombo mysqlctl)

usage() {
	cat <<EOF
Usage: $(basename "$0") COMMAND [ARGS]

Commands:
  install
      Make this machine able to run the test cluster; idempotent and fast
      when everything is already there:
        - apt-get install mariadb-server/mariadb-client if mysqld is missing
        - build vttestserver, vtcombo, mysqlctl (vitess.io/vitess ${VT_VERSION},
          pinned by tools/vitess/go.mod) into \$SURGE_VT_CACHE/bin if missing
        - prepare VTROOT (bin/ + MariaDB-patched config/)
        - create the unprivileged system user '${VT_USER}' if missing

  start SCHEMA_DIR STATE_DIR
      Run 'install', then start vttestserver in the background on a random
      free loopback port base P and wait (<= ${VT_START_TIMEOUT}s) until vtgate
      answers both gRPC and MySQL-protocol queries. SCHEMA_DIR holds one
      subdirectory per keyspace with *.sql files and an optional vschema.json
      (keyspace with "sharded": true gets 2 shards, -80 and 80-; others 1
      shard, "0"). Writes STATE_DIR/env (sourceable shell) with:
        SURGE_TEST_VTGATE=127.0.0.1:<P+1>        vtgate gRPC (vitessdriver)
        SURGE_TEST_VTGATE_MYSQL=127.0.0.1:<P+3>  vtgate MySQL protocol
        SURGE_TEST_VT_PID=<pid>                  process-group leader
      and prints them. On failure prints the log tails, cleans up, exits 1.

  stop STATE_DIR
      Stop the cluster started with STATE_DIR: vttestserver, vtcombo,
      mysqlctl, mysqld_safe and mysqld; then remove its data. Safe to run
      twice or on a STATE_DIR whose start failed.

Ports (P = base port):
  P    vtcombo HTTP (/debug/status, /debug/vschema)
  P+1  vtcombo gRPC  (vtgate + vtctld + tabletmanager services)
  P+2  mysqld        (the backing MariaDB, vt_dba user, local only)
  P+3  vtgate MySQL protocol (no auth: any user/password is accepted)

Environment overrides:
  SURGE_VT_CACHE          binary cache (default \$HOME/.cache/surge/vitess-${VT_VERSION})
  SURGE_VTROOT            VTROOT dir (default ${VT_USER_HOME}/vtroot-${VT_VERSION})
  SURGE_VT_USER           unprivileged user (default surgevt)
  SURGE_VT_DATA_PARENT    parent of per-run data dirs (default /tmp)
  SURGE_VT_START_TIMEOUT  seconds to wait for vtgate (default 180)
  SURGE_VT_NUM_SHARDS     comma list of shard counts, one per keyspace
                          (default: 2 if vschema.json says sharded, else 1)
  SURGE_VT_REPLICA_COUNT  replica tablets per shard incl. primary (default 2)
  SURGE_VT_RDONLY_COUNT   rdonly tablets per shard (default 1)
  SURGE_VT_EXTRA_ARGS     extra vttestserver flags (word-split)
EOF
}

log() { printf '[vitess-test-env] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need_root() {
	[[ "$(id -u)" == 0 ]] || die "must run as root (installs packages, creates user '${VT_USER}', uses runuser)"
}

# ---------------------------------------------------------------- install --

# mysqld from Debian's mariadb-server (also brings mysql/mariadb client,
# mysqld_safe, mysql_install_db).
install_mariadb() {
	if [[ -x /usr/sbin/mysqld || -x /usr/bin/mysqld ]] && command -v mysql >/dev/null 2>&1; then
		return 0
	fi
	log "installing mariadb-server via apt (mysqld missing)"
	# Stop the package's postinst from starting a system-wide mysqld: we only
	# want the binaries. policy-rc.d exit 101 = "action forbidden".
	local policy=/usr/sbin/policy-rc.d created_policy=0
	if [[ ! -e "${policy}" ]]; then
		printf '#!/bin/sh\nexit 101\n' >"${policy}"
		chmod 0755 "${policy}"
		created_policy=1
	fi
	local rc=0
	{
		DEBIAN_FRONTEND=noninteractive apt-get update -q &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
				mariadb-server mariadb-client
	} >&2 || rc=$?
	if ((created_policy)); then rm -f "${policy}"; fi
	((rc == 0)) || die "apt-get install mariadb-server failed (rc=${rc})"
	[[ -x /usr/sbin/mysqld || -x /usr/bin/mysqld ]] || die "mysqld still missing after installing mariadb-server"
}

# Hash of the tools module: the binaries are rebuilt when it changes.
tools_stamp() {
	cat "${TOOLS_MOD_DIR}/go.mod" "${TOOLS_MOD_DIR}/go.sum" | sha256sum | cut -d' ' -f1
}

binaries_ok() {
	local b
	for b in "${VT_BINARIES[@]}"; do
		[[ -x "${VT_CACHE}/bin/${b}" ]] || return 1
	done
	[[ -f "${VT_CACHE}/stamp" && "$(cat "${VT_CACHE}/stamp")" == "$(tools_stamp)" ]]
}

# Build the three binaries from the pinned tools module (not the root module:
# Vitess' dependency tree must stay out of surge's go.mod). Takes a few
# minutes cold on 2 cores.
build_binaries() {
	if binaries_ok; then
		return 0
	fi
	command -v go >/dev/null 2>&1 || die "go is not installed (needed to build Vitess ${VT_VERSION})"
	log "building Vitess ${VT_VERSION} binaries into ${VT_CACHE}/bin (cold build takes several minutes)"
	mkdir -p "${VT_CACHE}"
	local tmp
	tmp="$(mktemp -d "${VT_CACHE}/build.XXXXXX")"
	local start=${SECONDS}
	# GOWORK=off: never let a go.work in the repo pull this module in or out.
	# -mod=readonly: go.sum must already be complete (no silent edits).
	if ! (cd "${TOOLS_MOD_DIR}" &&
		GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false" \
			go build -trimpath -ldflags='-s -w' -o "${tmp}/" \
			vitess.io/vitess/go/cmd/vttestserver \
			vitess.io/vitess/go/cmd/vtcombo \
			vitess.io/vitess/go/cmd/mysqlctl) >&2; then
		rm -rf "${tmp}"
		die "go build of Vitess binaries failed"
	fi
	mkdir -p "${VT_CACHE}/bin"
	local b
	for b in "${VT_BINARIES[@]}"; do
		mv -f "${tmp}/${b}" "${VT_CACHE}/bin/${b}"
	done
	rm -rf "${tmp}"
	tools_stamp >"${VT_CACHE}/stamp"
	log "built in $((SECONDS - start))s"
}

create_user() {
	if ! id -u "${VT_USER}" >/dev/null 2>&1; then
		log "creating system user ${VT_USER}"
		useradd --system --home-dir "${VT_USER_HOME}" --shell /usr/sbin/nologin \
			--user-group "${VT_USER}"
	fi
	mkdir -p "${VT_USER_HOME}"
	chown "${VT_USER}:" "${VT_USER_HOME}"
	chmod 0755 "${VT_USER_HOME}"
}

# Vitess' config/ dir (mycnf files, init_db.sql) from the module cache.
vitess_module_dir() {
	local dir
	dir="$(cd "${TOOLS_MOD_DIR}" && { GOWORK=off GOFLAGS=-mod=readonly go list -m -f '{{.Dir}}' vitess.io/vitess 2>/dev/null || true; })"
	if [[ -z "${dir}" || ! -d "${dir}/config" ]]; then
		(cd "${TOOLS_MOD_DIR}" && GOWORK=off go mod download vitess.io/vitess) >&2
		dir="$(cd "${TOOLS_MOD_DIR}" && GOWORK=off GOFLAGS=-mod=readonly go list -m -f '{{.Dir}}' vitess.io/vitess)"
	fi
	[[ -d "${dir}/config" ]] || die "cannot find vitess.io/vitess ${VT_VERSION} config/ in the module cache"
	printf '%s\n' "${dir}"
}

# VTROOT layout expected by vttestserver: $VTROOT/bin/{mysqlctl,vtcombo} and
# $VTROOT/config/{init_db.sql,mycnf/*.cnf}. The config is patched for MariaDB:
#  1. mycnf/test-suite.cnf: `super-read-only` is a MySQL-8-only variable
#     (mariadbd refuses to start with it).
#  2. init_db.sql: the two `super_read_only` SET statements fail on MariaDB.
#  3. mycnf/mariadb10.cnf: `plugin-load = rpl_semi_sync_*=semisync_*.so`
#     names plugins MariaDB >= 10.3 no longer ships (semi-sync is built in).
#     NOTE: mysqlctl v0.24 uses the copy of mariadb10.cnf *embedded in its
#     binary*, so commenting it out on disk has no effect; what actually
#     removes the (non-fatal, but noisy "Can't open shared library
#     semisync_master.so") error is the `plugin-load =` reset appended to
#     test-suite.cnf, which is read from $VTROOT and appended after it.
#     The on-disk edit is kept so the copy stays self-consistent.
#  4. mycnf/test-suite.cnf: bind mysqld to 127.0.0.1 only.
prepare_vtroot() {
	local stamp
	stamp="${VT_VERSION} $(tools_stamp) patch-v2"
	if [[ -f "${VTROOT_DIR}/.stamp" && "$(cat "${VTROOT_DIR}/.stamp")" == "${stamp}" ]]; then
		local b ok=1
		for b in "${VT_BINARIES[@]}"; do
			[[ "${VTROOT_DIR}/bin/${b}" -ef "${VT_CACHE}/bin/${b}" ]] ||
				cmp -s "${VTROOT_DIR}/bin/${b}" "${VT_CACHE}/bin/${b}" || { ok=0; break; }
		done
		((ok)) && return 0
	fi
	log "preparing VTROOT at ${VTROOT_DIR}"
	local src
	src="$(vitess_module_dir)"
	local tmp="${VTROOT_DIR}.tmp.$$"
	rm -rf "${tmp}"
	mkdir -p "${tmp}/bin"
	local b
	for b in "${VT_BINARIES[@]}"; do
		# Hard link when the cache is on the same filesystem, else copy.
		ln -f "${VT_CACHE}/bin/${b}" "${tmp}/bin/${b}" 2>/dev/null ||
			cp -f "${VT_CACHE}/bin/${b}" "${tmp}/bin/${b}"
	done
	cp -r "${src}/config" "${tmp}/config"
	chmod -R u+w "${tmp}/config" # module cache files are read-only
	sed -i -E 's/^([[:space:]]*plugin-load[[:space:]]*=.*)$/# \1  # patched out for MariaDB (surge)/' \
		"${tmp}/config/mycnf/mariadb10.cnf"
	sed -i -E 's/^([[:space:]]*super-read-only[[:space:]]*=.*)$/# \1  # patched out for MariaDB (surge)/' \
		"${tmp}/config/mycnf/test-suite.cnf"
	cat >>"${tmp}/config/mycnf/test-suite.cnf" <<'EOF'

# --- added by surge scripts/vitess-test-env.sh (MariaDB) ---
# Reset the plugin-load of the (embedded) mariadb10.cnf: semi-sync is built
# into MariaDB >= 10.3, the semisync_*.so files do not exist.
plugin-load =
# Only listen on loopback.
bind-address = 127.0.0.1
EOF
	sed -i -E '/super_read_only/d' "${tmp}/config/init_db.sql"
	# Sanity check that the patches applied.
	! grep -Eq '^[[:space:]]*plugin-load' "${tmp}/config/mycnf/mariadb10.cnf" || die "patch of mariadb10.cnf failed"
	! grep -Eq '^[[:space:]]*super-read-only' "${tmp}/config/mycnf/test-suite.cnf" || die "patch of test-suite.cnf failed"
	! grep -q 'super_read_only' "${tmp}/config/init_db.sql" || die "patch of init_db.sql failed"
	printf '%s\n' "${stamp}" >"${tmp}/.stamp"
	chmod -R a+rX "${tmp}"
	rm -rf "${VTROOT_DIR}"
	mv "${tmp}" "${VTROOT_DIR}"
}

cmd_install() {
	need_root
	[[ -f "${TOOLS_MOD_DIR}/go.mod" ]] || die "missing ${TOOLS_MOD_DIR}/go.mod"
	install_mariadb
	build_binaries
	create_user
	prepare_vtroot
}

# ------------------------------------------------------------------ start --

# Listening TCP ports (decimal) from /proc: needs no ss/netstat/python.
listening_ports() {
	local hex
	# Column 2 is ADDR:PORT in hex, column 4 the state (0A = LISTEN). The hex
	# conversion is done by bash: Debian's default awk (mawk) has no strtonum.
	while read -r hex; do
		echo $((16#${hex}))
	done < <(awk 'FNR > 1 && $4 == "0A" { n = split($2, a, ":"); print a[n] }' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null) | sort -un
}

port_in_use() {
	local p=$1
	grep -qx "${p}" <<<"${LISTENING}" && return 0
	# Belt and braces: something accepting a connection?
	(exec 3<>"/dev/tcp/127.0.0.1/${p}") 2>/dev/null && return 0
	return 1
}

# Random base port P in [15000, 29990) such that P..P+5 are free (below the
# default Linux ephemeral range 32768+ so outgoing connections do not grab it).
pick_base_port() {
	local tries p i free
	for ((tries = 0; tries < 200; tries++)); do
		p=$((15000 + (RANDOM * 32768 + RANDOM) % 14990))
		LISTENING="$(listening_ports)"
		free=1
		for ((i = 0; i <= 5; i++)); do
			if port_in_use $((p + i)); then free=0; break; fi
		done
		if ((free)); then
			echo "${p}"
			return 0
		fi
	done
	die "could not find 6 consecutive free loopback ports"
}

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

mysql_client() {
	if command -v mariadb >/dev/null 2>&1; then echo mariadb; else echo mysql; fi
}

# Tail of everything useful for diagnosing a failed start.
dump_logs() {
	local state=$1 data=${2:-}
	{
		# vttestserver/vtcombo log JSON lines to stderr; on a fatal error cobra
		# also prints the whole --help, so show the error lines first.
		echo "----- ${state}/vttestserver.log (ERROR/FATAL lines) -----"
		grep -E '"level":"(ERROR|FATAL)"|^(F|E)[0-9]{4} |panic:' "${state}/vttestserver.log" 2>/dev/null |
			tail -n 15 | cut -c1-1500 || true
		echo "----- ${state}/vttestserver.log (tail) -----"
		grep -vE '^      --|^  -h, --help|^Flags:|^Usage:|^  vttestserver \[flags\]' "${state}/vttestserver.log" 2>/dev/null |
			tail -n 40 | cut -c1-1500 || true
		if [[ -n "${data}" && -d "${data}" ]]; then
			local f
			for f in "${data}"/logs/* "${data}"/vt_*/error.log "${data}"/vt_*/*.err; do
				[[ -f "${f}" && ! -L "${f}" ]] || continue
				echo "----- ${f} (tail) -----"
				grep -v 'Aborted connection' "${f}" | tail -n 25 || true
			done
		fi
	} >&2
}

# Comma list of keyspaces (= subdirectories of SCHEMA_DIR) and their shard counts.
keyspaces_of() {
	local schema=$1 d ks=() shards=()
	for d in "${schema}"/*/; do
		[[ -d "${d}" ]] || continue
		local name
		name="$(basename "${d}")"
		ks+=("${name}")
		if [[ -f "${d}/vschema.json" ]] && grep -Eq '"sharded"[[:space:]]*:[[:space:]]*true' "${d}/vschema.json"; then
			shards+=(2)
		else
			shards+=(1)
		fi
	done
	((${#ks[@]} > 0)) || die "no keyspace subdirectories in ${schema}"
	local IFS=,
	KEYSPACES="${ks[*]}"
	NUM_SHARDS="${SURGE_VT_NUM_SHARDS:-${shards[*]}}"
}

cmd_start() {
	(($# == 2)) || { usage >&2; exit 2; }
	local schema_src=$1 state=$2
	[[ -d "${schema_src}" ]] || die "schema dir ${schema_src} does not exist"
	cmd_install

	mkdir -p "${state}"
	state="$(cd "${state}" && pwd)"
	schema_src="$(cd "${schema_src}" && pwd)"
	if [[ -f "${state}/pid" ]] && kill -0 "$(cat "${state}/pid")" 2>/dev/null; then
		die "a cluster is already running for ${state} (pid $(cat "${state}/pid")); run stop first"
	fi
	rm -f "${state}/env" "${state}/pid" "${state}/datadir" "${state}/baseport" \
		"${state}"/vttestserver*.log "${state}/vttestserver.json"

	keyspaces_of "${schema_src}"

	# Per-run data dir owned by the unprivileged user; STATE_DIR may be
	# somewhere (e.g. under /root) that user cannot reach. The schema is
	# copied in for the same reason.
	local data
	data="$(mktemp -d "${VT_DATA_PARENT%/}/surge-vt.XXXXXX")"
	echo "${data}" >"${state}/datadir"
	mkdir -p "${data}/vt/logs" "${data}/tmp"
	cp -r "${schema_src}" "${data}/schema"
	chown -R "${VT_USER}:" "${data}"
	chmod 0755 "${data}"

	local attempt base pid=""
	for attempt in 1 2 3; do
		base="$(pick_base_port)"
		log "starting vttestserver (keyspaces=${KEYSPACES} shards=${NUM_SHARDS}) on base port ${base}, data ${data}"
		# setsid: own process group/session so `stop` can signal the whole tree.
		# env -i: clean, explicit environment for the unprivileged user.
		# Keep replica-count>=2 and rdonly-count>=1 (vttestserver's defaults):
		# vtgate waits --gateway-initial-tablet-timeout (30s) at startup for a
		# tablet of every type, so with no REPLICA tablet startup takes ~35s
		# instead of a few seconds, and `@replica` targets would not work.
		# All tablets of a shard share one database in the single mysqld, so
		# the extra tablets are cheap.
		# --vschema-ddl-authorized-users lets the vitess store route and create
		# a table a newer surge adds (runtime/store/vitess TestOpenCreatesMissingTable).
		# shellcheck disable=SC2086
		setsid runuser -u "${VT_USER}" -- env -i \
			PATH=/usr/sbin:/usr/bin:/sbin:/bin \
			HOME="${data}" TMPDIR="${data}/tmp" USER="${VT_USER}" \
			VTROOT="${VTROOT_DIR}" VTDATAROOT="${data}/vt" VT_MYSQL_ROOT=/usr \
			"${VTROOT_DIR}/bin/vttestserver" \
			--port "${base}" \
			--mysql-bind-host 127.0.0.1 \
			--vtcombo-bind-host 127.0.0.1 \
			--grpc-bind-address 127.0.0.1 \
			--keyspaces "${KEYSPACES}" \
			--num-shards "${NUM_SHARDS}" \
			--replica-count "${SURGE_VT_REPLICA_COUNT:-2}" \
			--rdonly-count "${SURGE_VT_RDONLY_COUNT:-1}" \
			--schema-dir "${data}/schema" \
			--data-dir "${data}/vt" \
			--vschema-ddl-authorized-users '%' \
			${SURGE_VT_EXTRA_ARGS:-} \
			</dev/null >"${state}/vttestserver.json" 2>>"${state}/vttestserver.log" &
		pid=$!
		echo "${pid}" >"${state}/pid"
		echo "${base}" >"${state}/baseport"

		if wait_ready "${pid}" "${base}" "${state}" "${data}"; then
			break
		fi
		# Lost a race for a port? Retry on a new base port; anything else is fatal.
		if ((attempt < 3)) && port_collision "${state}" "${data}"; then
			log "port collision, retrying with another base port"
			kill_tree "${pid}" "${data}" || true
			mv -f "${state}/vttestserver.log" "${state}/vttestserver.attempt${attempt}.log"
			# mysqlctl init refuses an already initialised tablet dir.
			rm -rf "${data}/vt"
			mkdir -p "${data}/vt/logs"
			chown -R "${VT_USER}:" "${data}/vt"
			continue
		fi
		log "vttestserver did not become ready"
		dump_logs "${state}" "${data}/vt"
		cmd_stop "${state}" || true
		exit 1
	done

	cat >"${state}/env" <<EOF
SURGE_TEST_VTGATE=127.0.0.1:$((base + 1))
SURGE_TEST_VTGATE_MYSQL=127.0.0.1:$((base + 3))
SURGE_TEST_VT_PID=${pid}
EOF
	cat "${state}/env"
}

# Someone grabbed one of our ports between pick_base_port and the bind?
# (mysqld reports it in its error.log, vtcombo in vttestserver.log)
port_collision() {
	local state=$1 data=$2
	grep -qsi 'address already in use' "${state}/vttestserver.log" "${data}"/vt/vt_*/error.log
}

# Ready =
#  1. vttestserver printed its JSON config to stdout: it only does so after
#     cluster.Setup() returned, i.e. mysqld is up, vtcombo is up AND the
#     schema/vschema from SCHEMA_DIR were applied (vtcombo's ports open
#     *before* the schema is loaded, so ports alone are not enough), and
#  2. the gRPC port accepts connections, and
#  3. a real query over vtgate's MySQL port works and shows a SERVING primary
#     for every shard.
wait_ready() {
	local pid=$1 base=$2 state=$3 data=$4 deadline=$((SECONDS + VT_START_TIMEOUT)) client
	local json="${state}/vttestserver.json"
	client="$(mysql_client)"
	local expected=0 n
	for n in ${NUM_SHARDS//,/ }; do expected=$((expected + n)); done
	while ((SECONDS < deadline)); do
		kill -0 "${pid}" 2>/dev/null || { log "vttestserver exited early"; return 1; }
		# mysqlctl would otherwise wait 60s for a mysqld that cannot bind.
		port_collision "${state}" "${data}" && { log "a port is already in use"; return 1; }
		if grep -q '"vtcombo_mysql_port"' "${json}" 2>/dev/null &&
			tcp_open $((base + 1)) && tcp_open $((base + 3)); then
			local out
			if out="$("${client}" --protocol=TCP -h127.0.0.1 -P$((base + 3)) -uroot \
				--connect-timeout=5 -N -B -e 'show vitess_tablets' 2>/dev/null)"; then
				local serving
				serving="$(awk '$4 == "PRIMARY" && $5 == "SERVING"' <<<"${out}" | wc -l)"
				if ((serving >= expected)); then
					log "vtgate ready after ${SECONDS}s (${serving} serving primaries)"
					return 0
				fi
			fi
		fi
		sleep 1
	done
	log "timed out after ${VT_START_TIMEOUT}s"
	return 1
}

# ------------------------------------------------------------------- stop --

# PIDs of processes still referring to this run's data dir (mysqld_safe and
# mysqld are daemonised by mysqlctl, possibly outside the process group).
pids_of_data() {
	local data=$1 p
	[[ -n "${data}" ]] || return 0
	for p in /proc/[0-9]*; do
		{ tr '\0' ' ' <"${p}/cmdline"; } 2>/dev/null | grep -qF -- "${data}" && echo "${p#/proc/}"
	done
	# mysqld's own pid file.
	local f
	for f in "${data}"/vt/vt_*/mysql.pid; do
		[[ -f "${f}" ]] && cat "${f}"
	done
	return 0
}

# "pid ppid pgid comm" for every process, straight from /proc (no procps).
proc_table() {
	local f line rest
	for f in /proc/[0-9]*/stat; do
		{ read -r line <"${f}"; } 2>/dev/null || continue
		# Format: pid (comm) state ppid pgrp ...; comm may contain spaces.
		rest="${line##*) }"
		local comm="${line#*(}"
		comm="${comm%) *}"
		# shellcheck disable=SC2086
		set -- ${rest}
		echo "${line%% *} $2 $3 ${comm}"
	done
}

pgid_pids() {
	local pgid=$1
	[[ -n "${pgid}" ]] || return 0
	proc_table | awk -v g="${pgid}" '$3 == g { print $1 }'
}

alive() {
	local p
	for p in "$@"; do kill -0 "${p}" 2>/dev/null && return 0; done
	return 1
}

# Stop everything belonging to one run. `pid` is the setsid'd runuser, i.e.
# the process-group leader; vttestserver is its child.
#  1. SIGTERM to vttestserver *only*: it tears down vtcombo and then runs
#     `mysqlctl shutdown` (mysqladmin) for mysqld. Signalling the whole group
#     instead makes mysqld die under mysqladmin's feet, which then hangs.
#     (Nor is runuser signalled: it would SIGKILL vttestserver after 2s.)
#  2. After at most 10s, SIGKILL whatever is left in the process group or
#     still refers to the data dir (mysqld_safe/mysqld are daemonised by
#     mysqlctl and survive a crashed vttestserver). The data is thrown away
#     anyway, so an unclean mysqld shutdown is harmless.
kill_tree() {
	local pid=$1 data=$2 pids i vtts
	if [[ -n "${pid}" ]] && kill -0 "${pid}" 2>/dev/null; then
		mapfile -t vtts < <(proc_table | awk -v g="${pid}" '$3 == g && $4 == "vttestserver" { print $1 }')
		if ((${#vtts[@]} > 0)); then
			kill -TERM "${vtts[@]}" 2>/dev/null || true
			for ((i = 0; i < 20; i++)); do
				alive "${vtts[@]}" || break
				sleep 0.5
			done
		fi
	fi
	for ((i = 0; i < 20; i++)); do
		mapfile -t pids < <({ pgid_pids "${pid}"; pids_of_data "${data}"; } | sort -un)
		((${#pids[@]} == 0)) && return 0
		alive "${pids[@]}" || return 0
		kill -KILL "${pids[@]}" 2>/dev/null || true
		sleep 0.5
	done
	log "WARNING: processes still alive: ${pids[*]}"
	return 1
}

cmd_stop() {
	(($# == 1)) || { usage >&2; exit 2; }
	local state=$1 pid="" data=""
	[[ -d "${state}" ]] || { log "no state dir ${state}; nothing to stop"; return 0; }
	[[ -f "${state}/pid" ]] && pid="$(cat "${state}/pid")"
	[[ -f "${state}/datadir" ]] && data="$(cat "${state}/datadir")"
	local rc=0
	kill_tree "${pid}" "${data}" || rc=1
	# Only ever delete a data dir this script created.
	if [[ -n "${data}" && "$(basename "${data}")" == surge-vt.* && -d "${data}" ]]; then
		rm -rf "${data}"
	fi
	rm -f "${state}/pid" "${state}/datadir" "${state}/env" "${state}/baseport" "${state}/vttestserver.json"
	((rc == 0)) && log "stopped"
	return "${rc}"
}

# ------------------------------------------------------------------- main --

main() {
	local cmd=${1:-}
	shift || true
	case "${cmd}" in
	install) (($# == 0)) || { usage >&2; exit 2; }; cmd_install ;;
	start) cmd_start "$@" ;;
	stop) need_root; cmd_stop "$@" ;;
	-h | --help | help) usage ;;
	*) usage >&2; exit 2 ;;
	esac
}

main "$@"
