const SECRET_KEYS = /^(secret|token|pass|password|apikey|api_key)$/i;

/**
 * Target params with secrets replaced by '***', for the API and the CLI: whoever may read the
 * queue need not learn a webhook signing secret or a relay password.
 */
export function redact(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(redact);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, SECRET_KEYS.test(k) && x != null ? '***' : redact(x)]));
  }
  return v;
}
