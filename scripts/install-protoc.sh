#!/usr/bin/env bash
# Installs protoc from Debian's packages (protobuf-compiler) when missing.
set -euo pipefail
if command -v protoc >/dev/null; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "install-protoc: protoc is missing; run as root or: sudo apt-get install -y protobuf-compiler" >&2
  exit 1
fi
apt-get update -qq
apt-get install -y -qq protobuf-compiler >/dev/null
protoc --version
