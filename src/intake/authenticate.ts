import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import { AUTH_RESULTS, type AuthResult, type AuthVerdict, type DkimVerdict } from '../core/auth.js';
import { boundedLookup, type DnsLookup } from '../net/dns-cache.js';

/**
 * mailauth, loaded when a message is first verified: loading it costs ~0.3 s and ~35 MiB, which
 * every `postroom deliver` (one process per message from the MTA's pipe) and every server with
 * `auth.enabled` off would pay for nothing.
 */
let mailauth: Promise<typeof import('mailauth')> | undefined;
const loadMailauth = () => (mailauth ??= import('mailauth'));

/** What the SMTP session knew when DATA began. */
export interface SessionFacts {
  ip?: string;
  helo?: string;
  /** MAIL FROM; '' for the null sender (SPF then checks the HELO name, RFC 7208 §2.4). */
  mailFrom: string;
}

export interface AuthenticatorOptions {
  /** Our authserv-id: the name in our Authentication-Results (RFC 8601 §2.5). */
  hostname: string;
  /** The longest verification may take after the last byte of DATA, ms: past it, temperror. */
  timeout: number;
  lookup: DnsLookup;
  /** Smallest RSA key a DKIM or ARC signature may use (RFC 8301 §3.2: 1024). */
  minBitLength?: number;
}

/** Verifies one message's SPF, DKIM, ARC and DMARC; never throws. */
export type Authenticator = (raw: Readable, facts: SessionFacts) => Promise<AuthVerdict>;

const asResult = (r: unknown): AuthResult => ((AUTH_RESULTS as readonly unknown[]).includes(r) ? (r as AuthResult) : 'permerror');

interface MailauthDkimRow {
  signingDomain?: string;
  selector?: string;
  status?: { result?: string; comment?: string; aligned?: string | false };
}

/**
 * mailauth's authenticate(), taken apart so that SPF (which needs only the session: IP, HELO,
 * MAIL FROM) runs while the bytes still stream, and so that every DNS query and the whole of it
 * are bounded: the 250 after DATA must not wait on a name server. Memory: mailauth's DKIM
 * verifier keeps the header block and feeds the body through its hashes as it streams, so a
 * 200 MB message costs its header, not its size. BIMI is not asked (Postroom shows no logos).
 */
