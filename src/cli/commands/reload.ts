import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../../config/load.js';
import type { Command } from '../command.js';

/** A wildcard listen address is reached on loopback of the same family. */
function hostOf(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

export const reloadCmd: Command = {
  name: 'reload',
  summary: 'make the running server read its config file again (routes, limits, allowlists, certificates)',
  usage: `usage: postroom reload [--config FILE] [--url URL] [--token TOKEN]

Asks the running 'postroom serve' to read its config file again, through its API
(POST /api/v1/system/reload, as an admin), and prints what it did. Sending the server
SIGHUP does the same without an answer (systemd: ExecReload=/bin/kill -HUP $MAINPID).

The file is validated whole, with the schema 'postroom check-config' uses; an invalid file
changes nothing. Routes, SMTP limits, client allowlists, SMTP AUTH users and TLS
certificates (read again even when their paths did not change) apply to sessions that
start after the reload; sessions in progress finish on the settings they began with.
Changes of listeners, dataDir, the store and the other sections are listed as needing a
restart and left as they run. docs/reload.md says which key is which.

  --config FILE  the server's config file (default $POSTROOM_CONFIG): where to find the
                 server (http.listen) and its token; the server reads its own file
  --url URL      the server's base URL (default: http(s)://http.listen)
  --token TOKEN  an admin API token (default $POSTROOM_API_TOKEN, http.apiToken, or
                 DATA_DIR/api-token)

Exit 0 when reloaded (or nothing changed), 78 (EX_CONFIG) when the file is invalid,
77 (EX_NOPERM) when the token is refused, 69 (EX_UNAVAILABLE) when no server answers.`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: { config: { type: 'string', short: 'c' }, url: { type: 'string' }, token: { type: 'string' } },
    });
    let config;
    try {
      config = loadConfig(values.config);
    } catch (e) {
      if (e instanceof ConfigError) {
        // The server would refuse the same file: say so here, with each key path.
        process.stderr.write(`${e.message}\nnot reloaded: the server keeps its running config\n`);
        return 78;
      }
      throw e;
    }
    let token = values.token ?? config.http.apiToken;
    if (!token) {
      try {
        token = readFileSync(path.join(config.dataDir, 'api-token'), 'utf8').trim();
      } catch {
        process.stderr.write(`no API token: give --token, set POSTROOM_API_TOKEN, or run where ${path.join(config.dataDir, 'api-token')} can be read\n`);
        return 64;
      }
    }
    const base = values.url ?? `${config.http.tls ? 'https' : 'http'}://${hostOf(config.http.listen.host)}:${config.http.listen.port}`;
    let res: Response;
    try {
      res = await fetch(new URL('/api/v1/system/reload', base), { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    } catch (e) {
      process.stderr.write(`no Postroom answers at ${base}: ${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message}\n`);
      return 69;
    }
    const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    if (res.status === 422) {
      process.stderr.write(`${String(body.detail ?? 'configuration invalid')}\n`);
      return 78;
    }
    if (res.status === 401 || res.status === 403) {
      process.stderr.write(`the server refused the token (${res.status}): ${String(body.detail ?? '')}\n`);
      return 77;
    }
    if (!res.ok) {
      process.stderr.write(`reload failed (${res.status}): ${String(body.detail ?? '')}\n`);
      return 69;
    }
    const applied = (body.applied as string[] | undefined) ?? [];
    const needsRestart = (body.needsRestart as string[] | undefined) ?? [];
    const lines = [
      `${body.result === 'applied' ? 'reloaded' : 'nothing to apply'}: config generation ${String(body.generation)} (${String(body.hash)})`,
      ...(applied.length ? [`  applied to new sessions: ${applied.join(', ')}`] : []),
      ...(needsRestart.length ? [`  needs a restart (not applied): ${needsRestart.join(', ')}`] : []),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  },
};
