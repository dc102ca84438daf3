# syntax=docker/dockerfile:1
# One image with the three binaries (zgc-registry, zgc-stats, zgc); the
# manifests in deploy/ pick one with `command`.
#
#   docker build -t zgc .
#   docker run --rm -p 50051:50051 -v zgc-data:/data zgc \
#     zgc-registry --listen 0.0.0.0:50051 --data-dir /data/registry

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p zgc-registry -p zgc-stats -p zgc \
 && mkdir /out \
 && cp target/release/zgc-registry target/release/zgc-stats target/release/zgc /out/

# distroless/cc: glibc and CA certificates, no shell, no package manager.
# Its `nonroot` user is UID 65532, not 1337 (Istio's sidecar UID, whose
# traffic the mesh does not intercept).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
EXPOSE 50051 50052 9090
ENTRYPOINT []
CMD ["/usr/local/bin/zgc-registry", "--listen", "0.0.0.0:50051", "--data-dir", "/data/registry"]
