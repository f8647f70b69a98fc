"""SMTP client for smtp-source-crash.test.ts: sends numbered messages and says which got a 250.

Usage: python3 smtp-source-crash.client.py HOST PORT RUN_TAG

smtp-source does not report per-message outcomes, so this independent client (Python's
smtplib) records them: for message N it prints `TRY N SHA256` before sending (the sha256 of the
exact bytes the server must keep), `OK N` once the server answered 250 to the end of DATA, and
`ERR N reason` when it did not. Like an MTA it retries a message that failed, after
reconnecting, so a message the server kept without managing to answer is sent again (and must be
recognised as a duplicate). SIGTERM: finish the message in flight, then exit.
"""
import base64
import hashlib
import signal
import smtplib
import sys
import time

host, port, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
stopping = False


def stop(*_):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, stop)

# Sizes cycle so that a kill lands both between transactions and in the middle of a long DATA.
SIZES = [1024, 64 * 1024, 512 * 1024, 4096]


def message(n: int) -> bytes:
    """Message N, CRLF line endings, no line starting with '.', so the stored bytes equal these."""
    head = (
        f"From: crash-client@client.test\r\n"
        f"To: rcpt@postroom.test\r\n"
        f"Subject: crash test {tag} {n}\r\n"
        f"Message-ID: <crash-{tag}-{n}@client.test>\r\n"
        f"\r\n"
    ).encode()
    seed = hashlib.sha256(f"{tag}-{n}".encode()).digest()
    line = base64.b64encode(seed * 2)[:76] + b"\r\n"  # base64 has no '.'
    body = line * (SIZES[n % len(SIZES)] // len(line) + 1)
    return head + body


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


conn = None
n = 0
while not stopping:
    raw = message(n)
    say(f"TRY {n} {hashlib.sha256(raw).hexdigest()}")
    try:
        if conn is None:
            conn = smtplib.SMTP(host, port, timeout=10)
            conn.ehlo("client.test")
        refused = conn.sendmail("crash-client@client.test", ["rcpt@postroom.test"], raw)
        if refused:
            raise smtplib.SMTPException(f"refused {refused}")
        say(f"OK {n}")
        n += 1
    except (OSError, smtplib.SMTPException) as e:
        say(f"ERR {n} {type(e).__name__}: {str(e)[:120]!r}")
        try:
            if conn is not None:
                conn.close()
        except Exception:
            pass
        conn = None
        time.sleep(0.05)
try:
    if conn is not None:
        conn.quit()
except Exception:
    pass
