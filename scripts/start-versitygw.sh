#!/usr/bin/env bash
# Starts a throwaway versitygw (an S3-compatible server on a local directory)
# for the s3 package's tests, and prints the environment they read:
#
#   eval "$(scripts/start-versitygw.sh)"            # fresh temp dir, free port
#   go test ./s3/
#
#   eval "$(scripts/start-versitygw.sh start DIR)"  # start (or restart) the
#                                                   # server whose data is in DIR
#   eval "$(scripts/start-versitygw.sh start DIR PORT)"
#
# It installs the pinned versitygw when missing, into $GOBIN or
# /usr/local/bin, without touching this module's go.mod. The server listens
# on 127.0.0.1 only and runs in the background until killed (the pid is in
# the output and in the directory's versitygw.pid). Without arguments it
# keeps its data under a fresh temporary directory. With `start DIR` it keeps
# them under DIR/data and remembers its port and credentials in DIR, so that
# starting it again after it was killed brings back the same endpoint, keys
# and objects; PORT insists on a port (and fails when it is taken). Messages
# go to stderr; stdout is only the export lines.
set -euo pipefail

VERSITYGW_VERSION=v1.8.0
BIN_DIR=${GOBIN:-/usr/local/bin}
BIN=$BIN_DIR/versitygw

installed_version() {
	go version -m "$BIN" 2>/dev/null | awk '$1 == "mod" && $2 == "github.com/versity/versitygw" { print $3 }'
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

answers() { curl -s -o /dev/null -m 2 "http://127.0.0.1:$1/"; }

# alive reports whether process $1 runs (a zombie, killed but not yet
# reaped, does not).
alive() {
	local state
	state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $state && $state != Z && $state != X ]]
}

random_secret() { head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

ensure_installed() {
	if [[ ! -x $BIN || $(installed_version) != "$VERSITYGW_VERSION" ]]; then
		echo "installing versitygw $VERSITYGW_VERSION into $BIN_DIR (takes a few minutes)" >&2
		mkdir -p "$BIN_DIR"
		# Outside the module, so that neither go.mod nor GOFLAGS apply.
		(cd "$(mktemp -d)" && GOFLAGS= GOBIN=$BIN_DIR go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION") >&2
	fi
}

# launch starts the server on $PORT with its data in $ROOT/data and waits
# until it answers; it fails when it does not.
launch() {
	# Credentials through the environment, not argv, so that ps does not show them.
	ROOT_ACCESS_KEY_ID=$ACCESS ROOT_SECRET_ACCESS_KEY=$SECRET \
		nohup "$BIN" --port "127.0.0.1:$PORT" --quiet posix "$ROOT/data" \
		>"$ROOT/versitygw.log" 2>&1 </dev/null &
	PID=$!
	echo "$PID" >"$ROOT/versitygw.pid"
	for _ in $(seq 100); do
		if answers "$PORT"; then
			echo "versitygw $VERSITYGW_VERSION listening on 127.0.0.1:$PORT (pid $PID, data $ROOT/data)" >&2
			return 0
		fi
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "versitygw did not come up on port $PORT:" >&2
	cat "$ROOT/versitygw.log" >&2
	kill "$PID" 2>/dev/null || true
	return 1
}

print_env() {
	cat <<EOT
export IMAGED_TEST_S3_ENDPOINT=http://127.0.0.1:$PORT
export IMAGED_TEST_S3_ACCESS_KEY_ID=$ACCESS
export IMAGED_TEST_S3_SECRET_ACCESS_KEY=$SECRET
export IMAGED_TEST_S3_BUCKET=$BUCKET
export IMAGED_TEST_S3_PID=$PID
EOT
}

# fresh starts a server in a new temporary directory on a free port.
fresh() {
	ROOT=$(mktemp -d "${TMPDIR:-/tmp}/imaged-versitygw.XXXXXX")
	mkdir -p "$ROOT/data"
	ACCESS=${IMAGED_TEST_S3_ACCESS_KEY_ID:-imaged-test}
	SECRET=${IMAGED_TEST_S3_SECRET_ACCESS_KEY:-$(random_secret)}
	BUCKET=${IMAGED_TEST_S3_BUCKET:-imaged-test}
	for attempt in 1 2 3 4 5; do
		PORT=$((20000 + RANDOM % 20000))
		port_in_use "$PORT" && continue
		if launch; then
			print_env
			exit 0
		fi
		echo "(attempt $attempt)" >&2
	done
	echo "could not start versitygw" >&2
	exit 1
}

# in_dir starts (or restarts) the server whose state is in DIR.
in_dir() {
	ROOT=$1
	local want_port=${2:-}
	[[ -n $ROOT ]] || { echo "usage: $0 start DIR [PORT]" >&2; exit 1; }
	mkdir -p "$ROOT/data"
	ROOT=$(cd "$ROOT" && pwd)
	if [[ -s $ROOT/versitygw.pid ]] && alive "$(cat "$ROOT/versitygw.pid")"; then
		echo "versitygw in $ROOT is already running (pid $(cat "$ROOT/versitygw.pid"))" >&2
		exit 1
	fi
	if [[ ! -s $ROOT/credentials ]]; then
		(
			umask 077
			printf '%s %s %s\n' "${IMAGED_TEST_S3_ACCESS_KEY_ID:-imaged-test}" \
				"${IMAGED_TEST_S3_SECRET_ACCESS_KEY:-$(random_secret)}" \
				"${IMAGED_TEST_S3_BUCKET:-imaged-test}" >"$ROOT/credentials"
		)
	fi
	read -r ACCESS SECRET BUCKET <"$ROOT/credentials"
	local attempts=5
	if [[ -n $want_port ]]; then
		attempts=1
	elif [[ -s $ROOT/port ]] && ! port_in_use "$(cat "$ROOT/port")"; then
		want_port=$(cat "$ROOT/port")
	fi
	for attempt in $(seq "$attempts"); do
		PORT=${want_port:-$((20000 + RANDOM % 20000))}
		want_port=""
		if port_in_use "$PORT"; then
			[[ $attempts -eq 1 ]] && { echo "port $PORT is taken" >&2; exit 1; }
			continue
		fi
		if launch; then
			echo "$PORT" >"$ROOT/port"
			print_env
			exit 0
		fi
		echo "(attempt $attempt)" >&2
	done
	echo "could not start versitygw" >&2
	exit 1
}

case "${1:-}" in
"") ensure_installed; fresh ;;
start) ensure_installed; in_dir "${2:-}" "${3:-}" ;;
-h | --help | help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' ;;
*) echo "unknown command $1 (no argument, or start DIR [PORT])" >&2; exit 1 ;;
esac
