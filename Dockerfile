# syntax=docker/dockerfile:1
# The smartcar-mcp container image: a static (musl) binary on a distroless base, run as non-root.
#
#   docker build -t smartcar-mcp .
#   stdio MCP (what MCP clients start):
#     docker run -i --rm -e SMARTCAR_CLIENT_ID -e SMARTCAR_CLIENT_SECRET smartcar-mcp
#   Streamable HTTP on port 8765 (a non-loopback bind needs a bearer token):
#     docker run --rm -p 127.0.0.1:8765:8765 -e SMARTCAR_CLIENT_ID -e SMARTCAR_CLIENT_SECRET \
#       -e SMARTCAR_MCP_HTTP_TOKEN smartcar-mcp serve --http 0.0.0.0:8765
#
# The release (.github/workflows/release.yml) passes --build-arg BINARY=prebuilt to put in the
# static binaries it already built and tested (docker-bin/<arch>/smartcar-mcp) instead of
# compiling again under emulation; by default the binary is built here from source.

# `build` (from source) or `prebuilt`.
ARG BINARY=build

FROM rust:1-alpine AS build
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY . .
# The dist profile (Cargo.toml): fat LTO, one codegen unit, stripped. On Alpine the binary is static.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --profile dist --package smartcar-mcp --bin smartcar-mcp \
    && cp target/dist/smartcar-mcp /smartcar-mcp

FROM scratch AS prebuilt
ARG TARGETARCH
COPY --chmod=0755 docker-bin/${TARGETARCH}/smartcar-mcp /smartcar-mcp

FROM ${BINARY} AS binary

FROM gcr.io/distroless/static-debian12:nonroot
# Proves to the MCP Registry that this image belongs to the server of server.json (OCI package).
LABEL io.modelcontextprotocol.server.name="io.github.smartcar/smartcar-mcp"
LABEL org.opencontainers.image.title="smartcar-mcp" \
      org.opencontainers.image.description="MCP server for Smartcar's vehicle APIs" \
      org.opencontainers.image.source="https://github.com/smartcar/smartcar-mcp" \
      org.opencontainers.image.licenses="MIT"
COPY --from=binary /smartcar-mcp /usr/local/bin/smartcar-mcp
USER nonroot:nonroot
# Only used with `serve --http 0.0.0.0:8765`; the default is stdio.
EXPOSE 8765
ENTRYPOINT ["/usr/local/bin/smartcar-mcp"]
