/**
 * Sender authentication verdicts (SPF RFC 7208, DKIM RFC 6376, DMARC RFC 7489, ARC RFC 8617),
 * as kept per message and matched by routes. The result words are RFC 8601's registry
 * (§2.7): a verdict carries them as written there, never our own synonyms.
 */

export const AUTH_RESULTS = ['pass', 'fail', 'softfail', 'neutral', 'none', 'policy', 'temperror', 'permerror'] as const;
export type AuthResult = (typeof AUTH_RESULTS)[number];

export interface DkimVerdict {
  /** The signing domain (d=); '' when the signature could not be read. */
  domain: string;
  /** The selector (s=). */
  selector: string;
  result: AuthResult;
  /** d= is aligned with the From: domain (RFC 7489 §3.1.1), as DMARC judged it. */
  aligned?: boolean;
  /** Why not pass, in the verifier's words. */
  reason?: string;
}

export interface AuthVerdict {
  /** 'smtp': we verified it at the end of DATA; 'upstream': read from a trusted host's Authentication-Results. */
  source: 'smtp' | 'upstream';
  /** The authserv-id the verdict is in the name of (RFC 8601 §2.5): our host name, or the trusted upstream's. */
  authservId: string;
  spf?: { result: AuthResult; domain: string | null };
  /** One entry per DKIM-Signature, in header order; empty when unsigned. */
  dkim: DkimVerdict[];
  dmarc?: {
    result: AuthResult;
    /** The From: domain the policy was looked up for. */
    domain: string | null;
    /** The published policy: none | quarantine | reject, null when none was found. */
    policy: string | null;
    /** Which identifier aligned with From: (RFC 7489 §3.1). */
    alignment: { spf: boolean; dkim: boolean };
  };
  arc?: { result: AuthResult; instance?: number };
  /** Why the verdict is incomplete (DNS over its time bound): every unfinished method is temperror. */
  reason?: string;
}

/** A message's verdict in one line, for Authentication-Results comments and logs. */
export function describeVerdict(v: AuthVerdict): string {
  const dkim = v.dkim.length ? v.dkim.map((d) => `${d.result}(${d.domain})`).join(',') : 'none';
  return `spf=${v.spf?.result ?? 'none'} dkim=${dkim} dmarc=${v.dmarc?.result ?? 'none'} arc=${v.arc?.result ?? 'none'}`;
}
