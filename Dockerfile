# syntax=docker/dockerfile:1
# Build with the same make target as CI; the bpf2go output is committed, so no clang is needed.
# Base images are pinned by tag: digests could not be verified from this build machine.
# Pin them with `docker buildx imagetools inspect <image>` and replace the tags by @sha256:….
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN make build

# distroless/static: no shell, no libc (the binary is CGO_ENABLED=0), runs as root because
# the DaemonSet needs uid 0 with explicit capabilities (see deploy/daemonset/daemonset.yaml).
FROM gcr.io/distroless/static-debian12:latest
COPY --from=build /src/bin/asobserve /usr/local/bin/asobserve
USER 0:0
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/asobserve"]
CMD ["daemon"]
