#!/bin/sh
# The one command that runs every test of Ligne Directe, on a fresh Debian
# machine with Rust: installs the real SIP peers the end-to-end tests use
# when they are missing, builds acdd, then runs the whole workspace's tests.
#   sh tests/run.sh            (as root, or with sudo available)
set -eu
cd "$(dirname "$0")/.."

missing=""
command -v kamailio >/dev/null 2>&1 || missing="$missing kamailio"
command -v kamcmd >/dev/null 2>&1 || missing="$missing kamailio"
command -v sipp >/dev/null 2>&1 || missing="$missing sip-tester"
command -v python3 >/dev/null 2>&1 || missing="$missing python3"
# the TTS crate's tests render French speech for real
command -v espeak-ng >/dev/null 2>&1 || missing="$missing espeak-ng"
command -v baresip >/dev/null 2>&1 || missing="$missing baresip"
if [ -n "$missing" ]; then
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    echo "installing the test peers:$missing"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi
# On a systemd host the Debian package starts its own kamailio on port 5060:
# the tests run their own, on loopback.
if [ -d /run/systemd/system ] && systemctl is-active --quiet kamailio 2>/dev/null; then
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO systemctl disable --now kamailio
fi

# The end-to-end tests start the daemon's binary: build it first.
cargo build -p acdd
cargo test --workspace
