#!/usr/bin/env bash
# Make Debian's Exim 4 available to test/interop/exim-pipe-deliver.test.ts without installing
# it: the exim4 packages conflict with postfix (both provide mail-transport-agent) and the tests
# need Postfix too. So: download exim4-daemon-light, unpack it under .peers/exim4 (git-ignored),
# install the libraries it links against (plain libraries, no conflict), and create the
# Debian-exim user the binary looks up at start (EXIM_USER=ref:Debian-exim, compiled in; its
# postinst would create it). Idempotent. Run as root (CI does); the test itself runs Exim as root
# with its config listed in /etc/exim4/trusted_configs (see test/helpers/exim.ts).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${POSTROOM_EXIM_DIR:-$root/.peers/exim4}"
exim="$dir/usr/sbin/exim4"
export DEBIAN_FRONTEND=noninteractive

if [ ! -x "$exim" ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  # apt's download sandbox user must be able to write here (else a warning, and it runs as root).
  chmod 755 "$tmp"
  if id _apt >/dev/null 2>&1; then chown _apt "$tmp"; fi
  if ! (cd "$tmp" && apt-get download -q exim4-daemon-light); then
    apt-get update -q
    (cd "$tmp" && apt-get download -q exim4-daemon-light)
  fi
  deb="$(ls "$tmp"/exim4-daemon-light_*.deb)"
  # Its Depends, first alternative of each, without versions; exim4-base (scripts, cron jobs,
  # and the conflict) and debconf are not needed to run the binary.
  libs=()
  while read -r p; do
    case "$p" in exim4-base | debconf | '') ;; *) libs+=("$p") ;; esac
  done < <(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/ //g')
  missing=()
  for p in "${libs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get install -y -q --no-install-recommends "${missing[@]}" || { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; }
  fi
  mkdir -p "$dir.new"
  dpkg -x "$deb" "$dir.new"
  rm -rf "$dir"
  mv "$dir.new" "$dir"
fi

if ! getent passwd Debian-exim >/dev/null; then
  getent group Debian-exim >/dev/null || groupadd --system Debian-exim
  useradd --system --gid Debian-exim --home-dir /var/spool/exim4 --no-create-home --shell /usr/sbin/nologin Debian-exim
fi

# Exim honours -C with root privilege only for files listed here (TRUSTED_CONFIG_LIST,
# compiled in); the test adds its temporary config while it runs and takes it out again.
mkdir -p /etc/exim4
[ -e /etc/exim4/trusted_configs ] || install -m 644 /dev/null /etc/exim4/trusted_configs

# It runs (libraries, user): print its version line.
"$exim" -C /dev/null -bV 2>/dev/null | head -1
