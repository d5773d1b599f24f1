#!/usr/bin/env bash
# Builds libshmq (release) and installs the library, the headers and a
# pkg-config file under PREFIX (default /usr/local):
#   bash ffi/install.sh [PREFIX]
# then: cc app.c $(pkg-config --cflags --libs shmq)
# (with PKG_CONFIG_PATH=PREFIX/lib/pkgconfig for a non-standard prefix).
set -euo pipefail
prefix="${1:-/usr/local}"
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."
cargo build --release -p shmq-ffi
target="${CARGO_TARGET_DIR:-target}/release"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' ffi/Cargo.toml | head -1)"
install -d "$prefix/lib/pkgconfig" "$prefix/include"
install -m 0644 "$target/libshmq.a" "$prefix/lib/"
install -m 0755 "$target/libshmq.so" "$prefix/lib/"
install -m 0644 ffi/include/shmq.h ffi/include/shmq.hpp "$prefix/include/"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" ffi/shmq.pc.in >"$prefix/lib/pkgconfig/shmq.pc"
echo "installed shmq $version under $prefix"
