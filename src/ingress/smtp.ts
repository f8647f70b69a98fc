import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { SMTPServerAddress, SMTPServerAuthentication, SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import { asMailError, mailError, toSmtpReply } from '../core/errors.js';
import type { Envelope } from '../core/message.js';
import type { SmtpConfig } from '../config/schema.js';
import { smtpAuthOn } from '../config/reload.js';
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
import { applyDataScan } from './smtp-data-scan.js';
import { ReceivedTrace } from './smtp-trace.js';

/** The SMTP listener. */
export interface SmtpIngress {
  listen(): Promise<{ host: string; port: number }>;
  /** Accepting connections now (GET /readyz asks). */
  listening(): boolean;
  close(): Promise<void>;
  /**
   * New settings for sessions that start from now on; sessions in progress finish on the ones
   * they began with. The caller has checked what cannot change without a restart (the
   * listener, whether STARTTLS and AUTH are offered at all) and passes those unchanged.
   */
  update(next: SmtpSettings): void;
}

/** What a session runs on: the part of the config, the RCPT-time checks and the routes' clients. */
export interface SmtpSettings {
  config: SmtpConfig;
  recipientCheck: RecipientCheck;
  routeClients?: string[];
  /** The routing generation recipientCheck belongs to, carried on each envelope (core/message.ts). */
  routeGeneration?: number;
  /** The certificate and key, read from config.tls's files; absent: read here. */
  tls?: { key: Buffer; cert: Buffer };
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
  /** The routing generation recipientCheck belongs to (see SmtpSettings). */
  routeGeneration?: number;
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
  /** What the client sent since the last line logged (smtp.logReceivedData). */
  trace?: ReceivedTrace;
  /** The settings in force when the connection began: it keeps them to its end. */
  s: Session;
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

/** The message bytes on their way to intake, their first ones noted for the trace. */
async function* traced(bytes: AsyncIterable<Buffer>, trace: ReceivedTrace): AsyncGenerator<Buffer> {
  for await (const chunk of bytes) {
    trace.data(chunk);
    yield chunk;
  }
}

/** One set of settings, compiled: what a connection keeps from its start to its end. */
interface Session {
  config: SmtpConfig;
  recipientCheck: RecipientCheck;
  routeGeneration?: number;
  allow?: ReturnType<typeof clientList>;
  routeAllow?: ReturnType<typeof clientList>;
  spaceDotClients?: ReturnType<typeof clientList>;
  users: Map<string, string>;
}

function compile(s: SmtpSettings): Session {
  const { config } = s;
  return {
    config,
    recipientCheck: s.recipientCheck,
    routeGeneration: s.routeGeneration,
    allow: config.clients ? clientList(config.clients) : undefined,
    routeAllow: config.clients && s.routeClients?.length ? clientList(s.routeClients) : undefined,
    spaceDotClients: config.nonstandardDataTerminator?.length ? clientList(config.nonstandardDataTerminator) : undefined,
    users: new Map((config.auth?.users ?? []).map((u) => [u.username, u.password])),
  };
}

/** The SMTP ingress: smtp-server in front of intake.accept, with our limits and checks. */
export function createSmtpIngress(deps: SmtpIngressDeps): SmtpIngress {
  const { hostname, accept, log, metrics, freeSpace } = deps;
  const config = deps.config;
  let current = compile({ config, recipientCheck: deps.recipientCheck, routeClients: deps.routeClients, routeGeneration: deps.routeGeneration });
  const tls = config.tls ? { key: readFileSync(config.tls.key), cert: readFileSync(config.tls.cert) } : undefined;
  const insecureAuth = config.auth?.allowInsecure ?? false;
  const authOn = smtpAuthOn(config);
  if (current.users.size > 0 && !authOn) log.warn('smtp.auth.users configured but no smtp.tls: AUTH is off (set auth.allowInsecure to allow it in cleartext)');
  const conns = new Map<string, Conn>();
  // Nothing is gathered when no destination would write it.
  const traceOn = config.logReceivedData.enabled && log.isLevelEnabled('debug');

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
    logReceived(session, c, fields.id);
  }

  /**
   * The received data of the transaction just logged (or of a session's end), at debug level, so
   * each destination's level decides whether it gets it (e.g. the daily file only). `holdLast`:
   * the last command starts the next transaction (the MAIL that ends an abandoned one).
   */
  function logReceived(session: SMTPServerSession, c: Conn | undefined, id?: unknown, holdLast = false): void {
    if (!c?.trace || c.trace.empty(holdLast)) return;
    log.debug({ session: session.id, id, ...c.trace.take(holdLast) }, 'smtp received data');
  }

  /** A transaction left without DATA (RSET, a new MAIL, QUIT, a dropped connection). */
  function endAbandoned(session: SMTPServerSession, c: Conn | undefined, byMail = false): void {
    if (!c?.tx) return;
    const trace = c.trace;
    c.trace = undefined; // logged below, without the MAIL that ended the transaction
    logTx(session, c, { outcome: 'abandoned', status: c.tx.lastStatus });
    c.trace = trace;
    logReceived(session, c, undefined, byMail);
  }

  async function onConnect(session: SMTPServerSession): Promise<number> {
    const ip = normaliseIp(session.remoteAddress);
    const s = current;
    const { config } = s;
    const globally = s.allow ? await s.allow.matches(ip) : true;
    const routeOnly = !globally && !!s.routeAllow && (await s.routeAllow.matches(ip));
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
    const spaceDot = !!s.spaceDotClients && (await s.spaceDotClients.matches(ip));
    conns.set(session.id, { ip, listed, routeOnly, spaceDot, greetingDelay, s, trace: traceOn ? new ReceivedTrace(s.config.logReceivedData.maxBytes) : undefined });
    return greetingDelay;
  }

  async function onAuth(auth: SMTPServerAuthentication, session: SMTPServerSession): Promise<string> {
    const username = auth.username ?? '';
    // RFC 4616: acting as another identity (authzid) is not something we grant.
    const proxying = auth.method === 'PLAIN' && auth.authzid && auth.authzid !== username;
    const stored = (conns.get(session.id)?.s ?? current).users.get(username);
    const ok = await verifyPassword(auth.password ?? '', stored ?? DUMMY_HASH);
    if (!ok || !stored || proxying || (auth.method !== 'PLAIN' && auth.method !== 'LOGIN')) throw mailError('AUTH_FAILED');
    return username;
  }

  /** A user named by an address may send as that address only (unless auth.senderIsUser is false). */
  function senderNotOwned(config: SmtpConfig, user: string | undefined, mailFrom: string): boolean {
    if (!user || !user.includes('@') || config.auth?.senderIsUser === false) return false;
    return mailFrom.toLowerCase() !== user.toLowerCase();
  }

  async function onMailFrom(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    const c = conns.get(session.id);
    endAbandoned(session, c, true);
    if (!c) throw mailError('INTERNAL', 'no such connection');
    const unknown = unknownParameter('mail', address.args);
    const refusal = unknown
      ? mailError('UNKNOWN_PARAMETER', `MAIL FROM parameter ${unknown} not recognized or not implemented`)
      : !c.listed && !session.user
        ? mailError('AUTH_REQUIRED')
        : senderNotOwned(c.s.config, session.user, address.address)
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
    const { minFreeSpace } = c.s.config;
    if (free >= declared + minFreeSpace) return;
    const e = mailError('STORE_FULL', 'Insufficient system storage; try again later');
    log.error({ session: session.id, free, declared, minFreeSpace }, 'storage low: refusing MAIL with 452 4.3.1');
    logTx(session, c, { mailFrom: address.address, outcome: 'deferred', status: e.status, code: e.code });
    throw e;
  }

  async function onRcptTo(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    const c = conns.get(session.id);
    const accepted = session.envelope.rcptTo.map((r) => r.address);
    try {
      const unknown = unknownParameter('rcpt', address.args);
      if (unknown) throw mailError('UNKNOWN_PARAMETER', `RCPT TO parameter ${unknown} not recognized or not implemented`);
      const s = c?.s ?? current;
      if (accepted.length >= s.config.maxRecipients) throw mailError('TOO_MANY_RECIPIENTS');
      const verdict = await s.recipientCheck(address.address, {
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
    const s = c?.s ?? current;
    const { config } = s;
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
      routeGeneration: s.routeGeneration,
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
    const bytes = messageBytes(stream, guard);
    accept(env, c?.trace ? traced(bytes, c.trace) : bytes, opts).then(
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

  // The fast DATA reader, when the installed smtp-server is the one it was compared with.
  if (!applyDataScan()) log.info('smtp-server DATA reader is not the known version: using the library\'s own (correct, slower)');
  const hooks = {
    maxClients: config.maxClients,
    greeting: `${hostname} ${config.banner}`,
    authBeforeTls: insecureAuth,
    opened() {
      metrics.smtpSessions.inc();
      return () => metrics.smtpSessions.dec();
    },
    refused(_code: number, status: string) {
      metrics.rejections.inc({ ingress: 'smtp', status });
    },
    // Only where such clients are configured at start: the rewrite costs on every chunk of DATA
    // (a reload that names them first needs a restart, see reload.ts).
    spaceDotTerminator: config.nonstandardDataTerminator?.length ? (session: SMTPServerSession) => !!conns.get(session.id)?.spaceDot : undefined,
    received: traceOn ? (session: SMTPServerSession, line: string, inSasl: boolean) => conns.get(session.id)?.trace?.command(line, inSasl) : undefined,
    refuseEarlyTalker(session: SMTPServerSession) {
      const c = conns.get(session.id);
      return c ? c.greetingDelay > 0 : undefined;
    },
  };
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
      onAuth(auth, session, cb) {
        onAuth(auth, session).then(
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
        logReceived(session, c);
        conns.delete(session.id);
      },
    },
    hooks,
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
    listening: () => server.server.listening,
    close() {
      return new Promise((resolve) => server.close(() => resolve()));
    },
    update(next) {
      current = compile(next);
      const c = next.config;
      hooks.maxClients = c.maxClients;
      hooks.greeting = `${hostname} ${c.banner}`;
      // Read by smtp-server for each new connection (the EHLO SIZE, the idle timeout).
      const options = server.options as { size?: number; socketTimeout?: number };
      options.size = c.maxMessageSize;
      options.socketTimeout = c.socketTimeout;
      // A new certificate for TLS sessions from now on (RFC 3207 STARTTLS); a session already
      // encrypted keeps the one it negotiated.
      if (c.tls) {
        const pair = next.tls ?? { key: readFileSync(c.tls.key), cert: readFileSync(c.tls.cert) };
        server.updateSecureContext({ key: pair.key, cert: pair.cert });
      }
    },
  };
}
