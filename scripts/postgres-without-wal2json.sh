#!/usr/bin/env bash
# Lays out this machine's PostgreSQL server without the wal2json library, so the embedded
# stack's built-in fallback (pgoutput) can be exercised on a machine that has wal2json.
# PostgreSQL finds its lib and share directories relative to the real path of its executables,
# so the binaries are copied (13 MB) and everything else is linked; wal2json.so is left out.
#
# Usage: scripts/postgres-without-wal2json.sh DIR
# Prints the bin directory to pass as SYNCSTORM_PG_BINDIR.
set -euo pipefail
dest=${1:?usage: postgres-without-wal2json.sh DIR}
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bindir" ]; then
  echo "no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql-15)" >&2
  exit 1
fi
version=$(basename "$(dirname "$bindir")")
share=/usr/share/postgresql/$version
if [ ! -d "$share" ]; then
  echo "expected Debian's layout: $share is missing" >&2
  exit 1
fi
root=$(mkdir -p "$dest" && cd "$dest" && pwd)/usr
mkdir -p "$root/lib/postgresql/$version/lib" "$root/share/postgresql"
cp -a "$bindir" "$root/lib/postgresql/$version/bin"
ln -sfn "$share" "$root/share/postgresql/$version"
for lib in /usr/lib/postgresql/"$version"/lib/*; do
  case ${lib##*/} in
    wal2json*) ;;
    *) ln -sf "$lib" "$root/lib/postgresql/$version/lib/" ;;
  esac
done
echo "$root/lib/postgresql/$version/bin"
