import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { SMTPServerAddress, SMTPServerAuthentication, SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import { asMailError, mailError, toSmtpReply } from '../core/errors.js';
import type { Envelope } from '../core/message.js';
import type { SmtpConfig } from '../config/schema.js';
import type { Accept, AcceptOptions } from '../intake/accept.js';
import type { FreeSpace } from '../intake/free-space.js';
import type { RecipientCheck } from '../core/message.js';
import type { Logger } from '../telemetry/log.js';
import type { Metrics } from '../telemetry/metrics.js';
import { clientList, normaliseIp } from '../net/client-list.js';
import { unknownParameter } from './smtp-address.js';
import { verifyPassword } from '../core/passwords.js';
import { LineEndingGuard, messageBytes } from './smtp-data.js';
import { watchDataPace } from './smtp-slow.js';
import { PostroomSmtpServer } from './smtp-greeting.js';

/** The SMTP listener. */
export interface SmtpIngress {
  listen(): Promise<{ host: string; port: number }>;
  close(): Promise<void>;
}

export interface SmtpIngressDeps {
  config: SmtpConfig;
  /** Our name in the banner and the trace header. */
  hostname: string;
  accept: Accept;
  recipientCheck: RecipientCheck;
  log: Logger;
  metrics: Metrics;
  /**
   * Clients of the routes' `match.clients`: they may connect too (the fax gateway's rule), and
   * the routes that list them are the ones they may use.
   */
  routeClients?: string[];
  /** Free space where messages are kept, asked at MAIL; unset: not checked before DATA. */
  freeSpace?: FreeSpace;
  /** Routes that refuse failing sender authentication at the end of DATA; unset: none do. */
  authPolicy?: AcceptOptions['authPolicy'];
}

/** What we know of one connection beyond smtp-server's session. */
interface Conn {
  ip: string;
  /** Inside `smtp.clients` or a route's `match.clients` (or no list configured). */
  listed: boolean;
  /** Listed by routes' lists only: may use only routes that list clients. */
  routeOnly: boolean;
  /** In smtp.nonstandardDataTerminator: may end DATA with CRLF SP . CRLF. */
  spaceDot: boolean;
  /** Wait before our greeting, ms (greetingDelay for its kind of client). */
  greetingDelay: number;
  /** The open transaction (MAIL FROM accepted, no final reply yet). */
  tx?: { mailFrom: string; rcptTo: string[]; rejectedRcpts: number; lastStatus?: string; startedAt: number; requireMessageId?: boolean };
}

// Checked when the user name is unknown, so a failed login takes as long either way.
const DUMMY_HASH = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';

/** A MailError as the error smtp-server sends: our code and `x.y.z text` (see smtp-greeting.ts). */
function replyError(err: unknown): Error & { responseCode: number } {
  const r = toSmtpReply(err);
  return Object.assign(new Error(r.message), { responseCode: r.code });
}

/** The SMTP ingress: smtp-server in front of intake.accept, with our limits and checks. */
export function createSmtpIngress(deps: SmtpIngressDeps): SmtpIngress {
  const { config, hostname, accept, recipientCheck, log, metrics, freeSpace } = deps;
  const allow = config.clients ? clientList(config.clients) : undefined;
  const routeAllow = config.clients && deps.routeClients?.length ? clientList(deps.routeClients) : undefined;
  const spaceDotClients = config.nonstandardDataTerminator?.length ? clientList(config.nonstandardDataTerminator) : undefined;
  const users = new Map((config.auth?.users ?? []).map((u) => [u.username, u.password]));
  const tls = config.tls ? { key: readFileSync(config.tls.key), cert: readFileSync(config.tls.cert) } : undefined;
  const insecureAuth = config.auth?.allowInsecure ?? false;
  // smtp-server refuses cleartext AUTH only when STARTTLS is on offer: without a certificate it
  // would take passwords in the clear. So no TLS and no allowInsecure means no AUTH at all.
  const authOn = users.size > 0 && (!!tls || insecureAuth);
  if (users.size > 0 && !authOn) log.warn('smtp.auth.users configured but no smtp.tls: AUTH is off (set auth.allowInsecure to allow it in cleartext)');
  const conns = new Map<string, Conn>();

  /**
 * One log line per transaction, not one per command: an operator follows a message by its id
 * through one line, and a busy listener does not spend its loop on logging.
 */
  function logTx(session: SMTPServerSession, c: Conn | undefined, fields: Record<string, unknown>): void {
    log.info(
      {
        session: session.id,
        client: c?.ip ?? normaliseIp(session.remoteAddress),
        helo: session.hostNameAppearsAs || undefined,
        authUser: session.user,
        mailFrom: c?.tx?.mailFrom ?? (session.envelope?.mailFrom ? session.envelope.mailFrom.address : undefined),
        // The transaction's own list: by a later MAIL (after RSET) the session envelope is reset.
        rcptTo: c?.tx?.rcptTo ?? session.envelope?.rcptTo.map((r) => r.address),
        rejectedRcpts: c?.tx?.rejectedRcpts || undefined,
        ms: c?.tx ? Date.now() - c.tx.startedAt : undefined,
        ...fields,
      },
      'smtp transaction',
    );
    if (c) c.tx = undefined;
  }

  /** A transaction left without DATA (RSET, a new MAIL, QUIT, a dropped connection). */
  function endAbandoned(session: SMTPServerSession, c: Conn | undefined): void {
    if (c?.tx) logTx(session, c, { outcome: 'abandoned', status: c.tx.lastStatus });
  }

  async function onConnect(session: SMTPServerSession): Promise<number> {
    const ip = normaliseIp(session.remoteAddress);
    const globally = allow ? await allow.matches(ip) : true;
    const routeOnly = !globally && !!routeAllow && (await routeAllow.matches(ip));
    const listed = globally || routeOnly;
    if (!listed && !authOn) {
      log.info({ session: session.id, client: ip, outcome: 'refused', status: '5.7.1' }, 'smtp client refused');
      throw mailError('CLIENT_REFUSED');
    }
    let fromIp = 0;
    for (const c of conns.values()) if (c.ip === ip) fromIp++;
    if (fromIp >= config.maxClientsPerIp) {
      log.info({ session: session.id, client: ip, outcome: 'refused', status: '4.7.0', connections: fromIp }, 'smtp client over maxClientsPerIp');
      throw mailError('TOO_MANY_FROM_IP');
    }
    const greetingDelay = listed ? config.greetingDelay.allowlisted : config.greetingDelay.others;
    const spaceDot = !!spaceDotClients && (await spaceDotClients.matches(ip));
    conns.set(session.id, { ip, listed, routeOnly, spaceDot, greetingDelay });
    return greetingDelay;
  }

  async function onAuth(auth: SMTPServerAuthentication): Promise<string> {
    const username = auth.username ?? '';
    // RFC 4616: acting as another identity (authzid) is not something we grant.
    const proxying = auth.method === 'PLAIN' && auth.authzid && auth.authzid !== username;
    const stored = users.get(username);
    const ok = await verifyPassword(auth.password ?? '', stored ?? DUMMY_HASH);
    if (!ok || !stored || proxying || (auth.method !== 'PLAIN' && auth.method !== 'LOGIN')) throw mailError('AUTH_FAILED');
    return username;
  }

  /** A user named by an address may send as that address only (unless auth.senderIsUser is false). */
  function senderNotOwned(user: string | undefined, mailFrom: string): boolean {
    if (!user || !user.includes('@') || config.auth?.senderIsUser === false) return false;
    return mailFrom.toLowerCase() !== user.toLowerCase();
  }

  async function onMailFrom(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    const c = conns.get(session.id);
    endAbandoned(session, c);
    if (!c) throw mailError('INTERNAL', 'no such connection');
    const unknown = unknownParameter('mail', address.args);
    const refusal = unknown
      ? mailError('UNKNOWN_PARAMETER', `MAIL FROM parameter ${unknown} not recognized or not implemented`)
      : !c.listed && !session.user
        ? mailError('AUTH_REQUIRED')
        : senderNotOwned(session.user, address.address)
          ? mailError('SENDER_NOT_OWNED', `Sender <${address.address}> is not the address of user ${session.user}`)
          : undefined;
    if (refusal) {
      logTx(session, c, { mailFrom: address.address, outcome: 'rejected', status: refusal.status });
      throw refusal;
    }
    await checkFreeSpace(session, c, address);
    c.tx = { mailFrom: address.address, rcptTo: [], rejectedRcpts: 0, startedAt: Date.now() };
  }

  /**
   * A full disk refused at MAIL, before the client sends a byte of the message (Postfix's
   * smtpd does the same with queue_minfree): room for the declared SIZE (RFC 1870) plus
   * `minFreeSpace`, else 452 4.3.1 and the client tries later. The check after DATA stays: a
   * client may declare no SIZE, or a wrong one, and others write at the same time.
   */
  async function checkFreeSpace(session: SMTPServerSession, c: Conn, address: SMTPServerAddress): Promise<void> {
    const free = await freeSpace?.();
    if (free === undefined) return;
    const declared = Number((address.args || {}).SIZE) || 0;
    if (free >= declared + config.minFreeSpace) return;
    const e = mailError('STORE_FULL', 'Insufficient system storage; try again later');
    log.error({ session: session.id, free, declared, minFreeSpace: config.minFreeSpace }, 'storage low: refusing MAIL with 452 4.3.1');
    logTx(session, c, { mailFrom: address.address, outcome: 'deferred', status: e.status, code: e.code });
    throw e;
  }

  async function onRcptTo(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    const c = conns.get(session.id);
    const accepted = session.envelope.rcptTo.map((r) => r.address);
    try {
      const unknown = unknownParameter('rcpt', address.args);
      if (unknown) throw mailError('UNKNOWN_PARAMETER', `RCPT TO parameter ${unknown} not recognized or not implemented`);
      if (accepted.length >= config.maxRecipients) throw mailError('TOO_MANY_RECIPIENTS');
      const verdict = await recipientCheck(address.address, {
        ingress: 'smtp',
        mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
        accepted,
        clientIp: c?.ip,
        authUser: session.user,
        trusted: !!c?.listed || !!session.user,
        routeListedOnly: !!c?.routeOnly && !session.user,
      });
      if (c?.tx && !c.tx.rcptTo.includes(address.address)) c.tx.rcptTo.push(address.address);
      if (c?.tx && verdict?.requireMessageId) c.tx.requireMessageId = true;
    } catch (err) {
      if (c?.tx) {
        c.tx.rejectedRcpts++;
        c.tx.lastStatus = asMailError(err).status;
      }
      throw err;
    }
  }

  function onData(stream: SMTPServerDataStream, session: SMTPServerSession, done: (err?: Error | null, msg?: string) => void) {
    const c = conns.get(session.id);
    const env: Envelope = {
      mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
      rcptTo: session.envelope.rcptTo.map((r) => r.address),
      ingress: 'smtp',
      clientIp: c?.ip ?? normaliseIp(session.remoteAddress),
      // Without reverse lookups smtp-server reports "[ip]": that is no host name.
      clientHostname: session.clientHostname && !session.clientHostname.startsWith('[') ? session.clientHostname : undefined,
      helo: session.hostNameAppearsAs || undefined,
      authUser: session.user,
      tls: session.secure ? session.tlsOptions ? session.tlsOptions.version : 'TLS' : undefined,
      receivedAt: new Date(),
    };
    const guard = new LineEndingGuard(config.bareLineEndings);
    // A recipient's target (a folder) may need a Message-ID even when the listener does not.
    const requireMessageId = config.requireMessageId || !!c?.tx?.requireMessageId;
    const opts = {
      maxSize: config.maxMessageSize,
      requireMessageId,
      trace: config.traceHeader,
      // SPF judges the client that connected to us, by its HELO and MAIL FROM (RFC 7208 §2).
      authenticate: { ip: env.clientIp, helo: env.helo, mailFrom: env.mailFrom },
      authPolicy: deps.authPolicy,
    };
    const pace = { deadline: config.dataTimeout, minRate: config.minDataRate, grace: config.minDataRateGrace };
    let dropped = false;
    const stopWatch = watchDataPace(stream, pace, (err) => {
      dropped = true;
      logTx(session, c, { size: stream.byteLength, outcome: 'dropped', status: err.status, reason: err.message });
      server.endSession(session, err);
    });
    accept(env, messageBytes(stream, guard), opts).then(
      (stored) => {
        stopWatch();
        logTx(session, c, { id: stored.id, size: stored.size, outcome: stored.duplicate ? 'duplicate' : 'accepted', status: '2.0.0' });
        done(null, `2.0.0 Ok: kept as ${stored.id}`);
      },
      (err) => {
        // Whatever is left of the message is read and dropped; smtp-server replies at its end.
        // The pace watch goes on until that end: a trickle after a refusal is still a trickle.
        stream.resume();
        const e = asMailError(err);
        if (!dropped) logTx(session, c, { size: stream.byteLength, outcome: e.transient ? 'deferred' : 'rejected', status: e.status, code: e.code });
        done(replyError(e));
      },
    );
  }

  const server = new PostroomSmtpServer(
    {
      name: hostname,
      size: config.maxMessageSize,
      socketTimeout: config.socketTimeout,
      closeTimeout: 5_000,
      hideENHANCEDSTATUSCODES: false,
      authMethods: ['PLAIN', 'LOGIN'],
      // We decide who must authenticate (clients outside the allowlist), in onMailFrom.
      authOptional: true,
      allowInsecureAuth: insecureAuth,
      // No certificate configured: no STARTTLS (never the library's built-in test key).
      disabledCommands: [...(authOn ? [] : ['AUTH']), ...(tls ? [] : ['STARTTLS'])],
      ...(tls ?? {}),
      // Reverse DNS on every connection costs a round trip (1.5 s when DNS is unreachable).
      disableReverseLookup: true,
      logger: false,
      onConnect(session, cb) {
        onConnect(session).then(
          (delay) => (delay > 0 ? setTimeout(() => cb(), delay).unref() : cb()),
          (err) => cb(replyError(err)),
        );
      },
      onAuth(auth, _session, cb) {
        onAuth(auth).then(
          (user) => cb(null, { user }),
          (err) => cb(replyError(err)),
        );
      },
      onMailFrom(address, session, cb) {
        onMailFrom(address, session).then(() => cb(), (err) => cb(replyError(err)));
      },
      onRcptTo(address, session, cb) {
        onRcptTo(address, session).then(() => cb(), (err) => cb(replyError(err)));
      },
      onData,
      onClose(session) {
        const c = conns.get(session.id);
        endAbandoned(session, c);
        conns.delete(session.id);
      },
    },
    {
      maxClients: config.maxClients,
      greeting: `${hostname} ${config.banner}`,
      authBeforeTls: insecureAuth,
      opened() {
        metrics.smtpSessions.inc();
        return () => metrics.smtpSessions.dec();
      },
      refused(_code, status) {
        metrics.rejections.inc({ ingress: 'smtp', status });
      },
      spaceDotTerminator: spaceDotClients ? (session) => !!conns.get(session.id)?.spaceDot : undefined,
      refuseEarlyTalker(session) {
        const c = conns.get(session.id);
        return c ? c.greetingDelay > 0 : undefined;
      },
    },
  );
  server.on('error', (err) => log.warn({ err }, 'smtp connection error'));

  return {
    listen() {
      return new Promise((resolve, reject) => {
        server.server.once('error', reject);
        server.listen(config.listen.port, config.listen.host, () => {
          server.server.off('error', reject);
          const a = server.server.address() as AddressInfo;
          log.info({ host: a.address, port: a.port }, 'smtp listening');
          resolve({ host: a.address, port: a.port });
        });
      });
    },
    close() {
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
