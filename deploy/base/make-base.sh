#!/usr/bin/env bash
# A Debian bookworm base image made from Debian's packages with debootstrap, for building the Dockerfile where
# no container registry is reachable: `BASE_IMAGE=$(deploy/base/make-base.sh)`.
#
# It stands in for the official python:3.11-slim-bookworm: Debian's python3.11 (as `python` and `python3`) with
# venv and ensurepip, ca-certificates, bash and useradd; no compilers, no apt lists, no docs. The root
# filesystem is cached as a tarball keyed by a hash of its inputs (suite, packages, architecture, recipe), imported
# into podman as localhost/toefl-base:bookworm-<hash>; a second run with the same inputs reuses the image or
# the tarball. Prints the image reference on stdout, progress on stderr.
#
# Environment: TOEFL_IMAGE_CACHE (default /var/cache/toefl-images), DEBIAN_MIRROR (default:
# the Debian mirror this host's apt uses), TOEFL_BASE_REFRESH=1 to rebuild even when cached (security updates).
set -euo pipefail

suite=bookworm
include=python3.11,python3.11-venv,python3-venv,python-is-python3,ca-certificates
# Bump when the way the root filesystem is made changes (the steps below), so that caches are remade.
recipe=1

key="$(echo "$suite $include $(dpkg --print-architecture) recipe=$recipe" | sha256sum | cut -c1-12)"
image="localhost/toefl-base:$suite-$key"
cache="${TOEFL_IMAGE_CACHE:-/var/cache/toefl-images}"
tarball="$cache/base-$suite-$key.tar"
say() { echo "make-base: $*" >&2; }

if [ "${TOEFL_BASE_REFRESH:-0}" != 1 ]; then
    if podman image exists "$image"; then
        say "cached image $image"
        echo "$image"
        exit 0
    fi
fi

# The entry of this host's apt sources that serves "$1" (deb822 .sources files, then sources.list lines).
host_mirror() {
    local wanted="$1" found=""
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        found="$(awk -v s="$wanted" 'BEGIN { RS = "" } {
            uris = ""; ok = 0
            n = split($0, lines, "\n")
            for (i = 1; i <= n; i++) {
                if (lines[i] ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", lines[i]); split(lines[i], u, /[ \t]+/); uris = u[1] }
                if (lines[i] ~ /^Suites:/) { m = split(lines[i], w, /[ \t]+/); for (j = 2; j <= m; j++) if (w[j] == s) ok = 1 }
            }
            if (ok && uris != "") { print uris; exit }
        }' "$f")"
        [ -n "$found" ] && break
    done
    if [ -z "$found" ] && [ -f /etc/apt/sources.list ]; then
        found="$(awk -v s="$wanted" '$1 == "deb" { for (i = 2; i < NF; i++) if ($i !~ /^\[/ && $(i + 1) == s) { print $i; exit } }' \
            /etc/apt/sources.list)"
    fi
    echo "$found"
}

if [ "${TOEFL_BASE_REFRESH:-0}" = 1 ] || [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null || { say "debootstrap is missing: apt-get install debootstrap"; exit 1; }
    mirror="${DEBIAN_MIRROR:-$(host_mirror "$suite")}"
    [ -n "$mirror" ] || { say "no Debian mirror for $suite in this host's apt sources: set DEBIAN_MIRROR"; exit 1; }
    security="$(host_mirror "$suite-security")"
    mkdir -p "$cache"
    root="$(mktemp -d "$cache/root.XXXXXX")"
    trap 'rm -rf "$root" "$tarball.part"' EXIT
    started=$SECONDS
    say "debootstrap $suite (minbase + $include)"
    debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 \
        || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
    # The image's own apt sources: the suite, its updates and (when this host has one) its security archive;
    # the point release's fixes are applied now, and apt's lists and caches dropped again.
    {
        printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\n' "$mirror" "$suite" "$suite"
        printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
        if [ -n "$security" ]; then
            printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\n' "$security" "$suite"
            printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
        fi
    } > "$root/etc/apt/sources.list.d/debian.sources"
    : > "$root/etc/apt/sources.list"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    chroot "$root" /bin/sh -c 'export DEBIAN_FRONTEND=noninteractive; apt-get update -q && apt-get upgrade -y -q' \
        >>"$cache/debootstrap.log" 2>&1 || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
    # What the slim official images leave out too.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
        "$root"/var/log/* "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
        "$root"/usr/share/locale/* "$root"/tmp/* "$root"/root/.cache
    : > "$root/etc/resolv.conf"
    : > "$root/etc/hostname"
    tar --numeric-owner -C "$root" -cf "$tarball.part" .
    mv "$tarball.part" "$tarball"
    rm -rf "$root"
    trap - EXIT
    say "base root filesystem made in $((SECONDS - started)) s: $tarball"
fi

podman image rm -f "$image" >/dev/null 2>&1 || true
podman import --quiet \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    --message "debootstrap $suite: $include" \
    "$tarball" "$image" >/dev/null
say "imported $image"
echo "$image"
