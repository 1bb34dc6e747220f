# syntax=docker/dockerfile:1

# Build stage: one self-contained executable with the migrations and PGlite's assets inside.
# Same Bun as the lockfile was made with.
FROM oven/bun:1.4.5 AS build
WORKDIR /app
COPY package.json bun.lock ./
RUN bun install --frozen-lockfile
COPY tsconfig.json bunfig.toml ./
COPY src ./src
COPY plugins ./plugins
COPY emails ./emails
COPY drizzle ./drizzle
RUN bun run build && mkdir -p /data

# Runtime stage: glibc and CA certificates only (for SMTP, OAuth and managed Postgres over TLS); no shell, no curl.
FROM gcr.io/distroless/base-debian12:nonroot
WORKDIR /app
# The binary stays root-owned (the server cannot rewrite itself); only the data directory is the server's.
COPY --from=build /app/dist/auth-server /app/auth-server
COPY --from=build --chown=nonroot:nonroot /data /data
ENV NODE_ENV=production \
    PORT=3000 \
    HOST=0.0.0.0 \
    DATA_DIR=/data
# The embedded database lives here when DATABASE_URL is unset; mount a volume to keep it.
VOLUME ["/data"]
USER nonroot:nonroot
EXPOSE 3000
# distroless has no curl: the binary asks its own /health and exits 0 or 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["/app/auth-server", "--healthcheck"]
ENTRYPOINT ["/app/auth-server"]
