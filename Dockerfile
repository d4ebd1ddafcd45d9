# The supervisor image: one static binary, the CA bundle, a non-root user.
#   docker buildx build --platform linux/amd64,linux/arm64 -t <repo>/bastion-ttl-supervisor .
# The build stage runs on the builder's own platform and cross-compiles, so a
# multi-arch build needs no emulation.
FROM --platform=$BUILDPLATFORM docker.io/library/golang:1.26.8-bookworm AS build
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o /out/supervisor ./supervisor

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/supervisor /supervisor
# nobody:nogroup by number: scratch has no /etc/passwd.
USER 65534:65534
ENTRYPOINT ["/supervisor"]
CMD ["watch"]
