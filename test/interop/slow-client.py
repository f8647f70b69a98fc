"""A raw-socket SMTP client for swaks-smtp-hostile.test.ts: what swaks and smtplib cannot do.

Usage: python3 slow-client.py PORT MODE [ARGS]
  trickle GAP_MS MAX_S    after DATA, one byte every GAP_MS until the server ends the session
                          (or MAX_S pass)
  steady RATE SECONDS     after DATA, RATE bytes/s for SECONDS, then end the message
  longline MAX_BYTES      after EHLO, one line without end, until the server closes (or
                          MAX_BYTES are written)

Prints one JSON object: the server's replies, bytes sent, seconds taken, how it ended.
"""
import json
import socket
import sys
import time

port, mode = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(('127.0.0.1', port), timeout=60)
buf = b''
out = {'replies': [], 'sent': 0}
start = time.monotonic()


def reply():
    global buf
    while True:
        i = buf.find(b'\r\n')
        while i >= 0:
            line = buf[:i].decode('latin1')
            buf = buf[i + 2:]
            out['replies'].append(line)
            if len(line) < 4 or line[3] != '-':
                return line
            i = buf.find(b'\r\n')
        d = s.recv(65536)
        if not d:
            raise EOFError('closed')
        buf += d


def cmd(line):
    s.sendall(line.encode() + b'\r\n')
    return reply()


def transaction():
    reply()
    cmd('EHLO slow.example.org')
    cmd('MAIL FROM:<a@example.org>')
    cmd('RCPT TO:<inbox@postroom.test>')
    assert cmd('DATA').startswith('354')


def pending_reply(wait):
    """A reply the server sent while we were writing, if any (non-blocking after `wait` s)."""
    s.settimeout(wait)
    try:
        return reply()
    except (socket.timeout, EOFError, ConnectionError):
        return None
    finally:
        s.settimeout(60)


try:
    if mode == 'trickle':
        gap, limit = int(sys.argv[3]) / 1000, float(sys.argv[4])
        transaction()
        s.sendall(b'Subject: slow\r\n\r\n')
        while time.monotonic() - start < limit:
            s.sendall(b'x')
            out['sent'] += 1
            r = pending_reply(gap)
            if r:
                break
        out['end'] = 'reply' if out['replies'][-1][:3] != '354' else 'gave up'
    elif mode == 'steady':
        rate, secs = int(sys.argv[3]), float(sys.argv[4])
        transaction()
        s.sendall(b'Subject: steady\r\n\r\n')
        chunk = max(1, rate // 10)
        try:
            while time.monotonic() - start < secs:
                s.sendall(b'y' * (chunk - 2) + b'\r\n')
                out['sent'] += chunk
                time.sleep(0.1)
            s.sendall(b'.\r\n')
        except ConnectionError as e:
            out['end'] = 'write failed: ' + type(e).__name__
        reply()
        out.setdefault('end', 'reply')
    elif mode == 'longline':
        limit = int(sys.argv[3])
        reply()
        cmd('EHLO long.example.org')
        s.settimeout(10)
        block = b'A' * 65536
        try:
            while out['sent'] < limit:
                s.sendall(block)
                out['sent'] += len(block)
            out['end'] = 'wrote all'
        except (ConnectionError, socket.timeout) as e:
            out['end'] = type(e).__name__
        s.settimeout(5)
        try:
            reply()
        except Exception:
            pass
except (EOFError, ConnectionError) as e:
    out['end'] = 'closed: ' + type(e).__name__
out['seconds'] = round(time.monotonic() - start, 2)
try:
    s.settimeout(5)
    out['closed'] = s.recv(1) == b''
except Exception as e:
    out['closed'] = True
print(json.dumps(out))
