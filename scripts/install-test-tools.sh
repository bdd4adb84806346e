#!/usr/bin/env bash
# install-test-tools.sh installs what the tests use to check imaged from the
# outside, so that nothing is judged only by our own code:
#
#   - Debian packages: independent decoders (vipsheader, dwebp, avifdec,
#     djpeg), exiftool, promtool, chromium for the page, nginx and wrk for the
#     delivery benchmark, the libvips/libwebp/libavif development files for the
#     optional fast render path;
#   - npm packages in tools/node (npm ci from the committed lock file):
#     c2pa-rs as WebAssembly, the Standard Webhooks reference library and
#     playwright-core (which drives Debian's chromium; no browser download).
#
# Idempotent and quick when everything is there: apt-get runs only when a
# package is missing, npm ci only when the lock file changed. Messages go to
# stderr. Needs root for apt-get (as in CI).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'install-test-tools: %s\n' "$*" >&2; }

# One package a line; add what a test needs.
DEBIAN_PACKAGES=(
	libimage-exiftool-perl # exiftool: reads the XMP marks, writes GPS into test JPEGs
	libvips-tools          # vipsheader, vips: independent decoder and sharpness reference
	libvips-dev            # optional fast render path (cgo)
	webp                   # dwebp, webpmux, img2webp: WebP decoder, animated test files
	libwebp-dev            # system libwebp for the render fast path
	libavif-bin            # avifdec: AVIF decoder
	libavif-dev            # system libavif for the render fast path
	libjpeg-turbo-progs    # djpeg: JPEG decoder
	libturbojpeg0          # the JPEG fast path (shrink-on-load), loaded at run time
	libdeflate0            # the PNG fast path (inflate), loaded at run time
	chromium               # the gallery's browser tests (driven by playwright-core)
	prometheus             # promtool check metrics
	nginx                  # delivery benchmark anchor
	wrk                    # load generator of the benchmarks
	postgresql             # the PostgreSQL backend's tests
	curl
	openssl                # the README's shell recipe for signing variant URLs, checked by urlsign
)

missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "apt-get install ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# npm ci only when node_modules is older than the lock file.
stamp=tools/node/node_modules/.imaged-installed
if [ ! -f "$stamp" ] || [ tools/node/package-lock.json -nt "$stamp" ]; then
	log "npm ci in tools/node"
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tools/node --no-audit --no-fund >&2
	touch "$stamp"
fi
log "ready"
