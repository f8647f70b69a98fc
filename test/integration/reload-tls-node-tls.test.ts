import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { after, describe, it } from 'node:test';
import { requirePeer, tempDir } from '../helpers/env.js';
import { startFromFile, type FilePostroom } from '../helpers/config-file.js';

/** A self-signed certificate for `cn` written to KEY and CERT (openssl, as an operator makes one). */
function makeCert(dir: string, cn: string): { key: string; cert: string } {
  const key = path.join(dir, 'smtp.key');
  const cert = path.join(dir, 'smtp.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${cn}`], { stdio: 'ignore' });
  return { key, cert };
}

/** Node's tls as the client: EHLO, STARTTLS (RFC 3207), and the subject CN of the certificate the server shows. */
function starttlsCertificate(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let buf = '';
    let step = 0;
    socket.setEncoding('utf8');
    socket.on('error', reject);
    const onData = (d: string) => {
      buf += d;
      // One complete reply: its last line has a space after the code.
      if (!/(^|\r\n)\d{3} [^\r\n]*\r\n$/.test(buf)) return;
      const reply = buf;
      buf = '';
      if (step === 0) socket.write('EHLO client.test\r\n');
      else if (step === 1) {
        if (!/STARTTLS/.test(reply)) return reject(new Error(`no STARTTLS offered: ${reply}`));
        socket.write('STARTTLS\r\n');
      } else if (step === 2) {
        if (!reply.startsWith('220')) return reject(new Error(`STARTTLS refused: ${reply}`));
        socket.off('data', onData);
        const secure = tls.connect({ socket, rejectUnauthorized: false, servername: 'mx.postroom.test' }, () => {
          const cn = secure.getPeerCertificate().subject.CN;
          secure.end('QUIT\r\n');
          resolve(String(Array.isArray(cn) ? cn[0] : cn));
        });
        secure.on('error', reject);
      }
      step++;
    };
    socket.on('data', onData);
  });
}

describe('node tls: a certificate swapped by a reload is what a new STARTTLS session sees', () => {
  let f: FilePostroom | undefined;
  const certs = tempDir();
  after(async () => {
    await f?.close();
    certs.cleanup();
  });

  it('renewed files at the same paths: applied as smtp.tls, shown to the next session', async (t) => {
    if (!requirePeer(t, 'openssl')) return;
    const pair = makeCert(certs.dir, 'first.postroom.test');
    f = await startFromFile({ smtp: { tls: pair } });
    assert.equal(await starttlsCertificate(f.smtpPort), 'first.postroom.test');

    makeCert(certs.dir, 'second.postroom.test'); // the same paths, as a renewal writes them
    const r = await f.pr.reload();
    assert.equal(r.result, 'applied', JSON.stringify(r));
    assert.deepEqual(r.applied, ['smtp.tls']);
    assert.equal(await starttlsCertificate(f.smtpPort), 'second.postroom.test');

    // Nothing changed: nothing applied.
    assert.equal((await f.pr.reload()).result, 'unchanged');
    // STARTTLS on or off is decided when the listener is built: that waits for a restart.
    f.write({});
    const off = await f.pr.reload();
    assert.deepEqual(off.needsRestart, ['smtp.tls']);
    assert.equal(await starttlsCertificate(f.smtpPort), 'second.postroom.test');
  });

  it('a key that does not match its certificate refuses the reload, naming smtp.tls', async (t) => {
    if (!requirePeer(t, 'openssl') || !f) return;
    const other = tempDir();
    try {
      const stray = makeCert(other.dir, 'stray.postroom.test');
      f.write({ smtp: { tls: { key: stray.key, cert: path.join(certs.dir, 'smtp.crt') } } });
      const r = await f.pr.reload();
      assert.equal(r.result, 'invalid');
      assert.match(r.problems.join('\n'), /^smtp\.tls: cannot use the certificate and key/);
      assert.equal(await starttlsCertificate(f.smtpPort), 'second.postroom.test');
    } finally {
      other.cleanup();
    }
  });
});
