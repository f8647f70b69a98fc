import type net from 'node:net';
import type tls from 'node:tls';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import type { Writable } from 'node:stream';
import { acceptSpaceDotTerminator } from './smtp-data-terminator.js';
import { SMTPConnection, type SMTPConnectionOptions } from 'smtp-server/lib/smtp-connection.js';
import { mailError, toSmtpReply } from '../core/errors.js';
import { hideQuotedSpaces } from './smtp-address.js';

/** How a connection starts and what every reply passes through. */
export interface ConnectionHooks {
  /** Connections past this many get 421 4.7.0 instead of a greeting. */
  maxClients: number;
  /** Full text after `220 ` (host name and banner). */
  greeting: string;
  /** A connection opened; the returned function runs when its socket closes. */
  opened(): () => void;
  /**
   * Offer AUTH in EHLO before STARTTLS. When false, the AUTH line is left out of a cleartext
   * EHLO reply (Postfix's smtpd_tls_auth_only), so clients never think of sending a password
   * in the clear; one that tries anyway gets smtp-server's 538 5.7.0.
   */
  authBeforeTls: boolean;
  /** Every reply with code ≥ 400, with the enhanced status it carried. */
  refused(code: number, status: string): void;
  /**
   * Whether a client that sent bytes before our greeting is refused: true while a greeting
   * delay is configured for it, false when its delay is 0 (its early commands then wait for
   * the greeting), undefined while that is not known yet (decided when the greeting is due).
   */
  refuseEarlyTalker(session: SMTPServerSession): boolean | undefined;
  /**
   * Every command line the client sent, before it is handled; `inSasl` when it answers an AUTH
   * challenge (a credential, see smtp-trace.ts). Unset: nothing is watched.
   */
  received?(session: SMTPServerSession, line: string, inSasl: boolean): void;
  /** Whether this client may end DATA with CRLF SP . CRLF (smtp-data-terminator.ts); unset: nobody. */
  spaceDotTerminator?(session: SMTPServerSession): boolean;
}

// A reply text that already starts with an RFC 3463 code (we wrote it through toSmtpReply).
const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;

/**
 * smtp-server with our start of a connection. The library's SMTPConnection.init() waits a
 * fixed 100 ms before the greeting (to catch early talkers); on short connections that wait is
 * 90 % of the time per message. Here init() goes straight to connectionReady(); the configured
 * greeting delay is applied in onConnect instead (0 for allowlisted clients), and the library
 * still drops a client that talks before the greeting (`_ready` stays false until then).
 *
 * Every reply goes through one wrapper: a text that already carries an enhanced status code
 * (ours, from toSmtpReply) is sent as it is, instead of the library prefixing a second, guessed
 * one (it maps 550 to 5.1.1 whatever the reason); replies ≥ 400 are reported for metrics.
 * MAIL/RCPT addresses may have a quoted local part with spaces (see smtp-address.ts).
 */
export class PostroomSmtpServer extends SMTPServer {
  constructor(
    options: SMTPServerOptions,
    private readonly hooks: ConnectionHooks,
  ) {
    super(options);
  }

  // Same four steps as SMTPServer.connect(), with init() replaced on the new connection.
  override connect(socket: net.Socket | tls.TLSSocket, socketOptions?: SMTPConnectionOptions | null): void {
    const conn = new SMTPConnection(this, socket, socketOptions);
    this.connections.add(conn);
    conn.on('error', (err: Error) => this.emit('error', err));
    conn.on('connect', (data) => this._onClientConnect(data));
    this.patch(conn, socket);
    conn.init();
  }

  /**
   * End a session from outside the library (a limit of ours was passed): the reply, then the
   * connection is closed as after any 421.
   */
  endSession(session: SMTPServerSession, err: unknown): void {
    for (const conn of this.connections) {
      if (conn.session !== session) continue;
      const r = toSmtpReply(err);
      conn.send(r.code, r.message, false);
      if (r.code !== 421) conn.close(); // send() closes after a 421 itself
      return;
    }
  }

