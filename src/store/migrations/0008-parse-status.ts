import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The parse outcome gets columns of its own. Until now an unparsable message had status `raw`
 * and its reason in `error`, and both were overwritten once its deliveries finished (status
 * `delivered`, or `failed` with the delivery's reason): `status=raw` then found nothing. Now
 * `status` is the message's way through routing and delivery only, and `parse_status`
 * (`pending` | `parsed` | `raw`) with `parse_error` says how parsing went, for good.
 *
 * `handoff` marks mail kept by a process that parses nothing itself (`postroom fetch` one-shots),
 * so a running server's parse poll takes it at once instead of after a grace period.
 *
 * Existing rows are derived from what they hold: a message is raw when its only part is the
 * kept raw bytes (kind `raw`, which the parser writes for nothing else); its reason survives in
 * `error` unless a failed delivery replaced it.
 */
export const m0008ParseStatus: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('messages').addColumn('parse_status', 'varchar(16)', (c) => c.notNull().defaultTo('pending')).execute();
    await db.schema.alterTable('messages').addColumn('parse_error', 'text').execute();
    await db.schema.alterTable('messages').addColumn('handoff', 'varchar(16)').execute();
    const rawPart = (eb: any) => eb.exists(eb.selectFrom('parts').select('parts.id').whereRef('parts.message', '=', 'messages.id').where('parts.kind', '=', 'raw'));
    await db
      .updateTable('messages')
      .set({ parse_status: 'raw', parse_error: sql`case when status = 'failed' then null else error end` })
      .where('parsed_at', 'is not', null)
      .where((eb: any) => eb.or([eb('status', '=', 'raw'), rawPart(eb)]))
      .execute();
    await db.updateTable('messages').set({ parse_status: 'parsed' }).where('parsed_at', 'is not', null).where('parse_status', '=', 'pending').execute();
    // `error` now says why routing or delivery went wrong; the parse reason lives in parse_error
    // (a failed message's error is its delivery's reason: it stays).
    await db.updateTable('messages').set({ error: null }).where('parse_status', '=', 'raw').where('status', '!=', 'failed').execute();
    await db.updateTable('messages').set({ status: 'received' }).where('status', '=', 'raw').execute();
    await db.schema.createIndex('messages_parse_status').on('messages').columns(['parse_status', 'id']).execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.dropIndex('messages_parse_status').execute();
    await db.updateTable('messages').set({ status: 'raw', error: sql`parse_error` }).where('parse_status', '=', 'raw').where('status', '=', 'received').execute();
    await db.schema.alterTable('messages').dropColumn('handoff').execute();
    await db.schema.alterTable('messages').dropColumn('parse_error').execute();
    await db.schema.alterTable('messages').dropColumn('parse_status').execute();
  },
};
