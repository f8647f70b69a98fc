import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { mailError } from '../core/errors.js';

/**
 * The INI file `postroom deliver` reads in URL mode (GroupServer's smtp2gs layout), so an MTA
 * host holds the token in a file only the pipe's user can read, never on a command line that
 * `ps` shows to everyone:
 *
 *   [config-default]
 *   webservice = main
 *
 *   [webservice-main]
 *   token = 0123…
 *
 * The [config-INSTANCE] section may be left out, as in smtp2gs's own first example (a file
 * with only `[webservice-default] token = …`): the instance then names its webservice itself.
 * Every problem with it is a configuration error (4.3.5, exit 75): the MTA keeps the mail
 * queued until someone fixes the file.
 */

export type IniSections = Map<string, Map<string, string>>;

/** Parse INI text: `[section]`, `key = value` (or `key: value`), `;`/`#` comment lines. */
export function parseIni(text: string, file = 'INI'): IniSections {
  const sections: IniSections = new Map();
  let current: Map<string, string> | undefined;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith(';') || line.startsWith('#')) return;
    const head = /^\[([^\]]+)\]$/.exec(line);
    if (head) {
      const name = head[1].trim().toLowerCase();
      current = sections.get(name) ?? new Map();
      sections.set(name, current);
      return;
    }
    const kv = /^([^=:]+?)\s*[=:]\s*(.*)$/.exec(line);
    if (!kv) throw mailError('CONFIG', `${file} line ${i + 1}: expected 'key = value' or '[section]'`);
    if (!current) throw mailError('CONFIG', `${file} line ${i + 1}: '${kv[1]}' is outside any [section]`);
    current.set(kv[1].toLowerCase(), kv[2]);
  });
  return sections;
}

/** What an instance's section selects. */
export interface DeliverInstance {
  webservice: string;
  token: string;
}

/** The token of instance `instance` in the INI file at `file` (4.3.5 when anything is missing). */
export function readDeliverIni(file: string, instance: string): DeliverInstance {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw mailError('CONFIG', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const ini = parseIni(text, file);
  const conf = ini.get(`config-${instance.toLowerCase()}`);
  const webservice = conf ? conf.get('webservice') : instance;
  if (!webservice) throw mailError('CONFIG', `${file}: [config-${instance}] has no 'webservice'`);
  const ws = ini.get(`webservice-${webservice.toLowerCase()}`);
  if (!ws) {
    const why = conf ? `named by [config-${instance}]` : `no [config-${instance}] section either`;
    throw mailError('CONFIG', `${file}: no [webservice-${webservice}] section (${why})`);
  }
  const token = ws.get('token');
  if (!token) throw mailError('CONFIG', `${file}: [webservice-${webservice}] has no 'token'`);
  return { webservice, token };
}

/**
 * The INI file when `-c` is not given: Postroom's own (./postroom-deliver.ini) when it exists,
 * else GroupServer's `$INSTANCE_HOME/etc/gsconfig.ini` when INSTANCE_HOME is set (smtp2gs's
 * default, so an MTA entry moved over unchanged finds its token), else Postroom's own, whose
 * absence is then the 4.3.5 the caller reports.
 */
export function defaultIniFile(env: NodeJS.ProcessEnv = process.env, exists: (f: string) => boolean = existsSync): string {
  const own = path.resolve('postroom-deliver.ini');
  if (exists(own) || !env.INSTANCE_HOME) return own;
  return path.join(env.INSTANCE_HOME, 'etc', 'gsconfig.ini');
}
