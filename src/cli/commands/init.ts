import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import { makeDirsSync } from '../../core/make-dirs.js';
import { checkClientEntries } from '../../net/client-list.js';
import type { Command } from '../command.js';

/** What `postroom init` writes a config from. */
export interface InitAnswers {
  domains: string[];
  hostname: string;
  tlsCert?: string;
  tlsKey?: string;
  allow: string[];
  dataDir: string;
  smtpListen: string;
  httpListen: string;
}

/** A DNS name as mail domains and host names are written: letters, digits, hyphens, dots. */
const DNS_NAME = /^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.?$/i;

/** A YAML scalar that is read back as exactly this string (JSON strings are YAML flow scalars). */
const q = (s: string) => JSON.stringify(s);

/**
 * The starting config for a host that takes mail from the internet. Safe by default: recipients
 * only in `domains` (no open relay: Postroom keeps mail, it never relays, and others get 550
 * 5.1.1), AUTH never offered without TLS, the API on loopback only (put a reverse proxy with TLS
 * in front, or set http.tls), secrets outside the file (the env file beside it).
 */
export function renderInitConfig(a: InitAnswers): string {
  const tls = a.tlsCert && a.tlsKey;
  const lines = [
    '# Postroom configuration written by `postroom init`. Every key: docs/config.md;',
    '# check it with `postroom check-config FILE`. The API token and the secret key are not',
    '# here: they are in the env file beside it (POSTROOM_API_TOKEN, POSTROOM_SECRET_KEY).',
    `dataDir: ${q(a.dataDir)}`,
    '',
    'smtp:',
    '  # Port 25 needs CAP_NET_BIND_SERVICE (deploy/postroom.service grants it).',
    `  listen: ${q(a.smtpListen)}`,
    `  hostname: ${q(a.hostname)}`,
    '  # Only these recipient domains are accepted; anything else gets 550 5.1.1 (no open relay).',
    '  domains:',
    ...a.domains.map((d) => `    - ${q(d)}`),
    ...(a.allow.length
      ? [
          '  # Only these clients may send without AUTH (e.g. the MTA in front); others get 530 5.7.0.',
          '  clients:',
          ...a.allow.map((c) => `    - ${q(c)}`),
        ]
      : ['  # Every client may send to the domains above (an MX). To take mail only from the MTA in', '  # front, list it: clients: [192.0.2.10]']),
    ...(tls
      ? ['  # STARTTLS (RFC 3207). Renewed files are read at the next start.', '  tls:', `    key: ${q(a.tlsKey!)}`, `    cert: ${q(a.tlsCert!)}`]
      : ['  # No certificate given: no STARTTLS. Add one:', '  #tls:', '  #  key: /etc/postroom/tls/key.pem', '  #  cert: /etc/postroom/tls/fullchain.pem']),
    '  # AUTH is offered only after STARTTLS (allowInsecure: false). Add users with',
    '  # `postroom hash-password`:',
    '  #auth:',
    '  #  users:',
    '  #    - { username: scanner, password: "scrypt$..." }',
    '  requireMessageId: false',
    '  bareLineEndings: reject',
    '',
    'http:',
    '  # The API and console on loopback: reach them through a reverse proxy with TLS, or set http.tls.',
    `  listen: ${q(a.httpListen)}`,
    '  metrics:',
    '    # /metrics needs the API token; or give Prometheus a listener of its own:',
    '    #listen: 127.0.0.1:9025',
    '    public: false',
    '',
    'log:',
    '  level: info',
    '',
    '# Mail without a route is kept and can be read through the API. Routes: docs/config.md.',
    'routes: []',
    '',
  ];
  return lines.join('\n');
}

/** The env file: the secrets, as systemd's EnvironmentFile= and `set -a; . FILE` read them. */
export function renderInitEnv(): string {
  const secret = () => randomBytes(32).toString('base64url');
  return [
    '# Secrets for Postroom, written by `postroom init`. Keep this file mode 0600.',
    `POSTROOM_API_TOKEN=${secret()}`,
    '# Encrypts mail-account passwords at rest; nodes sharing a store must share it.',
    `POSTROOM_SECRET_KEY=${secret()}`,
    '',
  ].join('\n');
}

/** Why these answers cannot make a config, or undefined. */
export function checkAnswers(a: InitAnswers): string | undefined {
  if (!a.domains.length) return '--domain is needed: the recipient domains this host takes mail for (without one every recipient would be kept)';
  const bad = a.domains.find((d) => !DNS_NAME.test(d));
  if (bad) return `--domain ${bad}: not a domain name`;
  if (!DNS_NAME.test(a.hostname)) return `--hostname ${a.hostname}: not a host name`;
  if (!!a.tlsCert !== !!a.tlsKey) return '--tls-cert and --tls-key go together';
  if (a.allow.length) {
    const why = checkClientEntries(a.allow);
    if (why) return `--allow: ${why}`;
  }
  return undefined;
}

