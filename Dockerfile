# The production image: a static imaged binary on a distroless base, as a
# non-root user. Build: docker build -t imaged .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/imaged ./cmd/imaged \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/imaged /usr/local/bin/imaged
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV IMAGED_ADDR=:8080 IMAGED_DATA_DIR=/data IMAGED_LOG_FORMAT=json
EXPOSE 8080
VOLUME /data
ENTRYPOINT ["/usr/local/bin/imaged"]
CMD ["serve"]
