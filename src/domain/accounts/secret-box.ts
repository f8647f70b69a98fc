import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { mailError } from '../../core/errors.js';
import { makeDirsSync } from '../../core/make-dirs.js';

/**
 * Passwords of mail accounts, encrypted at rest with AES-256-GCM (NIST SP 800-38D). A stolen
 * database (or backup) alone does not give away the mailboxes' passwords; the key lives in the
 * config, the environment (POSTROOM_SECRET_KEY) or DATA_DIR/secret-key, never beside the rows.
 */
export interface SecretBox {
  /** Encrypt `plain`, bound to `context` (the account id): a ciphertext moved to another row fails to open. */
  seal(plain: string, context: string): string;
  /** Decrypt what seal() made with the same context; throws when the key or context differ. */
  open(sealed: string, context: string): string;
}

const VERSION = 'v1';

/** A SecretBox from a secret of any length: HKDF-SHA256 (RFC 5869) stretches it to a 256-bit key. */
export function secretBox(secret: string): SecretBox {
  const key = Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.from('postroom'), Buffer.from('mail-account-password'), 32));
  return {
    seal(plain, context) {
      // A fresh 96-bit nonce per message: GCM must never reuse a nonce under one key.
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', key, iv);
      c.setAAD(Buffer.from(context, 'utf8'));
      const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
      return `${VERSION}:${Buffer.concat([iv, c.getAuthTag(), body]).toString('base64url')}`;
    },
    open(sealed, context) {
      const [v, data] = sealed.split(':');
      // CONFIG (4.3.5, transient): the mail that needs the password waits while an operator
      // restores the key or sets the password again; a bounce would lose it.
      if (v !== VERSION || !data) throw mailError('CONFIG', "the stored password is not a sealed secret: set the account's password again");
      const raw = Buffer.from(data, 'base64url');
      const d = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
      d.setAAD(Buffer.from(context, 'utf8'));
      d.setAuthTag(raw.subarray(12, 28));
      try {
        return Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString('utf8');
      } catch {
        throw mailError(
          'CONFIG',
          "cannot decrypt the stored password: the secret key differs from the one it was stored with (restore that key, or set the account's password again)",
        );
      }
    },
  };
}

/**
 * The secret: `secretKey` from the config (POSTROOM_SECRET_KEY wins), else DATA_DIR/secret-key,
 * generated once (mode 0600). Several nodes on one PostgreSQL store must share one secretKey.
 */
export function resolveSecret(configured: string | undefined, dataDir: string): string {
  if (configured) return configured;
  const file = path.join(dataDir, 'secret-key');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    makeDirsSync(dataDir);
    const secret = randomBytes(32).toString('base64url');
    try {
      writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
      return secret;
    } catch {
      // Another process created it first: use theirs.
      return readFileSync(file, 'utf8').trim();
    }
  }
}
