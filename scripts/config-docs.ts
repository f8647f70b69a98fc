// Writes the config reference from the config schema (npm run config-docs): docs/config.md for
// operators and docs/postroom.schema.json for editors. test/unit/config-reference.test.ts
// fails when either is stale.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { configJsonSchema, configReference } from '../src/config/reference.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const schema = configJsonSchema();
const files = {
  'docs/postroom.schema.json': `${JSON.stringify(schema, null, 2)}\n`,
  'docs/config.md': configReference(schema),
};
for (const [file, text] of Object.entries(files)) {
  writeFileSync(path.join(root, file), text);
  console.log(`wrote ${file}`);
}
