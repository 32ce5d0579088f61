#!/usr/bin/env bash
# The MBROLA voices (mbrola: contrib; mbrola-us1 ...: non-free) and festival's contrib voices
# are not in Debian's main component. `make sysdeps-train` runs this to add the contrib and
# non-free components of this machine's own Debian release, as a separate sources file it
# names, after printing exactly what it writes; nothing else in the apt configuration is
# changed. Without root it only prints the commands to run. Remove the file to undo it.
set -euo pipefail

SOURCES=/etc/apt/sources.list.d/wakeward-contrib-non-free.sources

if apt-cache show mbrola >/dev/null 2>&1 && apt-cache show mbrola-us1 >/dev/null 2>&1; then
    exit 0  # already reachable: nothing to do
fi
. /etc/os-release
if [ "${ID:-}" != debian ] || [ -z "${VERSION_CODENAME:-}" ]; then
    echo "wakeward: the MBROLA voices need Debian's contrib and non-free components;"
    echo "wakeward: this is not a Debian release I know how to add them to (${PRETTY_NAME:-unknown}): skipped"
    exit 0
fi
# the archive this machine already uses for main (deb822 or one-line sources), else Debian's
uri=$(grep -h '^URIs:' /etc/apt/sources.list.d/debian.sources 2>/dev/null | awk 'NR == 1 {print $2}' || true)
if [ -z "$uri" ]; then
    uri=$(grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | awk 'NR == 1 {print $2}' || true)
fi
uri=${uri:-http://deb.debian.org/debian}
entry="Types: deb
URIs: $uri
Suites: $VERSION_CODENAME $VERSION_CODENAME-updates
Components: contrib non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"

if [ "$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi
echo "wakeward: the MBROLA voices and festival's contrib voices are in Debian's contrib and"
echo "wakeward: non-free components, which this machine's apt sources do not enable."
if [ "$SUDO" = none ]; then
    echo "wakeward: to enable them (then run make sysdeps-train again), run:"
    echo "  printf '%s\\n' '$(printf '%s' "$entry" | sed ':a;N;$!ba;s/\n/'"' '"'/g')' | sudo tee $SOURCES"
    echo "  sudo apt-get update"
    exit 0
fi
echo "wakeward: writing $SOURCES (remove it to undo):"
printf '%s\n' "$entry" | sed 's/^/    /'
printf '%s\n' "$entry" | $SUDO tee "$SOURCES" >/dev/null
$SUDO apt-get update -qq
