import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { DeliveryContext, ParsedMessage } from '../../src/core/delivery.js';
import { ConfigError, validateConfig } from '../../src/config/load.js';
import { createSpoolTarget, spoolParams, type SpoolParams } from '../../src/targets/spool.js';
import { takeCommands } from '../../src/targets/spool-control.js';
import { tempDir } from '../helpers/env.js';
import { fakeParsed } from '../helpers/parsed.js';

/** The spool target as the fax/SMS gateway's operators use it: its variables, txt template, ctl_type and @ commands. */
const spool = createSpoolTarget({ now: () => new Date(2026, 0, 2, 3, 4, 5) });

function ini(text: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = { '': {} };
  let section = '';
  for (const line of text.split(/\r?\n/)) {
    const s = /^\[(.+)\]$/.exec(line);
    if (s) out[(section = s[1])] = {};
    else if (line.includes('=')) out[section][line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1);
  }
  return out;
}

describe('spool for the fax/SMS gateway', () => {
  let tmp: ReturnType<typeof tempDir>;
  let n = 0;
  before(() => (tmp = tempDir()));
  after(() => tmp.cleanup());

  async function run(p: Record<string, unknown>, msg: ParsedMessage, captures: Record<string, string> = {}) {
    const params = spoolParams.parse({ dir: path.join(tmp.dir, String(n++)), ...p });
    const ctx: DeliveryContext = {
      deliveryId: `d${n}`,
      attempt: 1,
      route: 'fax',
      recipients: msg.message.rcptTo,
      captures,
      recipientCaptures: Object.fromEntries(msg.message.rcptTo.map((r) => [r, captures])),
      signal: new AbortController().signal,
    };
    await spool.deliver(msg, params, ctx);
    const files = readdirSync(params.dir).sort();
    const read = (ext: string) => readFileSync(path.join(params.dir, files.find((f) => f.endsWith(ext))!), 'utf8');
    return { files, read, params };
  }

  const message = (text: string) =>
    fakeParsed({ mailFrom: 'orders@shop.example', rcptTo: ['+420123@fax'], subject: 'Order', text, from: [{ name: 'Clerk', address: 'clerk@shop.example' }] });

  it('reads address as the envelope sender (MAIL FROM) and recipient as the recipient', async () => {
    const { read } = await run({ format: 'txt', control: { x: { address: '<%address%>', recipient: '<%recipient%>' } } }, message('hi'));
    assert.deepEqual(ini(read('.ctl')).x, { address: 'orders@shop.example', recipient: '+420123@fax' });
  });

  it("builds the .txt from a template, as the gateway's txt transform with <%msg%>", async () => {
    const txt = 'Fax from <%messageFromName%> <<%address%>>, <%now:%x %X%>\n\n<%msg%>';
    const { read } = await run({ format: 'txt', txt }, message('Please fax this.\n'));
    assert.equal(read('.txt'), 'Fax from Clerk <orders@shop.example>, 01/02/26 03:04:05\n\nPlease fax this.\n');
  });

  it('ctl_type: fax lays out [system] [to] [from] [files], filling what the route does not set', async () => {
    const { read, files } = await run(
      { format: 'txt', control: { ctl_type: 'fax', to: { number: '<%number%>' }, system: { user_app_id: '7' } } },
      message('hi'),
      { number: '+420123' },
    );
    const ctl = ini(read('.ctl'));
    assert.equal(ctl[''].ctl_type, 'fax');
    assert.deepEqual(ctl.system, { priority: 'normal', user_app_id: '7' });
    assert.deepEqual(ctl.to, { number: '+420123' });
    assert.deepEqual(ctl.from, { email: 'clerk@shop.example' });
    assert.deepEqual(ctl.files, { message: files.find((f) => f.endsWith('.txt')), attachments: '' });
    assert.equal(ctl.sms, undefined);
  });

  it('ctl_type: sms carries the text in [sms] and has no [files]', async () => {
    const { read } = await run({ format: 'txt', control: { ctl_type: 'sms', to: { number: '<%number%>' } } }, message('Call me\nback'), { number: '+420777' });
    const ctl = ini(read('.ctl'));
    assert.equal(ctl[''].ctl_type, 'sms');
    assert.deepEqual(ctl.sms, { text: 'Call me back' }, 'a line break in a value never starts a forged line');
    assert.equal(ctl.files, undefined);
  });

  it('refuses at config load a ctl_type it does not know, a section outside the layout, and a control without a number', () => {
    const problems = (control: unknown) => {
      try {
        validateConfig({ routes: [{ name: 'r', match: { recipient: '/(?P<number>\\d+)@fax/' }, deliver: [{ spool: { dir: './s', control } }] }] });
        return [];
      } catch (e) {
        assert.ok(e instanceof ConfigError);
        return e.problems;
      }
    };
    assert.match(problems({ ctl_type: 'telex', to: { number: '1' } })[0], /routes\[0\]\.deliver\[0\]\.spool\.control: ctl_type must be one of fax, sms/);
    assert.match(problems({ ctl_type: 'fax', to: { number: '1' }, sms: { text: 'x' } })[0], /section \[sms\] is not part of a fax control file/);
    assert.match(problems({ ctl_type: 'sms' })[0], /needs to: \{ number/);
    assert.deepEqual(problems({ ctl_type: 'sms', to: { number: '<%number%>' } }), []);
  });

  it('takes @ commands out of the text and into the variables, over the captures', async () => {
    const body = 'Hello\n@number: +420999\n@PRIORITY=high\n@home is where the fax is\n@unknown: stays\nBye\n';
    const { read } = await run(
      { format: 'txt', commands: { names: ['number', 'priority'] }, control: { ctl_type: 'fax', to: { number: '<%number%>' }, system: { priority: '<%priority|pri%>' } } },
      message(body),
      { number: '+420123' },
    );
    assert.equal(read('.txt'), 'Hello\n@home is where the fax is\n@unknown: stays\nBye\n');
    const ctl = ini(read('.ctl'));
    assert.equal(ctl.to.number, '+420999');
    assert.equal(ctl.system.priority, 'high');
  });

  it('knows command names as template variables at config load', () => {
    assert.doesNotThrow(() =>
      validateConfig({ routes: [{ name: 'r', deliver: [{ spool: { dir: './s', commands: { names: ['number'] }, control: { ctl_type: 'sms', to: { number: '<%number%>' } } } }] }] }),
    );
    assert.throws(
      () => validateConfig({ routes: [{ name: 'r', deliver: [{ spool: { dir: './s', control: { ctl_type: 'sms', to: { number: '<%number%>' } } } }] }] }),
      /unknown variable 'number'/,
    );
  });

  it('reads only whole command lines with a separator, with another tag when configured', () => {
    assert.deepEqual(takeCommands('#fax: 1\n@fax: 2\n', '#', ['fax']), { text: '@fax: 2\n', values: { fax: '1' } });
    assert.deepEqual(takeCommands('see @fax soon\r\n  @fax = 3\r\n', '@', ['fax']), { text: 'see @fax soon\r\n', values: { fax: '3' } });
  });
});
