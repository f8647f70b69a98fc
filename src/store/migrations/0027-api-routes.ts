import type { Kysely, Migration } from 'kysely';

/**
 * Routes managed through the API (`/api/v1/routes`), beside the config file's. Every node reads
 * them from here, so a route created on one node routes mail on all of them: `routes_state` is
 * one row whose counter each change raises, and each node polls that row (by its primary key)
 * to know when to read the routes again. `route_versions` keeps every version, who made it and
 * when, so a change can be looked up and undone by hand.
 */
export const m0027ApiRoutes: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('api_routes')
      .addColumn('name', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('version', 'integer', (c) => c.notNull())
      // The route as the client sent it (JSON, the config file's shape): validated again by each
      // node when it loads it, with that node's route schema.
      .addColumn('definition', 'text', (c) => c.notNull())
      .addColumn('updated_by', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('route_versions')
      .addColumn('name', 'varchar(64)', (c) => c.notNull())
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('op', 'varchar(16)', (c) => c.notNull())
      .addColumn('definition', 'text')
      .addColumn('actor', 'text', (c) => c.notNull())
      .addColumn('at', 'varchar(32)', (c) => c.notNull())
      // Two nodes changing one route at once: the second insert of a version fails instead of
      // both claiming it.
      .addPrimaryKeyConstraint('route_versions_pk', ['name', 'version'])
      .execute();
    await db.schema
      .createTable('routes_state')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('version', 'integer', (c) => c.notNull())
      .execute();
    await db.insertInto('routes_state').values({ id: 1, version: 0 }).execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.dropTable('routes_state').execute();
    await db.schema.dropTable('route_versions').execute();
    await db.schema.dropTable('api_routes').execute();
  },
};
