import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { idFloor } from '../../src/core/ids.js';
import { insertMessages, newMessageRow } from '../../src/store/messages.js';
import { waitFor } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';

/**
 * Mail that another process kept (postroom deliver, a postroom fetch one-shot, a node that died
 * before parsing) reaches no running parser through intake: the parse poll finds it.
 */
describe('parse poll: mail kept by other processes', () => {
  let app: TestPostroom;
  before(async () => {
    app = await startTestPostroom({ parse: { pollInterval: '100ms' }, smtp: { enabled: false } });
  });
  after(() => app.close());

  /** Keep a message as another process would: bytes and row, without this node's intake event. */
  async function keepElsewhere(ingress: string, idTimeMs: number, tag: string): Promise<string> {
    const raw = Buffer.from(`Message-ID: <${tag}@x>\r\nSubject: ${tag}\r\n\r\nbody\r\n`);
    const staged = await app.blobs.stage([raw]);
    const id = `${idFloor(idTimeMs)}${tag.padEnd(16, '0').slice(0, 16).toLowerCase().replace(/[^0-9a-hjkmnp-tv-z]/g, '0')}`;
    const env = { mailFrom: 'a@x', rcptTo: ['b@y'], ingress, receivedAt: new Date(idTimeMs) };
    const row = newMessageRow(id, env, staged, { messageId: `<${tag}@x>`, subject: tag, from: null, date: null }, null);
    await app.db.kysely.transaction().execute(async (trx) => {
      await app.blobs.commit([staged], trx);
      await insertMessages(trx, [row]);
    });
    return id;
  }
  const parsedAt = async (id: string) =>
    (await app.db.kysely.selectFrom('messages').select('parsed_at').where('id', '=', id).executeTakeFirstOrThrow()).parsed_at;

  test('parses a pipe-kept message at once', async () => {
    const id = await keepElsewhere('pipe', Date.now(), 'pipe1');
    await waitFor(() => parsedAt(id), 'the pipe message to be parsed', 5_000);
  });

  test('parses a message a one-shot fetch kept a while ago (ingress imap)', async () => {
    const id = await keepElsewhere('imap', Date.now() - 2 * 60_000, 'imap1');
    await waitFor(() => parsedAt(id), 'the fetched message to be parsed', 5_000);
  });

  test('leaves a fresh SMTP message to the node that took it', async () => {
    const id = await keepElsewhere('smtp', Date.now(), 'smtp1');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await parsedAt(id), null);
  });
});
