#!/usr/bin/env bash
# start-hydra.sh builds Ory Hydra (a real OpenID Connect provider) from the Go
# module proxy for the tests that sign in or rotate keys, and prints the
# environment they read:
#
#   eval "$(scripts/start-hydra.sh)"        # build (once) and print IMAGED_TEST_HYDRA_BIN
#   eval "$(scripts/start-hydra.sh start)"  # also start one instance on free ports:
#                                           # IMAGED_TEST_HYDRA_PUBLIC_URL, _ADMIN_URL, _PID
#
# Tests normally start their own instance from IMAGED_TEST_HYDRA_BIN through
# the hydratest package (each with its own login and consent URLs and keys).
# Hydra is built from tools/hydra, a Go module of its own, so that its many
# dependencies and the replace directive it needs stay out of imaged's
# go.mod; the binary is cached in $HYDRA_BIN_DIR (default /usr/local/bin) and
# rebuilt only when tools/hydra/go.mod changes. The instance keeps everything
# in memory (DSN=memory), listens on 127.0.0.1 only, issues JWT access
# tokens, and runs until killed. Only export lines go to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'start-hydra: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

BIN_DIR=${HYDRA_BIN_DIR:-/usr/local/bin}
BIN=$BIN_DIR/hydra-imaged-test
STAMP=$BIN.gomod-sha256
want=$(sha256sum tools/hydra/go.mod tools/hydra/go.sum | sha256sum | cut -d' ' -f1)

if [ ! -x "$BIN" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
	log "building Ory Hydra from tools/hydra (a few minutes the first time)"
	mkdir -p "$BIN_DIR"
	(cd tools/hydra && go build -trimpath -tags sqlite,sqlite_omit_load_extension -o "$BIN.tmp" github.com/ory/hydra/v2) >&2
	mv "$BIN.tmp" "$BIN"
	echo "$want" >"$STAMP"
fi
echo "export IMAGED_TEST_HYDRA_BIN=$BIN"

[ "${1:-}" = start ] || exit 0

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
	ruby -e 'require "socket"; puts TCPServer.new("127.0.0.1",0).addr[1]'; }
PUB=$(free_port)
ADM=$(free_port)
LOG=$(mktemp -t hydra-XXXXXX.log)
env DSN=memory STRATEGIES_ACCESS_TOKEN=jwt \
	SERVE_PUBLIC_HOST=127.0.0.1 SERVE_PUBLIC_PORT="$PUB" SERVE_ADMIN_HOST=127.0.0.1 SERVE_ADMIN_PORT="$ADM" \
	URLS_SELF_ISSUER="http://127.0.0.1:$PUB/" URLS_LOGIN="${HYDRA_LOGIN_URL:-http://127.0.0.1:9/login}" \
	URLS_CONSENT="${HYDRA_CONSENT_URL:-http://127.0.0.1:9/consent}" \
	SECRETS_SYSTEM="$(head -c 24 /dev/urandom | base64)" \
	"$BIN" serve all --dev --sqa-opt-out >"$LOG" 2>&1 &
PID=$!
for _ in $(seq 1 100); do
	if curl -sf "http://127.0.0.1:$ADM/health/ready" >/dev/null 2>&1; then
		echo "export IMAGED_TEST_HYDRA_PUBLIC_URL=http://127.0.0.1:$PUB IMAGED_TEST_HYDRA_ADMIN_URL=http://127.0.0.1:$ADM IMAGED_TEST_HYDRA_PID=$PID"
		exit 0
	fi
	kill -0 "$PID" 2>/dev/null || { cat "$LOG" >&2; die "hydra exited"; }
	sleep 0.1
done
cat "$LOG" >&2
die "hydra did not become ready in 10 s"
