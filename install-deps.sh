#!/bin/sh
#   Install what meshbus needs to build and test on Debian 12, only what is
#   missing (runs apt-get as root, or through sudo when not root).
set -e
PKGS="build-essential pkg-config scons libzmq3-dev libczmq-dev libmsgpack-dev
      libsodium-dev liblmdb-dev libcmocka-dev clang libclang-rt-14-dev valgrind
      python3 python3-cffi python3-dev python3-pytest python3-venv python3-zmq python3-msgpack iproute2 util-linux procps"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "installing:$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