async function ask(a: InitAnswers): Promise<InitAnswers> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const get = async (question: string, fallback = '') => (await rl.question(fallback ? `${question} [${fallback}]: ` : `${question}: `)).trim() || fallback;
    const list = (s: string) => s.split(/[\s,]+/).filter(Boolean);
    const domains = list(await get('Mail domains this host takes mail for (comma-separated)'));
    const hostname = await get('Host name in the SMTP greeting (the MX name)', a.hostname);
    const tlsCert = (await get('TLS certificate chain file (PEM; empty: no STARTTLS)')) || undefined;
    const tlsKey = tlsCert ? await get('TLS private key file (PEM)') : undefined;
    const allow = list(await get('Clients that may send without AUTH (empty: every client, as an MX)'));
    return { ...a, domains, hostname, tlsCert, tlsKey, allow };
  } finally {
    rl.close();
  }
}

export const initCmd: Command = {
  name: 'init',
  summary: 'write a starting config for a host that takes mail from the internet',
  usage: `usage: postroom init --domain DOMAIN [--domain DOMAIN…] [--hostname NAME]
                     [--tls-cert FILE --tls-key FILE] [--allow CLIENT…]
                     [--out FILE] [--env-file FILE] [--data-dir DIR]
                     [--smtp-listen HOST:PORT] [--http-listen HOST:PORT] [--force]

Writes a config (default ./postroom.yaml) and, beside it, an env file (mode 0600) with a new
random API token and secret key (POSTROOM_API_TOKEN, POSTROOM_SECRET_KEY) for systemd's
EnvironmentFile= (deploy/postroom.service). Run without options on a terminal, it asks.

Safe defaults: only mail for --domain is accepted (no open relay), AUTH only after STARTTLS,
the API on 127.0.0.1:8025, SMTP on 0.0.0.0:25 (--smtp-listen to change), data in
/var/lib/postroom (--data-dir). --allow (repeatable: IPs, CIDRs, host names) lets only those
clients send without AUTH, as for a Postfix or Exim relaying to Postroom.
An existing file is never overwritten without --force (exit 73). Next: 'postroom check-config FILE';
docs/deploy.md.`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        domain: { type: 'string', multiple: true },
        hostname: { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        allow: { type: 'string', multiple: true },
        out: { type: 'string', short: 'o' },
        'env-file': { type: 'string' },
        'data-dir': { type: 'string' },
        'smtp-listen': { type: 'string' },
        'http-listen': { type: 'string' },
        force: { type: 'boolean' },
      },
    });
    const abs = (p: string | undefined) => (p ? path.resolve(p) : undefined);
    let answers: InitAnswers = {
      domains: (values.domain ?? []).flatMap((d) => d.split(',')).map((d) => d.trim().toLowerCase()).filter(Boolean),
      hostname: values.hostname ?? os.hostname(),
      tlsCert: abs(values['tls-cert']),
      tlsKey: abs(values['tls-key']),
      allow: (values.allow ?? []).flatMap((c) => c.split(',')).map((c) => c.trim()).filter(Boolean),
      dataDir: abs(values['data-dir']) ?? '/var/lib/postroom',
      smtpListen: values['smtp-listen'] ?? '0.0.0.0:25',
      httpListen: values['http-listen'] ?? '127.0.0.1:8025',
    };
    // Asks only when a person is there to answer and said nothing on the command line: a script
    // or a provisioning tool never waits on a prompt.
    if (argv.length === 0 && process.stdin.isTTY && process.stderr.isTTY) {
      answers = await ask(answers);
      answers.tlsCert = abs(answers.tlsCert);
      answers.tlsKey = abs(answers.tlsKey);
    }
    const why = checkAnswers(answers);
    if (why) {
      process.stderr.write(`postroom init: ${why}\n'postroom init --help' shows its options.\n`);
      return 64; // EX_USAGE
    }
    const out = path.resolve(values.out ?? 'postroom.yaml');
    const envFile = path.resolve(values['env-file'] ?? path.join(path.dirname(out), 'postroom.env'));
    // Both checked before either is written: half an init (a new token, the old config) is worse than none.
    const existing = [out, envFile].filter((f) => existsSync(f));
    if (existing.length && !values.force) {
      process.stderr.write(`postroom init: ${existing.join(' and ')} already exist${existing.length === 1 ? 's' : ''}; not overwritten (--force replaces, and makes a new API token)\n`);
      return 73; // EX_CANTCREAT
    }
    for (const f of [answers.tlsCert, answers.tlsKey]) {
      if (f && !existsSync(f)) process.stderr.write(`postroom init: warning: ${f} does not exist yet; serve needs it to start\n`);
    }
    const flag = values.force ? 'w' : 'wx';
    makeDirsSync(path.dirname(out));
    makeDirsSync(path.dirname(envFile));
    writeFileSync(envFile, renderInitEnv(), { mode: 0o600, flag });
    // mode applies only to a new file: a replaced one (--force) keeps its own, which may be wider.
    chmodSync(envFile, 0o600);
    writeFileSync(out, renderInitConfig(answers), { mode: 0o644, flag });
    process.stdout.write(
      [
        `wrote ${out}`,
        `wrote ${envFile} (mode 0600: the API token and secret key)`,
        `next: postroom check-config ${out}`,
        `      set -a; . ${envFile}; set +a; postroom serve --config ${out}`,
        '      or install deploy/postroom.service (docs/deploy.md)',
        '',
      ].join('\n'),
    );
    return 0;
  },
};
