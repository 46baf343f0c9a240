# natsrpc images: one image holds the gateway and every service; the compose
# file picks which binary a container runs.
#
#   docker build -t natsrpc .
#   docker run --rm -e NATS_URL=nats://nats:4222 natsrpc greeting_service

# ---- build stage: compilers and the -dev packages
FROM debian:bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      libnats-dev libmicrohttpd-dev libjansson-dev libuv1-dev libpq-dev libgnutls28-dev \
      libcurl4-gnutls-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what the build reads, so editing tests or docs does not bust the cache.
COPY CMakeLists.txt ./
COPY cmake/ cmake/
COPY framework/ framework/
COPY services/ services/
COPY gateway/ gateway/
# The page's WAMP client and Swagger UI come from npm, vendored into
# frontend/vendor/ (no CDN at run time).
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
COPY frontend/ frontend/
RUN npm ci --ignore-scripts --no-audit --no-fund && npm run vendor
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNRPC_BUILD_TESTS=OFF -DNRPC_WERROR=OFF \
 && cmake --build build -j"$(nproc)" \
 && strip build/bin/*

# ---- runtime stage: the shared libraries only
FROM debian:bookworm-slim AS runtime
# Runtime counterparts of the -dev packages above.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libnats3.4 libmicrohttpd12 libjansson4 libuv1 libpq5 libcurl3-gnutls ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --no-create-home --shell /usr/sbin/nologin natsrpc
# Every binary in build/bin: the gateway and all services.
COPY --from=build /src/build/bin/ /usr/local/bin/
# The page the gateway serves at / (GATEWAY_STATIC_DIR).
COPY --from=build /src/frontend/ /usr/local/share/natsrpc/frontend/
# thing_service applies these at start-up (THING_MIGRATIONS).
COPY services/thing/migrations/ /usr/local/share/natsrpc/thing/migrations/
USER natsrpc
ENV NATS_URL=nats://nats:4222 \
    THING_MIGRATIONS=/usr/local/share/natsrpc/thing/migrations \
    GATEWAY_STATIC_DIR=/usr/local/share/natsrpc/frontend \
    GATEWAY_DOCS_DIR=/usr/local/share/natsrpc/frontend/vendor/swagger-ui \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=5000
EXPOSE 5000
# Both the gateway and the services stop cleanly on SIGTERM (docker stop).
STOPSIGNAL SIGTERM
CMD ["natsrpc-gateway"]
