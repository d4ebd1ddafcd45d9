# The supervisor image: one static binary, the CA bundle, a non-root user.
#   docker buildx build --platform linux/amd64,linux/arm64 -t <repo>/supervisor .
# Releases push it as ghcr.io/bastion-ttl/supervisor:<version>.
# The build stage runs on the builder's own platform and cross-compiles, so a
# multi-arch build needs no emulation.
FROM --platform=$BUILDPLATFORM docker.io/library/golang:1.26.8-bookworm AS build
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=dev
ARG REVISION=unknown
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false -ldflags "-s -w \
      -X github.com/bastion-ttl/bastion-ttl/internal/buildinfo.Version=$VERSION \
      -X github.com/bastion-ttl/bastion-ttl/internal/buildinfo.Commit=$REVISION" \
      -o /out/supervisor ./supervisor

FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="bastion-ttl supervisor" \
      org.opencontainers.image.description="Stops an ECS Fargate bastion when its time to live is up" \
      org.opencontainers.image.source="https://github.com/bastion-ttl/bastion-ttl" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.revision="$REVISION"
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/supervisor /supervisor
# nobody:nogroup by number: scratch has no /etc/passwd.
USER 65534:65534
# One P: the supervisor mostly sleeps, and a second P costs the waiting
# sidecar about 0.4 MiB of spans, stacks and a thread (docs/performance.md).
# The runtime reads it at start, before any code of ours could set it.
ENV GOMAXPROCS=1
ENTRYPOINT ["/supervisor"]
CMD ["watch"]
