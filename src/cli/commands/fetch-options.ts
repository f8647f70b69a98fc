import { parseArgs } from 'node:util';
import { mailError } from '../../core/errors.js';
import type { TlsMode } from '../../domain/accounts/store.js';
import { workpackageParams } from '../../targets/workpackage.js';

/**
 * The options of `postroom fetch`, as `--flags` or as the Redmine/OpenProject rake tasks write
 * them (`host=… port=993 ssl=true allow_override=type,project project=test_project`): both
 * tables of the original (IMAP, POP3) and its work-package options, which make the fetched mail
 * a work package without a configured route.
 */

export interface FetchOpts {
  protocol: 'imap' | 'pop3';
  host: string;
  port: number;
  tls: TlsMode;
  username: string;
  password: string;
  folder: string;
  recipient: string;
  route: string | null;
  /** JSON `[{kind, params}]`: the targets named inline (project=…), kept with each message's link. */
  deliver: string | null;
  /** IMAP: what happens to a kept message on the server. */
  onSuccess: { move: string } | 'delete' | 'seen';
  moveOnFailure: string | null;
  apop: boolean;
  deleteUnprocessed: boolean;
  /** POP3: leave kept messages on the server. */
  keep: boolean;
  tlsVerify: boolean;
  config?: string;
}

function usage(why: string): never {
  throw Object.assign(mailError('INVALID_REQUEST', why), { usage: true });
}

const FLAGS = {
  host: { type: 'string' },
  port: { type: 'string' },
  ssl: { type: 'boolean', default: false },
  starttls: { type: 'boolean', default: false },
  username: { type: 'string' },
  password: { type: 'string' },
  folder: { type: 'string', default: 'INBOX' },
  'move-on-success': { type: 'string' },
  'move-on-failure': { type: 'string' },
  delete: { type: 'boolean', default: false },
  apop: { type: 'boolean', default: false },
  'delete-unprocessed': { type: 'boolean', default: false },
  keep: { type: 'boolean', default: false },
  route: { type: 'string' },
  recipient: { type: 'string' },
  'no-verify': { type: 'boolean', default: false },
  project: { type: 'string' },
  tracker: { type: 'string' },
  type: { type: 'string' },
  category: { type: 'string' },
  priority: { type: 'string' },
  status: { type: 'string' },
  'allow-override': { type: 'string' },
  'no-permission-check': { type: 'boolean', default: false },
  'unknown-user': { type: 'string' },
  'no-notification': { type: 'boolean', default: false },
  config: { type: 'string', short: 'c' },
} as const;

// The original's options that have no meaning here, and why (refused, so nobody believes them applied).
const UNSUPPORTED: Record<string, string> = {
  'no-account-notice': 'Postroom creates no tracker users from mail (unknown_user=create is not supported)',
  'default-group': 'Postroom creates no tracker users from mail (unknown_user=create is not supported)',
  'project-from-subaddress': "use a route whose recipient pattern captures the project (project: '<%project%>')",
  'assigned-to': 'a work package takes its assignee from an Assignee: line of the mail (allow_override: assignee)',
  'fixed-version': 'a work package takes its version from a Version: line of the mail',
  private: 'work packages have no private flag here',
};

const TRUE = new Set(['1', 'true', 'yes', 'on', 'y']);
const FALSE = new Set(['0', 'false', 'no', 'off', 'n', '']);

/** `key=value` words (the rake style) as `--key value` / `--key` flags; anything else as it is. */
export function rakeToFlags(argv: string[]): string[] {
  const out: string[] = [];
  for (const a of argv) {
    const m = /^([a-z][a-z_-]*)=(.*)$/is.exec(a);
    if (!m || a.startsWith('-')) {
      out.push(a);
      continue;
    }
    const key = m[1].toLowerCase().replace(/_/g, '-');
    const value = m[2];
    if (key in UNSUPPORTED) usage(`${m[1]}: not supported: ${UNSUPPORTED[key]}`);
    const flag = (FLAGS as Record<string, { type: string }>)[key];
    if (!flag) usage(`${m[1]}: no such option`);
    if (flag.type === 'boolean') {
      const v = value.toLowerCase();
      if (TRUE.has(v)) out.push(`--${key}`);
      else if (!FALSE.has(v)) usage(`${m[1]}=${value}: give 1/true or 0/false`);
    } else {
      out.push(`--${key}=${value}`);
    }
  }
  return out;
}

/** The inline workpackage target the work-package options ask for, as JSON; null when none is given. */
function inlineDeliver(v: Record<string, string | boolean | undefined>): string | null {
  if (v.tracker && v.type && v.tracker !== v.type) usage('tracker and type name the same thing: give one');
  const unknownUser = (v['unknown-user'] as string | undefined)?.toLowerCase();
  if (unknownUser && !['ignore', 'accept'].includes(unknownUser)) usage(`unknown_user=${unknownUser}: take ignore (refuse unknown senders, the default) or accept (file them as Anonymous); Postroom creates no users from mail`);
  const raw = {
    project: v.project,
    type: v.type ?? v.tracker,
    category: v.category,
    priority: v.priority,
    status: v.status,
    allow_override: v['allow-override'],
    no_permission_check: v['no-permission-check'] || unknownUser === 'accept' ? true : undefined,
  };
  const given = Object.fromEntries(Object.entries(raw).filter(([, x]) => x !== undefined));
  if (!Object.keys(given).length) return null;
  const parsed = workpackageParams.safeParse(given);
  if (!parsed.success) usage(parsed.error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`).join('; '));
  return JSON.stringify([{ kind: 'workpackage', params: parsed.data }]);
}

export function fetchOptions(argv: string[]): FetchOpts {
  const { values, positionals } = parseArgs({ args: rakeToFlags(argv), allowPositionals: true, options: FLAGS });
  const [protocol, ...extra] = positionals;
  if ((protocol !== 'imap' && protocol !== 'pop3') || extra.length) usage('name imap or pop3');
  // The original's defaults: the server on this host, the login required.
  const host = values.host ?? '127.0.0.1';
  if (!values.username || values.password === undefined) usage('username and password are required');
  if (values.ssl && values.starttls) usage('--ssl or --starttls, not both');
  const deliver = inlineDeliver(values);
  if ([values.route, values.recipient, deliver].filter(Boolean).length > 1) usage('--route, --recipient or the work-package options (project=…), one of them');
  const tls: TlsMode = values.ssl ? 'tls' : values.starttls ? 'starttls' : 'none';
  const port = values.port ? Number(values.port) : protocol === 'imap' ? (tls === 'tls' ? 993 : 143) : tls === 'tls' ? 995 : 110;
  if (!Number.isInteger(port) || port < 1 || port > 65535) usage('--port must be a TCP port');
  const recipient = values.recipient ?? (values.username.includes('@') ? values.username : `${values.username}@${host}`);
  if (values.keep && values['move-on-success']) usage('--keep or --move-on-success, not both');
  // As the original: a kept message is moved to move_on_success, else deleted (--keep: flagged \Seen).
  const onSuccess = values['move-on-success'] ? { move: values['move-on-success'] } : values.keep ? 'seen' : 'delete';
  return {
    protocol,
    host,
    port,
    tls,
    username: values.username,
    password: values.password,
    folder: values.folder!,
    recipient,
    route: values.route ?? null,
    deliver,
    onSuccess,
    moveOnFailure: values['move-on-failure'] ?? null,
    apop: values.apop!,
    deleteUnprocessed: values['delete-unprocessed']!,
    keep: values.keep!,
    tlsVerify: !values['no-verify'],
    config: values.config,
  };
}
