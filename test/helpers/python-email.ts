import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { DEBIAN_PYTHON } from './env.js';

const run = promisify(execFile);

/** Debian's Python: its `email` package is the independent reference MIME parser. */
export const PYTHON = DEBIAN_PYTHON;

/** One attachment or inline part as Python's `email` package sees it. */
export interface PyPart {
  contentType: string;
  disposition: 'attachment' | 'inline';
  /** Content-Disposition as declared (lower case), null when absent. */
  declared: string | null;
  filename: string | null;
  contentId: string | null;
  sha256: string;
  size: number;
}

/**
 * Walks the message with the stdlib parser and lists, in document order, the parts a mail
 * reader treats as files: the same rule mailparser applies (RFC 2183: a part that is not
 * text/plain or text/html, or is marked attachment), descending into message/rfc822 only when
 * it is marked inline. An attached message's bytes are the sub-message regenerated with the
 * compat32 policy, which reproduces the input for well-formed mail.
 */
const SCRIPT = String.raw`
import sys, json, hashlib, io
from email import policy
from email.parser import BytesParser
from email.generator import BytesGenerator
raw = open(sys.argv[1], 'rb').read()
msg = BytesParser(policy=policy.default).parsebytes(raw)
TEXT = ('text/plain', 'text/html')
out = []
def cid_of(part):
    v = part.get('content-id')
    return str(v).strip().strip('<>').strip() if v else None
def emit(part, disp, data):
    out.append({'contentType': part.get_content_type(), 'disposition': disp,
                'declared': part.get_content_disposition(),
                'filename': part.get_filename(), 'contentId': cid_of(part),
                'sha256': hashlib.sha256(data).hexdigest(), 'size': len(data)})
def walk(part):
    ct = part.get_content_type()
    disp = part.get_content_disposition()
    if ct.startswith('multipart/'):
        for p in part.get_payload():
            walk(p)
        return
    cte = str(part.get('content-transfer-encoding', '7bit')).strip().lower()
    if ct == 'message/rfc822':
        if disp == 'inline' and cte in ('7bit', '8bit', 'binary'):
            walk(part.get_payload(0))
            return
        buf = io.BytesIO()
        BytesGenerator(buf, mangle_from_=False, policy=policy.compat32.clone(linesep='\r\n')).flatten(part.get_payload(0))
        emit(part, 'attachment' if disp != 'inline' else 'inline', buf.getvalue())
        return
    if disp and disp not in ('attachment', 'inline'):
        disp = 'attachment'
    if not disp and ct not in TEXT:
        disp = 'attachment'
    disp = disp or 'inline'
    if ct not in TEXT or disp != 'inline':
        emit(part, disp, part.get_payload(decode=True) or b'')
walk(msg)
print(json.dumps(out))
`;

/** The attachment-like parts of the .eml at `file`, per Python's `email` package. */
export async function pythonParts(file: string): Promise<PyPart[]> {
  // argv only: the file name never passes through a shell.
  const { stdout } = await run(PYTHON, ['-c', SCRIPT, file], { maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(stdout) as PyPart[];
}

/** A DSN as Python's `email` package reads it: the report's structure and its delivery-status blocks. */
const READ_DSN = String.raw`
import sys, json
from email import policy
from email.parser import BytesParser
m = BytesParser(policy=policy.default).parsebytes(sys.stdin.buffer.read())
parts = m.get_payload()
ds = next(p for p in parts if p.get_content_type() == 'message/delivery-status')
blocks = [{k.lower(): str(v) for k, v in b.items()} for b in ds.get_payload()]
print(json.dumps({'type': m.get_content_type(), 'reportType': m.get_param('report-type'),
  'parts': [p.get_content_type() for p in parts], 'to': str(m['to']),
  'autoSubmitted': str(m['auto-submitted']), 'perMessage': blocks[0], 'recipients': blocks[1:]}))
`;

export interface PyDsn {
  type: string;
  reportType: string;
  parts: string[];
  to: string;
  autoSubmitted: string;
  perMessage: Record<string, string>;
  recipients: Record<string, string>[];
}

/** Parse a DSN's bytes with Python's stdlib (bytes on stdin, never through a shell). */
export function pythonDsn(raw: Buffer): PyDsn {
  const r = spawnSync(PYTHON, ['-c', READ_DSN], { input: raw, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python could not read the DSN: ${r.stderr}`);
  return JSON.parse(r.stdout) as PyDsn;
}
