"""Reads each message named on the command line with Python's email package (policy.default),
the reference parser for `npm run mime-compare`, and prints one JSON object per line: the parts
a mail reader treats as files (same rule as test/helpers/python-email.ts: RFC 2183, not
text/plain, text/html or message/delivery-status, or marked attachment; message/rfc822
descended into only when inline), the inline text/plain, subject, From addresses, date, defects."""
import sys, json, hashlib, io, re
from datetime import timezone
from email import policy
from email.parser import BytesParser
from email.generator import BytesGenerator

# message/delivery-status is a part of its own in Postroom (its fields readable), not text.
TEXT = ('text/plain', 'text/html')

def read(path):
    raw = open(path, 'rb').read()
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    atts, texts, defects = [], [], []

    def emit(part, data):
        # A regenerated message (below) is not byte for byte what was sent: `norm` compares it
        # with white space collapsed.
        norm = hashlib.sha256(re.sub(rb'[ \t\n\r\f\v]+', b' ', data).strip()).hexdigest()
        atts.append({'contentType': part.get_content_type(), 'sha256': hashlib.sha256(data).hexdigest(), 'size': len(data), 'norm': norm})

    def walk(part, depth=0):
        defects.extend(type(d).__name__ for d in part.defects)
        ct = part.get_content_type()
        disp = part.get_content_disposition()
        payload = part.get_payload()
        if ct.startswith('multipart/'):
            if isinstance(payload, list):
                for p in payload:
                    walk(p, depth + 1)
            else:
                texts.append(part.get_payload(decode=True).decode('utf-8', 'replace'))
            return
        cte = str(part.get('content-transfer-encoding', '7bit')).strip().lower()
        if ct == 'message/delivery-status' and isinstance(payload, list):
            emit(part, b'\n\n'.join(b.as_bytes(policy=policy.compat32) for b in payload))
            return
        if ct.startswith('message/') and isinstance(payload, list):
            if ct == 'message/rfc822' and disp == 'inline' and cte in ('7bit', '8bit', 'binary'):
                walk(payload[0], depth + 1)
                return
            buf = io.BytesIO()
            BytesGenerator(buf, mangle_from_=False, policy=policy.compat32.clone(linesep='\r\n')).flatten(payload[0])
            emit(part, buf.getvalue())
            return
        if disp and disp not in ('attachment', 'inline'):
            disp = 'attachment'
        if not disp and ct not in TEXT:
            disp = 'attachment'
        disp = disp or 'inline'
        if ct not in TEXT or disp != 'inline':
            emit(part, part.get_payload(decode=True) or b'')
        elif ct == 'text/plain':
            try:
                texts.append(part.get_content())
            except Exception:
                texts.append((part.get_payload(decode=True) or b'').decode('utf-8', 'replace'))

    walk(msg)
    out = {'file': path, 'attachments': atts, 'text': '\n'.join(texts) if texts else None, 'defects': defects}
    try:
        out['subject'] = str(msg['subject']) if msg['subject'] is not None else None
    except Exception:
        out['subject'] = None
    try:
        out['from'] = [a.addr_spec.lower() for a in msg['from'].addresses] if msg['from'] is not None else []
    except Exception:
        out['from'] = None
    try:
        d = msg['date'].datetime if msg['date'] is not None else None
        if d is not None and d.tzinfo is None:
            d = d.replace(tzinfo=timezone.utc)
        out['date'] = d.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.000Z') if d else None
    except Exception:
        out['date'] = None
    return out

for path in sys.argv[1:]:
    try:
        print(json.dumps(read(path)))
    except Exception as e:
        print(json.dumps({'file': path, 'error': f'{type(e).__name__}: {e}'}))
    sys.stdout.flush()