export function createAuthenticator(opts: AuthenticatorOptions): Authenticator {
  // Verification is on: load the library now, not while the first message waits on it.
  void loadMailauth().catch(() => {});
  return async (raw, facts) => {
    let deadline = Number.POSITIVE_INFINITY;
    // Until the last byte the client is the slow one; the time bound starts at the end of DATA
    // (a lookup begun before it is cut off by the race below).
    const bounded: DnsLookup = (name, rrtype) => (Number.isFinite(deadline) ? boundedLookup(opts.lookup, deadline)(name, rrtype) : opts.lookup(name, rrtype));
    const resolver = bounded as never;
    const spfRun = checkSpf(facts, opts.hostname, resolver);
    let timer: NodeJS.Timeout | undefined;
    let ended: () => void = () => {};
    let cut: (v: 'cut') => void = () => {};
    const endOfData = new Promise<void>((r) => (ended = r));
    // Destroyed before its end (the message was refused or over a limit): nothing to wait for.
    const cutOff = new Promise<'cut'>((r) => (cut = r));
    raw.once('end', () => ended());
    raw.once('close', () => (raw.readableEnded ? ended() : cut('cut')));
    const work = verifyAll(raw, spfRun, resolver, opts);
    const late = endOfData.then(
      () =>
        new Promise<'late'>((r) => {
          deadline = Date.now() + opts.timeout;
          timer = setTimeout(() => r('late'), opts.timeout + 50);
        }),
    );
    try {
      const v = await Promise.race([work, late, cutOff]);
      if (v === 'cut') return unfinished(opts.hostname, 'the message did not arrive whole');
      if (v === 'late') return unfinished(opts.hostname, `DNS did not answer within ${opts.timeout} ms`);
      return v;
    } catch (err) {
      return unfinished(opts.hostname, `verification failed: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  };
}

/**
 * SPF for one session (RFC 7208 §4): mailauth's check_host() with our resolver. Resolves with
 * mailauth's result (`status.result`, `domain`), undefined without a client IP; never throws.
 */
export function checkSpf(facts: SessionFacts, hostname: string, resolver: never): Promise<{ status?: { result?: string }; domain?: string } | undefined> {
  if (!facts.ip) return Promise.resolve(undefined);
  const helo = facts.helo ?? facts.ip;
  const ip = facts.ip;
  return loadMailauth().then(({ spf }) => spf({
    ip,
    // An address literal as HELO is written in brackets (RFC 5321 §4.1.3), as mailauth expects.
    helo: helo && isIP(helo) ? `[${helo}]` : helo,
    sender: facts.mailFrom || undefined,
    mta: hostname,
    resolver,
  } as never)).catch(() => undefined) as Promise<{ status?: { result?: string }; domain?: string } | undefined>;
}

/** The verdict when verification did not finish: RFC 8601 temperror for each method. */
export function unfinished(hostname: string, reason: string): AuthVerdict {
  return {
    source: 'smtp',
    authservId: hostname,
    spf: { result: 'temperror', domain: null },
    dkim: [],
    dmarc: { result: 'temperror', domain: null, policy: null, alignment: { spf: false, dkim: false } },
    arc: { result: 'temperror' },
    reason,
  };
}

async function verifyAll(raw: Readable, spfRun: Promise<unknown>, resolver: never, opts: AuthenticatorOptions): Promise<AuthVerdict> {
  const { arc, dkimVerify, dmarc } = await loadMailauth();
  const d = (await dkimVerify(raw, { resolver, minBitLength: opts.minBitLength } as never)) as unknown as {
    results?: MailauthDkimRow[];
    headerFrom?: string[];
    arc?: unknown;
  };
  const spfResult = (await spfRun) as { status?: { result?: string }; domain?: string } | undefined;
  const arcResult = d.arc
    ? ((await arc(d.arc as never, { resolver, minBitLength: opts.minBitLength } as never).catch(() => undefined)) as
        | { status?: { result?: string }; i?: number }
        | undefined)
    : undefined;
  const rows = (d.results ?? []).filter((r) => r.signingDomain);
  const dkim: DkimVerdict[] = rows.map((r) => ({
    domain: r.signingDomain ?? '',
    selector: r.selector ?? '',
    result: asResult(r.status?.result),
    aligned: !!r.status?.aligned,
    ...(r.status?.result !== 'pass' && r.status?.comment ? { reason: r.status.comment } : {}),
  }));
  const spfPass = spfResult?.status?.result === 'pass' && spfResult.domain;
  const dm = d.headerFrom?.length
    ? ((await dmarc({
        headerFrom: d.headerFrom,
        spfDomains: spfPass ? [spfResult.domain] : [],
        dkimDomains: rows
          .filter((r) => r.status?.result === 'pass')
          .map((r) => ({ domain: r.signingDomain, aligned: r.status?.aligned })),
        arcResult,
        resolver,
      } as never).catch(() => false)) as
        | false
        | { status?: { result?: string; header?: { from?: string } }; domain?: string; policy?: string; alignment?: { spf?: { result?: unknown }; dkim?: { result?: unknown } } })
    : false;
  const fromDomain = d.headerFrom?.[0]?.split('@').pop()?.toLowerCase() ?? null;
  return {
    source: 'smtp',
    authservId: opts.hostname,
    spf: spfResult ? { result: asResult(spfResult.status?.result), domain: spfResult.domain ?? null } : { result: 'none', domain: null },
    dkim,
    dmarc: dm
      ? {
          result: asResult(dm.status?.result),
          domain: fromDomain,
          policy: dm.policy ?? null,
          alignment: { spf: !!dm.alignment?.spf?.result, dkim: !!dm.alignment?.dkim?.result },
        }
      : { result: 'none', domain: fromDomain, policy: null, alignment: { spf: false, dkim: false } },
    arc: arcResult?.status?.result ? { result: asResult(arcResult.status.result), ...(arcResult.i ? { instance: arcResult.i } : {}) } : { result: 'none' },
  };
}
