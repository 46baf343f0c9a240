# Imported targets for the Debian packages natsrpc builds on:
#   jansson::jansson, cnats::nats, libuv::uv, MHD::microhttpd, PostgreSQL::PostgreSQL,
#   CURL::libcurl
find_package(PkgConfig REQUIRED)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(LIBNATS REQUIRED IMPORTED_TARGET libnats)
pkg_check_modules(LIBUV REQUIRED IMPORTED_TARGET libuv)
pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd)
find_package(Threads REQUIRED)

add_library(jansson::jansson ALIAS PkgConfig::JANSSON)
add_library(cnats::nats ALIAS PkgConfig::LIBNATS)
add_library(libuv::uv ALIAS PkgConfig::LIBUV)
add_library(MHD::microhttpd ALIAS PkgConfig::MHD)
pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)
add_library(PostgreSQL::PostgreSQL ALIAS PkgConfig::LIBPQ)
# gnutls: SHA-1 for the WebSocket handshake (libmicrohttpd depends on it).
pkg_check_modules(GNUTLS REQUIRED IMPORTED_TARGET gnutls)
add_library(GnuTLS::gnutls ALIAS PkgConfig::GNUTLS)
# libcurl (GnuTLS flavour): outbound HTTP from handlers (natsrpc_http).
pkg_check_modules(LIBCURL REQUIRED IMPORTED_TARGET libcurl)
add_library(CURL::libcurl ALIAS PkgConfig::LIBCURL)
# rhonabwy: JWT/JWKS for the gateway's auth; libcrypt: crypt_r for Basic.
pkg_check_modules(RHONABWY REQUIRED IMPORTED_TARGET librhonabwy)
add_library(Rhonabwy::rhonabwy ALIAS PkgConfig::RHONABWY)
pkg_check_modules(LIBCRYPT REQUIRED IMPORTED_TARGET libcrypt)
add_library(Crypt::crypt ALIAS PkgConfig::LIBCRYPT)
# nettle's hogweed (a dependency of gnutls): the ed25519 public key of a
# NATS nkey seed (framework/src/nkey.c); nettle itself: AES, which seals
# reply tokens (framework/src/reply_token.c).
pkg_check_modules(HOGWEED REQUIRED IMPORTED_TARGET hogweed)
add_library(Nettle::hogweed ALIAS PkgConfig::HOGWEED)
pkg_check_modules(NETTLE REQUIRED IMPORTED_TARGET nettle)
add_library(Nettle::nettle ALIAS PkgConfig::NETTLE)
# toml++ (C++17): the TOML form of GATEWAY_AUTH. Header-only on purpose, not
# Debian's shared build, so the parser gets our sanitizers and fuzzer coverage.
find_path(TOMLPP_INCLUDE_DIR toml++/toml.h REQUIRED)
add_library(Tomlpp::header_only INTERFACE IMPORTED)
set_target_properties(Tomlpp::header_only PROPERTIES INTERFACE_INCLUDE_DIRECTORIES
                      ${TOMLPP_INCLUDE_DIR} INTERFACE_COMPILE_FEATURES cxx_std_17)
