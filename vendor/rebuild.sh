#!/usr/bin/env bash
# Rebuilds vendor/sqlx-core and vendor/sqlx-postgres from their crates.io sources plus the patch
# series in vendor/patches/ (applied in name order), and ships the full licence texts.
#
#   vendor/rebuild.sh           rewrite the two vendored crates
#   vendor/rebuild.sh --check   rebuild into a temporary directory and fail, with a diff, if the
#                               tree differs (what .ci/run does)
#
# The sources are the .crate files in cargo's registry cache, checked against the checksums
# below (crates.io's, as in any Cargo.lock); when absent, `cargo fetch` downloads them. The
# .crate files of sqlx-core and sqlx-postgres carry 3-line licence stubs (upstream they are
# symlinks to the workspace root's files, which `cargo package` does not follow); the full
# texts come from the root crate, `sqlx`, of the same release.
#
# To change the vendored code: edit it, then turn the change into a new patch file (see
# vendor/README.md, "Changing the vendored code"), and check with --check.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version=0.9.0
declare -A checksum=(
    [sqlx]=378620ccc25c62c89d8be1c819e76a88d59bdcc3304733330788948e619bfd71
    [sqlx-core]=05b44e85bf579a8eeb4ceaa77a3a523baf2bf0e9bac7e40f405d537b5d2d5ccb
    [sqlx-postgres]=87a2bdd6e83f6b3ea525ca9fee568030508b58355a43d0b2c1674d5f79dcd65e
)
vendored=(sqlx-core sqlx-postgres)

check=false
case "${1:-}" in
    --check) check=true ;;
    "") ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cache_glob="${CARGO_HOME:-$HOME/.cargo}/registry/cache/index.crates.io-*"

find_crate() {
    # shellcheck disable=SC2086 # the glob must expand
    ls $cache_glob/"$1-$version.crate" 2>/dev/null | head -n1
}

missing=()
for name in "${!checksum[@]}"; do
    [ -n "$(find_crate "$name")" ] || missing+=("$name")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "fetching ${missing[*]} $version from crates.io" >&2
    mkdir -p "$work/fetch/src"
    : >"$work/fetch/src/lib.rs"
    {
        printf '[package]\nname = "vendor-fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\n'
        for name in "${missing[@]}"; do
            printf '%s = { version = "=%s", default-features = false }\n' "$name" "$version"
        done
    } >"$work/fetch/Cargo.toml"
    cargo fetch --quiet --manifest-path "$work/fetch/Cargo.toml"
fi

mkdir -p "$work/src" "$work/out"
for name in "${!checksum[@]}"; do
    crate="$(find_crate "$name")"
    [ -n "$crate" ] || { echo "$name-$version.crate not found in $cache_glob" >&2; exit 1; }
    echo "${checksum[$name]}  $crate" | sha256sum --quiet --check - ||
        { echo "$crate: checksum mismatch" >&2; exit 1; }
    tar -xzf "$crate" -C "$work/src"
done

for name in "${vendored[@]}"; do
    cp -a "$work/src/$name-$version" "$work/out/$name"
    for licence in LICENSE-MIT LICENSE-APACHE; do
        cp "$work/src/sqlx-$version/$licence" "$work/out/$name/$licence"
    done
done

for p in "$here"/patches/*.patch; do
    patch --quiet --batch --forward --no-backup-if-mismatch -p1 -d "$work/out" <"$p" ||
        { echo "patch $(basename "$p") does not apply" >&2; exit 1; }
done
if find "$work/out" -name '*.rej' | grep -q .; then
    echo "patching left .rej files" >&2
    exit 1
fi

if $check; then
    status=0
    for name in "${vendored[@]}"; do
        diff -r --no-dereference "$work/out/$name" "$here/$name" || status=1
    done
    extra="$(find "$here" -mindepth 1 -maxdepth 1 \
        ! -name README.md ! -name rebuild.sh ! -name patches ! -name sqlx-core ! -name sqlx-postgres)"
    if [ -n "$extra" ]; then
        echo "unexpected in vendor/: $extra" >&2
        status=1
    fi
    if [ $status -ne 0 ]; then
        echo "vendor/ differs from crates.io $version + vendor/patches: run vendor/rebuild.sh" >&2
        exit 1
    fi
    echo "vendor/: sqlx-core and sqlx-postgres $version + $(ls "$here"/patches/*.patch | wc -l) patches reproduce exactly"
else
    for name in "${vendored[@]}"; do
        rm -rf "${here:?}/$name"
        cp -a "$work/out/$name" "$here/$name"
    done
    echo "vendor/: rebuilt sqlx-core and sqlx-postgres $version + patches"
fi
