# syntax=docker/dockerfile:1
#
# One image with the four binaries (gateway, auth-worker, user-worker,
# mail-worker);
# compose.yaml chooses the command per service. Build: `docker compose build`
# or `docker build -t natsauth:dev .`.
#
# Caching without cargo-chef: BuildKit cache mounts keep the cargo registry
# and target/ between builds, so a code change recompiles only our crates.
# The migrations are embedded in auth-worker at build time (sqlx::migrate!).

# The web app, built with the Node.js of Debian 12's own age range.
FROM node:18-bookworm-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p gateway -p auth-worker -p user-worker -p mail-worker \
 && mkdir -p /out \
 && cp target/release/gateway target/release/auth-worker target/release/user-worker \
       target/release/mail-worker /out/

# The mail catcher of compose.yaml (`--target mail-catcher`): Debian's
# aiosmtpd, which keeps each message as a file in /var/mail/natsauth/new/.
FROM debian:bookworm-slim AS mail-catcher
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-aiosmtpd \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10002 --user-group --no-create-home mail-catcher \
 && mkdir -p /var/mail/natsauth \
 && chown mail-catcher:mail-catcher /var/mail/natsauth
USER mail-catcher
EXPOSE 1025
CMD ["python3", "-m", "aiosmtpd", "-n", "-l", "0.0.0.0:1025", "-c", "aiosmtpd.handlers.Mailbox", "/var/mail/natsauth"]

FROM debian:bookworm-slim
# libssl3: the auth-worker's passkeys (webauthn-rs) link OpenSSL.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/*
# An unprivileged user; /var/lib/natsauth/keys is its own so that a named
# volume mounted there (compose's `jwt-key`) starts out writable by it.
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /app app \
 && mkdir -p /app /var/lib/natsauth/keys \
 && chown app:app /app /var/lib/natsauth/keys
COPY --from=build /out/ /usr/local/bin/
COPY --from=web /web/dist/ /usr/local/share/natsauth/web/
WORKDIR /app
USER app
ENV GATEWAY_HTTP__ADDR=0.0.0.0:8080 \
    GATEWAY_WEB__DIR=/usr/local/share/natsauth/web
EXPOSE 8080
STOPSIGNAL SIGTERM
CMD ["gateway"]
