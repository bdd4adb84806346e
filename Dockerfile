# The production image: imaged on Debian slim with the system libraries its
# renders load at run time when present (libwebp for WebP, libturbojpeg for
# JPEG shrink-on-load, libdeflate for PNG sources: the fastest documented
# configuration, see README "Rendering"), as a non-root user. Build: docker build -t imaged .
# Without the libraries (or built with -tags nodynamic, as `make build` does
# for a static binary) the same renders run in pure Go and WASM.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/imaged ./cmd/imaged \
 && mkdir -p /out/data

FROM debian:bookworm-slim
# gen2brain/webp loads libwebp.so and libwebpdemux.so (the names of the
# -dev packages): link them to the runtime libraries instead.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libwebp7 libwebpdemux2 libturbojpeg0 libdeflate0 \
 && rm -rf /var/lib/apt/lists/* \
 && for l in libwebp.so.7 libwebpdemux.so.2; do p=$(ls /usr/lib/*/$l); ln -s "$l" "${p%.so.*}.so"; done \
 && useradd --uid 65532 --no-create-home --shell /usr/sbin/nologin imaged
COPY --from=build /out/imaged /usr/local/bin/imaged
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV IMAGED_ADDR=:8080 IMAGED_DATA_DIR=/data IMAGED_LOG_FORMAT=json
EXPOSE 8080
VOLUME /data
ENTRYPOINT ["/usr/local/bin/imaged"]
CMD ["serve"]
