#!/bin/sh
# scripts/setup.sh -- install the Debian packages janebot needs, only those missing.
#   scripts/setup.sh          build + run dependencies
#   scripts/setup.sh --test   also what the test suite needs
# Runs apt-get as root, through sudo otherwise. Installs nothing that is already there.
set -eu

pkgs="gcc make pkg-config libc6-dev libsqlite3-dev libjansson-dev libssl-dev libedit-dev libseccomp-dev libhttp-parser-dev libwebsockets-dev libcmark-dev libyaml-dev bubblewrap e2fsprogs ca-certificates"
if [ "${1:-}" = "--test" ]; then
    pkgs="$pkgs libcriterion-dev python3 python3-websockets procps openssl prometheus"
    # Commands tests run: curl inside sandboxes, mount for a small tmpfs (disk-full tests).
    pkgs="$pkgs curl mount"
    # make fuzz: clang 14 and its libFuzzer and sanitizer runtimes (only a Recommends of
    # clang, so not pulled in by --no-install-recommends).
    pkgs="$pkgs clang libclang-rt-14-dev"
    # The real clients (Claude Code, the LLM SDKs, the Sprites SDK) come from npm at pinned
    # versions when the tests run. A Node.js that is already there (with its npm) is kept.
    if ! command -v npm >/dev/null 2>&1; then
        pkgs="$pkgs nodejs npm"
    fi
fi

missing=""
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "setup: missing packages:$missing" >&2
    echo "setup: run as root or install sudo, then: apt-get install$missing" >&2
    exit 1
fi
echo "setup: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