  private patch(conn: SMTPConnection, socket: net.Socket | tls.TLSSocket): void {
    const hooks = this.hooks;
    if (hooks.spaceDotTerminator) {
      // Each parser, the first and the one STARTTLS makes, is wrapped before it reads a byte.
      const own = conn as unknown as { _parser: Writable; _createParser(): Writable; session: SMTPServerSession };
      const wrap = (p: Writable) => acceptSpaceDotTerminator(p, () => !!hooks.spaceDotTerminator?.(own.session));
      wrap(own._parser);
      const create = own._createParser.bind(conn);
      own._createParser = () => wrap(create());
    }
    const send = conn.send.bind(conn);
    const close = conn.close.bind(conn);
    // After our last reply nothing the client sends can change anything: the library would go
    // on reading (and discarding) for up to 5 s, which a client sending an endless line or
    // message turns into hundreds of MB read for nothing. Stop reading and drop the socket once
    // the reply is flushed (Postfix's smtpd also just disconnects after a 421).
    conn.close = () => {
      close();
      const s = conn._socket;
      if (s.destroyed || conn._upgrading) return;
      s.pause();
      if (s.writableFinished) s.destroy();
      else s.once('finish', () => s.destroy());
    };
    conn.send = (code, data, context) => {
      if (code === 250 && Array.isArray(data) && !hooks.authBeforeTls && !conn.secure) {
        data = data.filter((line) => !/^AUTH /i.test(line));
      }
      const own = typeof data === 'string' && ENHANCED.test(data);
      send(code, data, own ? false : context);
      if (code >= 400) {
        const status = own ? (data as string).slice(0, (data as string).indexOf(' ')) : conn._getEnhancedStatusCode(code, context);
        hooks.refused(code, status || `${String(code)[0]}.0.0`);
      }
    };
    const parseAddress = conn._parseAddressCommand.bind(conn);
    conn._parseAddressCommand = (name, command) => {
      const { text, restore } = hideQuotedSpaces(command.toString());
      const parsed = parseAddress(name, text);
      if (parsed && parsed.address) parsed.address = restore(parsed.address);
      return parsed;
    };
    // Pre-greeting traffic (postscreen's "pregreet test"): a client that talks before our 220
    // does not wait for the server as RFC 5321 §3.1 requires; spam bots do this to save time.
    // The library answered it 421 ("try again later"); a protocol error is 5xx, 554 5.5.1,
    // and the connection is closed. Where no delay is configured the client's early commands
    // simply wait for the greeting.
    let earlyTalker = false;
    const refuseEarly = () => {
      const r = toSmtpReply(mailError('EARLY_TALKER'));
      conn.send(r.code, r.message, false);
      conn.close();
    };
    const onEarlyBytes = () => {
      if (conn._ready || conn._closing) return socket.off('data', onEarlyBytes);
      const verdict = hooks.refuseEarlyTalker(conn.session);
      if (verdict === true) refuseEarly();
      else if (verdict === undefined) earlyTalker = true;
      socket.off('data', onEarlyBytes);
    };
    let waiting: [Buffer, (() => void) | undefined] | undefined;
    const onCommand = conn._onCommand.bind(conn);
    conn._onCommand = (command, callback) => {
      hooks.received?.(conn.session, command.toString('utf8'), !!conn._nextHandler);
      if (conn._ready || conn._upgrading) return onCommand(command, callback);
      waiting = [command, callback]; // the parser sends nothing more until the callback runs
    };
    // RFC 5321 §4.2: "220 <domain> <text>"; the banner text is ours entirely.
    conn._sendGreeting = () => {
      if (earlyTalker && hooks.refuseEarlyTalker(conn.session) !== false) return refuseEarly();
      conn.send(220, hooks.greeting, false);
      if (waiting) onCommand(...waiting);
      waiting = undefined;
    };
    conn.init = () => {
      const closed = hooks.opened();
      socket.once('close', closed);
      socket.on('data', onEarlyBytes);
      conn._setListeners(() => {
        if (this.connections.size > hooks.maxClients) {
          const r = toSmtpReply(mailError('TOO_MANY_CLIENTS'));
          return conn.send(r.code, r.message, false); // a 421 closes the connection
        }
        conn.connectionReady();
      });
    };
  }
}
