import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Readable } from 'node:stream';
import { mailError, MailError } from '../../core/errors.js';
import { guardedLookup, isPrivateAddress, privateAddressError } from '../../net/address-guard.js';
import { httpStatusError } from '../../net/remote-answer.js';
import type { HttpAction } from './definition.js';

/** What a POST produced: the status and the response body, cut at maxOutput. */
export interface HttpResult {
  status: number;
  /** The response's Content-Type, if it sent one. */
  contentType?: string;
  output: Buffer;
  truncated: boolean;
}

/** Metadata as request headers: `POSTROOM_MESSAGE_ID` → `x-postroom-message-id`, ASCII only. */
function metaHeaders(meta: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta)) {
    // A header value must be visible ASCII without CR/LF (RFC 9110 §5.5); anything else is escaped.
    out[`x-${k.toLowerCase().replace(/_/g, '-')}`] = v.replace(/[^\x20-\x7e]/g, (c) => encodeURIComponent(c));
  }
  return out;
}

/**
 * POST the input to the action's URL. 2xx resolves; the status decides the rest as for the
 * webhook target (408/425/429/5xx transient, other 4xx permanent, redirects not followed).
 * Private addresses are refused unless allowPrivate, checked at connect time (SSRF).
 */
export function runHttp(action: HttpAction, input: Readable, contentType: string, meta: Record<string, string>, signal: AbortSignal): Promise<HttpResult> {
  const url = new URL(action.url);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (net.isIP(host) && !action.allowPrivate && isPrivateAddress(host)) return Promise.reject(privateAddressError(host, host));
  const timeout = AbortSignal.timeout(action.timeout);
  const both = AbortSignal.any([signal, timeout]);
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? https : http).request(url, {
      method: 'POST',
      headers: {
        'user-agent': 'Postroom-Workflow/1',
        'content-type': contentType,
        ...metaHeaders(meta),
        ...(action.token ? { authorization: `Bearer ${action.token}` } : {}),
      },
      agent: false,
      lookup: guardedLookup(action.allowPrivate) as unknown as net.LookupFunction,
      signal: both,
    });
    const fail = (err: unknown) => {
      if (err instanceof MailError) return reject(err);
      const cause = (err as { cause?: unknown })?.cause;
      if (cause instanceof MailError) return reject(cause);
      if (timeout.aborted) return reject(mailError('TARGET_TIMEOUT', `no answer from ${url.host} within ${action.timeout} ms`));
      reject(mailError('TARGET_CONNECT', `${url.host}: ${(err as NodeJS.ErrnoException)?.code ?? (err as Error)?.message ?? err}`));
    };
    req.on('error', fail);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let truncated = false;
      res.on('data', (c: Buffer) => {
        if (size < action.maxOutput) chunks.push(c.subarray(0, action.maxOutput - size));
        if (size + c.length > action.maxOutput) truncated = true;
        size += c.length;
      });
      res.on('error', fail);
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        const output = Buffer.concat(chunks);
        if (status >= 200 && status < 300) return resolve({ status, output, truncated, contentType: res.headers['content-type'] });
        reject(httpStatusError(status, output.toString('utf8', 0, 300).replace(/\s+/g, ' ').trim()));
      });
    });
    input.on('error', (e) => req.destroy(e));
    input.pipe(req);
  });
}
