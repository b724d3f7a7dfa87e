#!/bin/sh
#   Install what meshbus needs on Debian 12, only what is missing (runs
#   apt-get as root, or through sudo when not root).
#
#   ./install-deps.sh             everything to build and test (the default)
#   ./install-deps.sh --runtime   only what running the installed library,
#                                 the tool and the Python package needs
set -e
RUNTIME="libzmq5 libczmq4 libsodium23 liblmdb0 libmicrohttpd12 libjansson4 python3 python3-cffi"
BUILD="build-essential pkg-config scons libzmq3-dev libczmq-dev libmsgpack-dev
      libsodium-dev liblmdb-dev libcmocka-dev clang libclang-rt-14-dev valgrind
      libmicrohttpd-dev libjansson-dev chromium tmux
      python3 python3-cffi python3-dev python3-pytest python3-venv python3-zmq
      python3-msgpack python3-prometheus-client python3-fixtures python3-oslo.messaging
      python3-oslotest python3-testscenarios python3-testtools python3-eventlet
      iproute2 util-linux procps man-db strace"
case "${1:-}" in
    --runtime) PKGS=$RUNTIME ;;
    "") PKGS="$RUNTIME $BUILD" ;;
    *) echo "usage: $0 [--runtime]" >&2; exit 2 ;;
esac
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "installing:$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
