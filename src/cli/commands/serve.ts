import { parseArgs } from 'node:util';
import { startPostroom } from '../../app.js';
import { ConfigError, loadConfig } from '../../config/load.js';
import type { Command } from '../command.js';

export const serve: Command = {
  name: 'serve',
  summary: 'run the mail room: SMTP listener, HTTP API, parser and delivery workers',
  usage: `usage: postroom serve [--config FILE]

Runs Postroom. Without --config (or $POSTROOM_CONFIG) it runs on embedded defaults:
SQLite and blobs under ./data, SMTP on 127.0.0.1:2525, HTTP on 127.0.0.1:8025.
Environment variables win over the file: POSTROOM_DATA_DIR, POSTROOM_SMTP_LISTEN,
POSTROOM_HTTP_LISTEN, POSTROOM_API_TOKEN, POSTROOM_DATABASE_URL, POSTROOM_SECRET_KEY, POSTROOM_CONFIG.
Every option of the file: docs/config.md.
SIGHUP (or 'postroom reload') reads the file again: routes, SMTP limits, allowlists and
TLS certificates apply to new sessions; see docs/reload.md.
Enabled folders of mail accounts are watched (IMAP IDLE or polling, POP3 polling): see
docs/mail-accounts.md and 'postroom fetch --help'.`,
  async run(argv) {
    const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } } });
    let config;
    try {
      config = loadConfig(values.config);
    } catch (e) {
      if (e instanceof ConfigError) {
        process.stderr.write(`${e.message}\n`);
        return 78; // EX_CONFIG
      }
      throw e;
    }
    // Signal handlers first, before the banner: a supervisor (or a test) that sends SIGTERM as
    // soon as it reads the banner must get a clean stop, not the default action of a signal
    // with no handler yet (death by signal, seen on a loaded machine). One during start-up ends
    // the process at once, as the default action did: nothing has been accepted yet.
    let onSignal = (sig: string): void => process.exit(sig === 'SIGINT' ? 130 : 143);
    process.once('SIGINT', () => onSignal('SIGINT'));
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    // SIGHUP: read the config file again (its default action would end the process). One during
    // start-up is remembered and done once the server runs.
    let onHup = (): void => void (hupWaiting = true);
    let hupWaiting = false;
    process.on('SIGHUP', () => onHup());
    const app = await startPostroom(config, { origin: { file: values.config ?? process.env.POSTROOM_CONFIG, env: process.env } });
    onHup = () => {
      app.log.info({ signal: 'SIGHUP' }, 'reloading the config');
      // The outcome is logged by reload() itself (applied, unchanged, or refused with key paths).
      app.reload().catch((err: unknown) => app.log.error({ err }, 'config reload failed: the running config is kept'));
    };
    if (hupWaiting) onHup();
    const { smtp, http } = app.addresses;
    const lines = [
      `Postroom is running (data in ${config.dataDir}, ${app.db.dialect} store)`,
      smtp ? `  SMTP  ${smtp.host}:${smtp.port}` : '  SMTP  disabled',
      http ? `  HTTP  http://${http.host}:${http.port}/api/v1/messages` : '  HTTP  disabled',
      ...(http ? [`  Console  http://${http.host}:${http.port}/`] : []),
      `  API token: ${app.apiToken}`,
      '',
    ];
    process.stderr.write(lines.join('\n'));
    return new Promise<number>((resolve) => {
      let stopping = false;
      const stop = (sig: string) => {
        if (stopping) return;
        stopping = true;
        app.log.info({ signal: sig }, 'stopping');
        // A failed stop is said, not thrown: an unhandled rejection would end the process
        // with a stack and no word of what was being stopped.
        app.stop().then(
          () => resolve(0),
          (err: unknown) => {
            app.log.error({ err }, 'stopping failed');
            resolve(70); // EX_SOFTWARE
          },
        );
      };
      onSignal = stop;
    });
  },
};
