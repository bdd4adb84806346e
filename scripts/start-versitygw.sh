#!/usr/bin/env bash
# Starts a throwaway versitygw (an S3-compatible server on a local directory)
# for the s3 package's tests, and prints the environment they read:
#
#   eval "$(scripts/start-versitygw.sh)"
#   go test ./s3/
#
# It installs the pinned versitygw when missing, into $GOBIN or
# /usr/local/bin, without touching this module's go.mod. The server listens
# on 127.0.0.1 only, keeps its data under a fresh temporary directory and runs
# in the background until killed (the pid is in the output and in the
# directory's versitygw.pid). Messages go to stderr; stdout is only the
# export lines.
set -euo pipefail

VERSITYGW_VERSION=v1.8.0
BIN_DIR=${GOBIN:-/usr/local/bin}
BIN=$BIN_DIR/versitygw

installed_version() {
	go version -m "$BIN" 2>/dev/null | awk '$1 == "mod" && $2 == "github.com/versity/versitygw" { print $3 }'
}

if [[ ! -x $BIN || $(installed_version) != "$VERSITYGW_VERSION" ]]; then
	echo "installing versitygw $VERSITYGW_VERSION into $BIN_DIR (takes a few minutes)" >&2
	mkdir -p "$BIN_DIR"
	# Outside the module, so that neither go.mod nor GOFLAGS apply.
	(cd "$(mktemp -d)" && GOFLAGS= GOBIN=$BIN_DIR go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION") >&2
fi

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/imaged-versitygw.XXXXXX")
mkdir -p "$ROOT/data"
ACCESS=${IMAGED_TEST_S3_ACCESS_KEY_ID:-imaged-test}
SECRET=${IMAGED_TEST_S3_SECRET_ACCESS_KEY:-$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')}
BUCKET=${IMAGED_TEST_S3_BUCKET:-imaged-test}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

answers() { curl -s -o /dev/null -m 2 "http://127.0.0.1:$1/"; }

for attempt in 1 2 3 4 5; do
	PORT=$((20000 + RANDOM % 20000))
	port_in_use "$PORT" && continue
	# Credentials through the environment, not argv, so that ps does not show them.
	ROOT_ACCESS_KEY_ID=$ACCESS ROOT_SECRET_ACCESS_KEY=$SECRET \
		nohup "$BIN" --port "127.0.0.1:$PORT" --quiet posix "$ROOT/data" \
		>"$ROOT/versitygw.log" 2>&1 </dev/null &
	PID=$!
	echo "$PID" >"$ROOT/versitygw.pid"
	for _ in $(seq 100); do
		if answers "$PORT"; then
			echo "versitygw $VERSITYGW_VERSION listening on 127.0.0.1:$PORT (pid $PID, data $ROOT/data)" >&2
			cat <<EOF
export IMAGED_TEST_S3_ENDPOINT=http://127.0.0.1:$PORT
export IMAGED_TEST_S3_ACCESS_KEY_ID=$ACCESS
export IMAGED_TEST_S3_SECRET_ACCESS_KEY=$SECRET
export IMAGED_TEST_S3_BUCKET=$BUCKET
export IMAGED_TEST_S3_PID=$PID
EOF
			exit 0
		fi
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "versitygw did not come up on port $PORT (attempt $attempt):" >&2
	cat "$ROOT/versitygw.log" >&2
	kill "$PID" 2>/dev/null || true
done
echo "could not start versitygw" >&2
exit 1
