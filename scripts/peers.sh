#!/usr/bin/env bash
# Install the real peers the tests talk to (`npm run peers`; .ci/run runs it too). This is the
# one list of them: test/helpers/env.ts only looks for them and skips a test whose peer is
# missing (outside CI), naming this command. Debian/Ubuntu; as root, or through sudo.
# Idempotent: installs only what is missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export DEBIAN_FRONTEND=noninteractive
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)

need=()
command -v swaks >/dev/null || need+=(swaks)
# swaks speaks STARTTLS through Net::SSLeay, a recommendation that --no-install-recommends skips.
perl -MNet::SSLeay -MIO::Socket::SSL -e1 2>/dev/null || need+=(libnet-ssleay-perl libio-socket-ssl-perl)
command -v smtp-source >/dev/null || need+=(postfix)   # also smtp-sink, and Postfix itself
command -v dovecot >/dev/null || need+=(dovecot-imapd dovecot-pop3d)
command -v openssl >/dev/null || need+=(openssl)       # throw-away TLS certificates
command -v curl >/dev/null || need+=(curl)             # WebDAV as a stock client speaks it
command -v cadaver >/dev/null || need+=(cadaver)       # a real WebDAV client that writes (PUT, MOVE, COPY)
command -v strace >/dev/null || need+=(strace)         # fault injection (test/chaos, bench, docs)
command -v sqlite3 >/dev/null || need+=(sqlite3)       # docs/backup.md, run by test/integration/backup.test.ts
command -v rsync >/dev/null || need+=(rsync)
command -v pg_dump >/dev/null || need+=(postgresql-client)
# A PostgreSQL server a test starts and stops itself (test/chaos/postgres-down.test.ts); .ci/run
# also starts the machine's cluster from it.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# Debian's own Python (not a pyenv one): its email package is the reference parser, and
# aiosmtpd the SMTP sink that records what it got.
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || need+=(python3 python3-aiosmtpd)
command -v chromium >/dev/null || need+=(chromium)
[ -x /usr/bin/systemd-analyze ] || need+=(systemd)      # verifies deploy/postroom.service
# Independent DKIM and ARC signers for the sender authentication tests (python3-dkim), and
# opendkim-tools (opendkim-genkey, opendkim-testkey) for the docs' key setup.
command -v dkimsign >/dev/null || need+=(python3-dkim)
/usr/bin/python3 -c 'import authres' 2>/dev/null || need+=(python3-authres)   # arcsign needs it
command -v opendkim-genkey >/dev/null || need+=(opendkim-tools)
if [ ${#need[@]} -gt 0 ]; then
  "${as_root[@]}" apt-get update -q
  "${as_root[@]}" apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# Exim for test/interop/exim-pipe-deliver.test.ts, made available without installing it: the
# exim4 packages conflict with postfix (both provide mail-transport-agent) and the tests need
# Postfix too. So: download exim4-daemon-light, unpack it under .peers/exim4 (git-ignored),
# install the libraries it links against (plain libraries, no conflict), and create the
# Debian-exim user the binary looks up at start (EXIM_USER=ref:Debian-exim, compiled in; its
# postinst would create it). The test runs Exim as root with its config listed in
# /etc/exim4/trusted_configs (see test/helpers/exim.ts).
dir="${POSTROOM_EXIM_DIR:-$root/.peers/exim4}"
exim="$dir/usr/sbin/exim4"
if [ ! -x "$exim" ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  # apt's download sandbox user must be able to write here (else a warning, and it runs as root).
  chmod 755 "$tmp"
  if id _apt >/dev/null 2>&1; then "${as_root[@]}" chown _apt "$tmp"; fi
  if ! (cd "$tmp" && apt-get download -q exim4-daemon-light); then
    "${as_root[@]}" apt-get update -q
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
    "${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" || { "${as_root[@]}" apt-get update -q && "${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"; }
  fi
  mkdir -p "$dir.new"
  dpkg -x "$deb" "$dir.new"
  rm -rf "$dir"
  mv "$dir.new" "$dir"
fi

if ! getent passwd Debian-exim >/dev/null; then
  getent group Debian-exim >/dev/null || "${as_root[@]}" groupadd --system Debian-exim
  "${as_root[@]}" useradd --system --gid Debian-exim --home-dir /var/spool/exim4 --no-create-home --shell /usr/sbin/nologin Debian-exim
fi

# Exim honours -C with root privilege only for files listed here (TRUSTED_CONFIG_LIST,
# compiled in); the test adds its temporary config while it runs and takes it out again.
"${as_root[@]}" mkdir -p /etc/exim4
[ -e /etc/exim4/trusted_configs ] || "${as_root[@]}" install -m 644 /dev/null /etc/exim4/trusted_configs

# It runs (libraries, user): print its version line.
"$exim" -C /dev/null -bV 2>/dev/null | head -1
