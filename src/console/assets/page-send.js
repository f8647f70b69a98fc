import { html } from './html.js';
import { request } from './api.js';
import { errorBox, render } from './app.js';

/** RFC 5322 message from the compose form (CRLF lines; the subject RFC 2047-encoded if not ASCII). */
function compose(f) {
  const enc = (s) => (/^[\x20-\x7e]*$/.test(s) ? s : `=?UTF-8?B?${btoa(String.fromCharCode(...new TextEncoder().encode(s)))}?=`);
  const id = `<${crypto.randomUUID()}@postroom.console>`;
  const lines = [
    `From: ${f.from}`,
    `To: ${f.to.join(', ')}`,
    `Subject: ${enc(f.subject)}`,
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: ${id}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    ...f.body.split(/\r?\n/),
  ];
  return lines.join('\r\n');
}

/** Send a test message through POST /api/v1/inbound, the same intake door as every ingress. */
export async function sendPage(el) {
  render(
    el,
    html`<h1>Send a test message</h1><p class="hint">It goes through the same intake door as SMTP (recipients are checked as at RCPT time), then is parsed, routed and delivered like any other.</p>
    <form id="send" class="stack">
      <label>Envelope sender <input name="sender" placeholder="test@example.org" value="console@postroom.test"></label>
      <label>Recipients <input name="recipients" required placeholder="someone@your.domain"></label>
      <fieldset><legend>Message</legend>
        <label><input type="radio" name="mode" value="compose" checked> Compose</label>
        <label><input type="radio" name="mode" value="raw"> Paste raw source</label></fieldset>
      <div id="compose" class="stack"><label>Subject <input name="subject" value="Test from the Postroom console"></label>
        <label>Text <textarea name="body" rows="6">Hello from the console.</textarea></label></div>
      <div id="raw" class="stack" hidden><label>Raw message (headers, blank line, body) <textarea name="raw" rows="12"></textarea></label></div>
      <button type="submit">Send</button></form><div id="sent" role="status" aria-live="polite"></div>`,
  );
  const form = el.querySelector('#send');
  form.addEventListener('change', () => {
    const raw = new FormData(form).get('mode') === 'raw';
    el.querySelector('#raw').hidden = !raw;
    el.querySelector('#compose').hidden = raw;
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const recipients = String(f.get('recipients')).split(/[\s,]+/).filter(Boolean);
    const sender = String(f.get('sender') ?? '').trim();
    const body =
      f.get('mode') === 'raw'
        ? String(f.get('raw')).replace(/\r?\n/g, '\r\n')
        : compose({ from: sender || 'console@postroom.test', to: recipients, subject: String(f.get('subject')), body: String(f.get('body')) });
    const q = new URLSearchParams({ sender });
    for (const r of recipients) q.append('recipient', r);
    const out = el.querySelector('#sent');
    try {
      const res = await request(`/api/v1/inbound?${q}`, { method: 'POST', body, headers: { 'content-type': 'message/rfc822' } });
      const kept = await res.json();
      render(out, html`<p class="ok">Kept as <a href="#/messages/${kept.id}">${kept.id}</a>${kept.duplicate ? ' (a duplicate of one already kept)' : ''}.</p>`);
    } catch (err) {
      render(out, errorBox(err));
    }
  });
}
