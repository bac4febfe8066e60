#!/usr/bin/env bash
# Fetch the official Node 24 binary from the npm registry (package node-<os>-<arch>)
# into .tools/ (gitignored), cache it there, and print the bin dir that holds `node`.
#
#   PATH="$(bash scripts/node24.sh):$PATH" node --version   # -> v24.11.1
#
# Everything except the final path goes to stderr, so $(...) captures only the path.
# Override the version with NODE24_VERSION=24.x.y.
set -euo pipefail

version="${NODE24_VERSION:-24.11.1}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
bindir="$tools/node-v$version/bin"

case "$(uname -m)" in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "node24.sh: unsupported CPU $(uname -m)" >&2; exit 1 ;;
esac
pkg="node-linux-$arch@$version"

# Cached and working: nothing to download.
if [ -x "$bindir/node" ] && [ "$("$bindir/node" --version 2>/dev/null)" = "v$version" ]; then
  echo "$bindir"
  exit 0
fi

mkdir -p "$tools"
work="$(mktemp -d "$tools/.node24-XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "node24.sh: fetching $pkg from the npm registry" >&2
(cd "$work" && npm pack "$pkg" --silent >/dev/null)
tgz="$(find "$work" -maxdepth 1 -name '*.tgz' | head -n 1)"
[ -n "$tgz" ] || { echo "node24.sh: npm pack $pkg produced no tarball" >&2; exit 1; }

# Known layout: package/bin/node. Extract just that member (the tarball also holds
# ~180 MB of headers and docs); if the layout ever differs, unpack everything and
# look for an executable file named `node`.
mkdir -p "$work/x"
if tar -xzf "$tgz" -C "$work/x" package/bin/node 2>/dev/null && [ -f "$work/x/package/bin/node" ]; then
  found="$work/x/package/bin/node"
else
  echo "node24.sh: package/bin/node not in tarball, searching it" >&2
  tar -xzf "$tgz" -C "$work/x"
  found="$(find "$work/x" -type f -name node -perm -u+x | head -n 1)"
  [ -n "$found" ] || found="$(find "$work/x" -type f -name node | head -n 1)"
  [ -n "$found" ] || { echo "node24.sh: no node binary inside $pkg" >&2; exit 1; }
fi
chmod +x "$found"

got="$("$found" --version)"
[ "$got" = "v$version" ] || { echo "node24.sh: expected v$version, binary says $got" >&2; exit 1; }

# Move into place atomically, so an interrupted or concurrent run never leaves a half-written binary.
mkdir -p "$bindir"
mv -f "$found" "$bindir/node.tmp.$$"
mv -f "$bindir/node.tmp.$$" "$bindir/node"
echo "$bindir"
