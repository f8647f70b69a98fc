import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { migrate, openDb } from '../../src/store/db.js';
import { testBackend } from '../helpers/env.js';
import { pgTestSchema } from '../helpers/test-db.js';

// Many stores may share one PostgreSQL database, each in its own schema (every test here does).
// Kysely's migrator lists every table of every schema; a schema dropped during that listing
// must not fail the start of a node whose own schema is fine.
test('migrate succeeds while other schemas of the database are created and dropped', { skip: testBackend() !== 'postgres' && 'runs on the postgres backend only' }, async () => {
  const admin = new pg.Client({ connectionString: process.env.POSTROOM_TEST_DATABASE_URL });
  await admin.connect();
  let churning = true;
  const churn = (async () => {
    for (let i = 0; churning; i++) {
      const name = `churn_${process.pid}_${i % 4}`;
      await admin.query(`CREATE SCHEMA IF NOT EXISTS ${name}`);
      await admin.query(`CREATE TABLE IF NOT EXISTS ${name}.t (id serial primary key, a text)`);
      await admin.query(`DROP SCHEMA ${name} CASCADE`);
      // About as often as the suite's own files create and drop theirs, and then some.
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  try {
    for (let round = 0; round < 15; round++) {
      const s = await pgTestSchema();
      const db = openDb(s.url, '/nonexistent');
      try {
        const applied = await migrate(db);
        assert.ok(applied.length > 0, 'a fresh schema gets every migration');
      } finally {
        await db.close();
        await s.drop();
      }
    }
  } finally {
    churning = false;
    await churn;
    await admin.end();
  }
});
