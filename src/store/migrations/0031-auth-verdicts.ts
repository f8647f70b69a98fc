import type { Kysely, Migration } from 'kysely';

/**
 * The sender authentication verdict of a message (core/auth.ts AuthVerdict as JSON): each DKIM
 * signature's domain, selector and result, SPF's domain and result, DMARC's policy, alignment
 * and result, the ARC chain's result, and whose verdict it is (ours at the end of DATA, or a
 * trusted upstream's Authentication-Results). Null when not verified (auth off, or rows kept
 * before this column). One JSON column rather than a table: it is written once with the row, in
 * intake's batched insert, and read whole with the message.
 */
export const m0031AuthVerdicts: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('messages').addColumn('auth', 'text').execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.alterTable('messages').dropColumn('auth').execute();
  },
};
