import { mailError } from '../core/errors.js';
import type { BlobStore } from '../store/ports.js';
import { compileTemplate } from '../routing/template.js';
import type { Db } from '../store/db.js';

/**
 * What the folder and workflow targets need from a running Postroom: the store holding the
 * objects, the blobs their documents point at, and the header list folders record. The
 * registry's entries are unbound (config validation only reads their params); a running
 * Postroom binds them with these deps (bindTargets in targets/index.ts).
 */
export interface ObjectTargetDeps {
  db: Db;
  blobs: BlobStore;
  /** Header fields recorded as {urn:postroom:mail-header} properties of collected documents. */
  headers: readonly string[];
}

/** Thrown by an unbound folder/workflow target: transient, so the mail waits for a fixed build. */
export function unbound(kind: string): Error {
  return mailError('CONFIG', `the ${kind} target is not bound to a store (build targets with bindTargets)`);
}

/** A target param that is a template over the route's captures (`<%objectId%>`), rendered; else as is. */
export function renderParam(value: string | number | undefined, captures: Record<string, string>, fallback: string[]): string | undefined {
  if (value === undefined) {
    for (const name of fallback) if (captures[name]) return captures[name];
    return undefined;
  }
  const s = String(value);
  return s.includes('<%') ? compileTemplate(s).render({ vars: captures }) : s;
}
