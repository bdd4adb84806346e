#!/usr/bin/env bash
# start-postgres.sh starts a private, throw-away PostgreSQL cluster for the
# postgres package's tests and prints the environment that points them at it.
#
# Usage:
#   eval "$(scripts/start-postgres.sh)"          # new cluster in a fresh temp dir
#   eval "$(scripts/start-postgres.sh start DIR)" # start (or reuse) the cluster in DIR
#   scripts/start-postgres.sh stop DIR            # stop it, keep the data
#   scripts/start-postgres.sh destroy DIR         # stop it and delete DIR
#
# Only the export lines go to stdout; progress goes to stderr. The cluster
# listens on 127.0.0.1 on a free port, with its unix socket inside DIR. When
# pg_ctl/initdb are missing it installs PostgreSQL from the Debian packages.
# As root, the server runs as the "postgres" user (created when missing),
# since initdb refuses to run as root.
set -euo pipefail

DB_NAME=imaged
DB_USER=imaged
MARKER=.imaged-test-cluster

log() { printf 'start-postgres: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# find_bindir prints the directory holding pg_ctl, initdb and postgres.
find_bindir() {
	local d
	if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
		dirname "$(readlink -f "$(command -v pg_ctl)")"
		return 0
	fi
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -V -r); do
		if [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

ensure_postgres() {
	if BIN=$(find_bindir); then
		return 0
	fi
	[ "$(id -u)" -eq 0 ] || die "PostgreSQL is not installed and installing it needs root (apt-get install postgresql)"
	log "installing PostgreSQL from the Debian packages"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update >&2
	apt-get install -y --no-install-recommends postgresql >&2
	BIN=$(find_bindir) || die "pg_ctl/initdb still missing after installing postgresql"
}

# RUNAS holds the user the server runs as; as_owner runs a command as it.
setup_user() {
	if [ "$(id -u)" -ne 0 ]; then
		RUNAS=$(id -un)
		return 0
	fi
	RUNAS=postgres
	if ! id -u "$RUNAS" >/dev/null 2>&1; then
		log "creating system user $RUNAS"
		useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash "$RUNAS"
	fi
}

as_owner() {
	if [ "$(id -u)" -ne 0 ]; then
		"$@"
	elif command -v runuser >/dev/null 2>&1; then
		runuser -u "$RUNAS" -- "$@"
	else
		su -s /bin/sh "$RUNAS" -c "$(printf '%q ' "$@")"
	fi
}

# port_busy reports whether something already listens on 127.0.0.1:$1.
port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pick_port() {
	local p i
	for i in $(seq 1 50); do
		p=$((20000 + RANDOM % 40000))
		if ! port_busy "$p"; then
			echo "$p"
			return 0
		fi
	done
	die "found no free TCP port on 127.0.0.1"
}

running() {
	as_owner "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1
}

init_cluster() {
	local pwfile
	log "creating a cluster in $DIR"
	mkdir -p "$DIR"
	touch "$DIR/$MARKER"
	head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/password"
	chmod 600 "$DIR/password"
	chown -R "$RUNAS" "$DIR"
	chmod 700 "$DIR"
	as_owner test -w "$DIR" || die "user $RUNAS cannot write $DIR (choose a directory it can reach, e.g. under /tmp)"
	pwfile="$DIR/password"
	# The superuser authenticates over the private socket only; every TCP
	# login needs a password.
	as_owner "$BIN/initdb" -D "$DIR/data" -U postgres --auth-local=trust \
		--auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 ||
		as_owner "$BIN/initdb" -D "$DIR/data" -U postgres --auth-local=trust \
			--auth-host=scram-sha-256 -E UTF8 --locale=C >"$DIR/initdb.log" 2>&1 ||
		die "initdb failed; see $DIR/initdb.log"
	cat >>"$DIR/data/postgresql.conf" <<EOF

# Added by start-postgres.sh: a private cluster for tests, durability off.
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
	[ -s "$pwfile" ] || die "could not write $pwfile"
}

# start_server starts the cluster, moving to another port when the chosen
# one was taken in the meantime.
start_server() {
	local port attempt
	for attempt in 1 2 3 4 5; do
		if [ -s "$DIR/port" ] && [ "$attempt" -eq 1 ] && ! port_busy "$(cat "$DIR/port")"; then
			port=$(cat "$DIR/port")
		else
			port=$(pick_port)
		fi
		echo "$port" >"$DIR/port"
		chown "$RUNAS" "$DIR/port"
		log "starting the server on 127.0.0.1:$port"
		if as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
			-o "-p $port" start >&2; then
			return 0
		fi
		if ! grep -q -i -E 'could not (bind|create listen)|address already in use' "$DIR/server.log"; then
			die "the server did not start; see $DIR/server.log"
		fi
		log "port $port was taken; trying another"
	done
	die "the server did not start; see $DIR/server.log"
}

wait_ready() {
	local port i
	port=$(cat "$DIR/port")
	for i in $(seq 1 120); do
		if "$BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -d postgres; then
			return 0
		fi
		sleep 0.5
	done
	die "the server on port $port is not ready; see $DIR/server.log"
}

psql_super() {
	as_owner "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR" -p "$(cat "$DIR/port")" -U postgres -d postgres "$@"
}

create_role_and_db() {
	local pass
	pass=$(cat "$DIR/password")
	psql_super <<EOF >&2
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', '$DB_USER', '$pass')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER') \gexec
ALTER ROLE $DB_USER PASSWORD '$pass';
SELECT format('CREATE DATABASE %I OWNER %I', '$DB_NAME', '$DB_USER')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$DB_NAME') \gexec
EOF
}

print_env() {
	local port pass
	port=$(cat "$DIR/port")
	pass=$(cat "$DIR/password")
	cat <<EOF
export IMAGED_TEST_DATABASE_URL='postgres://$DB_USER:$pass@127.0.0.1:$port/$DB_NAME?sslmode=disable'
export PGDATA='$DIR/data'
# stop:    $0 stop '$DIR'   (or: ${RUNAS_PREFIX}$BIN/pg_ctl -D '$DIR/data' stop -m fast)
# destroy: $0 destroy '$DIR'
EOF
}

cmd_start() {
	DIR=${1:-}
	ensure_postgres
	setup_user
	if [ -z "$DIR" ]; then
		DIR=$(mktemp -d "${TMPDIR:-/tmp}/imaged-pg.XXXXXX")
	fi
	DIR=$(readlink -m "$DIR")
	RUNAS_PREFIX=""
	[ "$(id -u)" -eq 0 ] && RUNAS_PREFIX="runuser -u $RUNAS -- "
	if [ ! -f "$DIR/data/PG_VERSION" ]; then
		if [ -e "$DIR" ] && [ -n "$(ls -A "$DIR" 2>/dev/null)" ] && [ ! -f "$DIR/$MARKER" ]; then
			die "$DIR exists, is not empty and holds no cluster made by this script"
		fi
		init_cluster
	fi
	if running; then
		log "the cluster in $DIR is already running"
	else
		start_server
	fi
	wait_ready
	create_role_and_db
	print_env
}

cmd_stop() {
	DIR=${1:-}
	[ -n "$DIR" ] || die "usage: $0 stop DIR"
	[ -f "$DIR/data/PG_VERSION" ] || die "$DIR holds no cluster"
	BIN=$(find_bindir) || die "pg_ctl not found"
	setup_user
	if running; then
		as_owner "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >&2
	else
		log "the cluster in $DIR is not running"
	fi
}

cmd_destroy() {
	DIR=${1:-}
	[ -n "$DIR" ] || die "usage: $0 destroy DIR"
	[ -f "$DIR/$MARKER" ] || die "$DIR was not made by this script; not deleting it"
	if [ -f "$DIR/data/PG_VERSION" ]; then
		cmd_stop "$DIR"
	fi
	rm -rf -- "$DIR"
	log "deleted $DIR"
}

case "${1:-start}" in
start) shift || true; cmd_start "${1:-}" ;;
stop) shift; cmd_stop "${1:-}" ;;
destroy) shift; cmd_destroy "${1:-}" ;;
-h | --help | help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' ;;
*) die "unknown command $1 (start [DIR], stop DIR, destroy DIR)" ;;
esac
