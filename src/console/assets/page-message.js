import { html, safeUrl } from './html.js';
import { can, download, getJson, postJson, request, session } from './api.js';
import { errorBox, loading, render } from './app.js';
import { bytes, sender, status, when } from './format.js';

const TABS = [
  ['overview', 'Overview'],
  ['html', 'HTML'],
  ['text', 'Text'],
  ['headers', 'Headers'],
  ['raw', 'Raw'],
  ['parts', 'Parts'],
];

// What the HTML frame may do when the console fills it itself (signed in with the token, where
// the frame cannot send credentials): the same as the /html route's own policy.
const FRAME_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'";
const FRAME_CSP_REMOTE = "default-src 'none'; img-src data: https: http:; style-src 'unsafe-inline'; font-src https: http:";

/** Pairs as a definition list; a null value shows as a dash. */
function dl(pairs) {
  return html`<dl class="pairs">${pairs.map(([k, v]) => html`<dt>${k}</dt><dd>${v ?? html`<span class="muted">–</span>`}</dd>`)}</dl>`;
}

function attemptRow(a) {
  const ms = a.finishedAt ? new Date(a.finishedAt) - new Date(a.startedAt) : null;
  return html`<li class="attempt attempt-${a.outcome ?? 'running'}">attempt ${a.n}: ${when(a.startedAt)}
    ${ms !== null ? html`<span class="muted">(${ms} ms)</span>` : ''} → <strong>${a.outcome ?? 'interrupted'}</strong>
    ${a.enhancedStatus ? html` <code>${a.enhancedStatus}</code>` : ''}
    ${a.error ? html`<pre class="reply">${a.error.slice(0, 500)}</pre>` : ''}
    ${a.nextAttemptAt ? html`<span>next try ${when(a.nextAttemptAt)}</span>` : ''}</li>`;
}

function deliveryBlock(d) {
  const target = d.destination ? `${d.kind} → ${d.destination}` : d.kind;
  return html`<li class="delivery" data-delivery="${d.id}"><h4>Delivery: route <code>${d.route}</code>, ${target} ${status(d.status)}</h4>
    <p class="muted">recipients ${d.recipients.join(', ')}${Object.keys(d.captures ?? {}).length ? html`; captures <code>${JSON.stringify(d.captures)}</code>` : ''}</p>
    ${d.history.length ? html`<ol class="attempts">${d.history.map(attemptRow)}</ol>` : html`<p class="muted">No attempt yet${d.nextAttemptAt ? html`; due ${when(d.nextAttemptAt)}` : ''}.</p>`}
    ${d.recipientOutcomes?.length ? html`<ul>${d.recipientOutcomes.map((o) => html`<li>${o.recipient}: ${o.status} ${o.reply ?? ''}</li>`)}</ul>` : ''}
    ${d.status === 'dead' && d.lastError ? html`<p class="error">Dead: ${d.lastError}</p>` : ''}
    ${d.status === 'done' && d.receipt?.summary ? html`<p class="ok">Target's answer: <code>${String(d.receipt.summary).slice(0, 500)}</code></p>` : ''}
    ${can('operator') ? html`<button type="button" class="replay" data-id="${d.id}">Replay this delivery</button>` : ''}</li>`;
}

// What each defect name means, in words (the names are src/core/mime-defects.ts's).
const DEFECTS = {
  'missing-header-body-separator': 'a header line without a colon: the body was taken to start there',
  'no-boundary-in-multipart': 'multipart without a boundary: the body is kept as text',
  'start-boundary-not-found': 'the first multipart delimiter never came: no parts',
  'close-boundary-not-found': 'the closing multipart delimiter never came (often a truncated message)',
  'invalid-content-type': 'a Content-Type without type/subtype: read as text/plain',
  'invalid-date': 'a Date that does not parse: the message has no date',
  'unknown-date-zone': 'a Date without a known zone: read as UTC',
};

/** The parse outcome in a line, with its defects by name and meaning. */
function parseOutcome(m) {
  if (m.parseStatus === 'pending') return html`<span class="muted">waiting</span>`;
  return html`${status(m.parseStatus)}${m.parseError ? html` <span class="error">${m.parseError}</span>` : ''}
    ${m.defects?.length ? html`<ul class="defects" aria-label="Defects">${m.defects.map((d) => html`<li><code>${d}</code>: ${DEFECTS[d] ?? 'see the raw source'}</li>`)}</ul>` : m.parseStatus === 'parsed' ? html` <span class="muted">no defects</span>` : ''}`;
}

/** Delivery-status (RFC 3464) and feedback-report (RFC 5965) parts as their fields. */
function reports(m) {
  if (!m.reports?.length) return '';
  const fields = (o) => dl(Object.entries(o));
  return html`<section><h2>Reports</h2>${m.reports.map(
    (r) => html`<article class="report"><h3><code>${r.contentType}</code> <span class="muted">(part ${r.part})</span></h3>${fields(r.perMessage)}
    ${r.recipients.map((x, i) => html`<h4>Recipient ${i + 1}</h4>${fields(x)}`)}</article>`,
  )}</section>`;
}

function timeline(m, deliveries, test) {
  const parsed =
    m.parseStatus === 'pending'
      ? html`<li>Parse: <span class="muted">waiting</span></li>`
      : html`<li>Parsed ${when(m.parsedAt)}: ${parseOutcome(m)}</li>`;
  const refused = (test?.recipients ?? []).flatMap((r) => r.refusals.map((x) => ({ ...x, recipient: r.recipient })));
  const taken = (test?.recipients ?? []).flatMap((r) => r.routes.map((x) => ({ ...x, recipient: r.recipient })));
  const end = deliveries.length && deliveries.every((d) => d.status === 'done') ? 'done' : deliveries.some((d) => d.status === 'dead') ? 'dead' : null;
  return html`<ol class="timeline">
    <li>Received ${when(m.envelope.receivedAt)} over ${m.ingress}</li>
    <li>Kept: ${bytes(m.size)}, sha256 <code>${m.sha256}</code></li>
    ${parsed}
    <li>Routed: ${m.status}${m.error ? html` <span class="error">${m.error}</span>` : ''}
      ${taken.length ? html`<ul>${taken.map((t) => html`<li><code>${t.recipient}</code> → route <code>${t.route}</code>${Object.keys(t.captures).length ? html`, captures <code>${JSON.stringify(t.captures)}</code>` : ''}</li>`)}</ul>` : ''}
      ${refused.length ? html`<ul class="refusals">${refused.map((r) => html`<li><code>${r.recipient}</code>: route <code>${r.route}</code> did not take it: ${r.reason}</li>`)}</ul>` : ''}</li>
    ${deliveries.map(deliveryBlock)}
    ${end ? html`<li>${status(end)}</li>` : ''}</ol>`;
}

/** Whether the message is still on its way (parse or a delivery not finished): the page then looks again. */
function unsettled(m, el) {
  return m.parseStatus === 'pending' || m.status === 'received' || !!el.querySelector('.delivery .status-pending');
}

async function overview(el, m) {
  const deliveries = await Promise.all(
    (await getJson(`/api/v1/deliveries?message=${m.id}&limit=500`)).items.map((d) => getJson(`/api/v1/deliveries/${d.id}`)),
  );
  // Which route took each recipient and why the others did not: the route tester on this message.
  const test = m.parseStatus === 'pending' ? null : await getJson(`/api/v1/routes/test?message=${m.id}`).catch(() => null);
  // Our own Received: header says how the message came: ESMTPS is TLS, ESMTPA an AUTH session (RFC 3848).
  const proto = /\bwith (\S+)/.exec(m.trace ?? '')?.[1] ?? null;
  render(
    el,
    html`<section><h2>Envelope and session</h2>${dl([
      ['MAIL FROM', `<${m.envelope.mailFrom}>`],
      ['RCPT TO', m.envelope.rcptTo.join(', ')],
      ['Client', m.envelope.clientIp],
      ['HELO', m.envelope.helo],
      ['AUTH user', m.envelope.authUser],
      ['Ingress', m.ingress],
      ['Received', when(m.envelope.receivedAt)],
      ['Message-ID', m.messageId],
      ['TLS', m.ingress === 'smtp' && proto ? (/^ESMTPS/.test(proto) ? `yes (${proto})` : `no (${proto})`) : null],
      ['Trace', m.trace ? html`<pre class="reply">${m.trace}</pre>` : null],
    ])}</section>
    ${reports(m)}
    <section><h2>Timeline</h2>
    ${can('operator') && deliveries.length ? html`<p><button type="button" id="replay-all">Replay all deliveries</button></p>` : ''}
    ${timeline(m, deliveries, test)}</section>`,
  );
}

function frame(el, m, remote) {
  const hasHtml = m.parts.some((p) => p.kind === 'html');
  if (!hasHtml) return render(el, html`<p class="empty">This message has no HTML body. See the Text tab.</p>`);
  const src = `/api/v1/messages/${m.id}/html?inline=1${remote ? '&remote=1' : ''}`;
  const byToken = session().mode !== 'session';
  render(
    el,
    html`<p class="hint">Shown in a sandbox: no scripts run and nothing remote loads${remote ? ' (remote content allowed now)' : ''}.
      ${remote ? '' : html`<button type="button" id="load-remote">Load remote content</button>`}
      ${remote && byToken ? html`<br>Signed in with the API token, the console fills the frame itself and its own policy still keeps remote content out: sign in as a user to see it.` : ''}</p>
    <iframe class="mail" title="HTML body of the message" sandbox="" referrerpolicy="no-referrer"
      ${session().mode === 'session' ? html`src="${src}"` : ''}></iframe>`,
  );
  if (byToken) {
    // The token cannot ride on a frame's own request: fetch the same route, hand the frame the
    // bytes with the route's policy as the first thing in them; the sandbox attribute still forbids script.
    void request(src).then(async (res) => {
      const body = await res.text();
      el.querySelector('iframe').srcdoc = `<meta http-equiv="Content-Security-Policy" content="${remote ? FRAME_CSP_REMOTE : FRAME_CSP}">${body}`;
    }, (err) => el.insertAdjacentHTML('beforeend', errorBox(err).toString()));
  }
  el.querySelector('#load-remote')?.addEventListener('click', () => frame(el, m, true));
}

async function textTab(el, m, path, empty) {
  try {
    const text = await (await request(path)).text();
    render(el, html`<pre class="body">${text}</pre>`);
  } catch (err) {
    render(el, err.status === 404 ? html`<p class="empty">${empty}</p>` : errorBox(err));
  }
}

function partsTab(el, m) {
  render(
    el,
    html`<div class="scroll"><table><caption>MIME parts in order</caption><thead><tr><th scope="col">#</th><th scope="col">Kind</th><th scope="col">Type</th>
    <th scope="col">Name (sanitised)</th><th scope="col">Original name</th><th scope="col" class="num">Size</th><th scope="col">sha256</th><th scope="col">Download</th></tr></thead>
    <tbody>${m.parts.map(
      (p) => html`<tr><td>${p.idx}</td><td>${p.kind}</td><td><code>${p.contentType}</code></td><td>${p.filename ?? ''}</td>
      <td>${p.originalFilename ?? ''}</td><td class="num">${bytes(p.size)}</td><td><code class="hash">${p.sha256}</code></td>
      <td><button type="button" class="download" data-url="${safeUrl(p.url)}" data-name="${p.filename ?? `part-${p.idx}`}" aria-label="Download part ${p.idx} ${p.filename ?? ''}">Download</button></td></tr>`,
    )}</tbody></table></div>
    <div>Parse: ${parseOutcome(m)}</div>`,
  );
}

/** One message: envelope, timeline, bodies, headers, raw source, parts, and its actions. */
export async function messagePage(el, id, params) {
  render(el, loading('the message'));
  const m = await getJson(`/api/v1/messages/${encodeURIComponent(id)}`);
  const tab = TABS.some(([t]) => t === params.get('tab')) ? params.get('tab') : 'overview';
  render(
    el,
    html`<p><a href="#/messages">← Messages</a></p>
    <h1>${m.subject || html`<span class="muted">(no subject)</span>`}</h1>
    <p class="muted">From ${sender(m)} · ${when(m.envelope.receivedAt)} · ${bytes(m.size)} · ${status(m.status)}</p>
    <p class="actions"><button type="button" class="download" data-url="/api/v1/messages/${m.id}/raw" data-name="${m.id}.eml">Download .eml</button></p>
    <div role="tablist" aria-label="Message views">${TABS.map(
      ([t, label]) => html`<a role="tab" id="tab-${t}" href="#/messages/${m.id}?tab=${t}" aria-selected="${t === tab ? 'true' : 'false'}" aria-controls="panel">${label}</a>`,
    )}</div>
    <div id="panel" role="tabpanel" aria-labelledby="tab-${tab}">${loading(tab)}</div>`,
  );
  const panel = el.querySelector('#panel');
  el.addEventListener('click', async (e) => {
    const b = e.target;
    if (!(b instanceof HTMLButtonElement)) return;
    try {
      if (b.classList.contains('download')) await download(b.dataset.url, b.dataset.name);
      else if (b.classList.contains('replay') || b.id === 'replay-all') {
        b.disabled = true;
        const ids = b.id === 'replay-all' ? [...el.querySelectorAll('.replay')].map((x) => x.dataset.id) : [b.dataset.id];
        for (const d of ids) await postJson(`/api/v1/deliveries/${d}/retry`, undefined);
        // Show the attempt as it lands: look again while the replayed deliveries run.
        for (let i = 0; i < 20; i++) {
          await new Promise((r) => setTimeout(r, 500));
          await overview(panel, m);
          const pending = [...panel.querySelectorAll('.delivery .status-pending')];
          if (!pending.length) break;
        }
      }
    } catch (err) {
      b.insertAdjacentHTML('afterend', errorBox(err).toString());
      b.disabled = false;
    }
  });
  let stopped = false;
  try {
    if (tab === 'overview') {
      await overview(panel, m);
      // Mail just received is still being parsed and delivered: follow it for a while.
      void (async () => {
        let current = m;
        for (let i = 0; i < 60 && !stopped && unsettled(current, panel); i++) {
          await new Promise((r) => setTimeout(r, 1000));
          if (stopped) return;
          current = await getJson(`/api/v1/messages/${encodeURIComponent(id)}`).catch(() => current);
          if (!stopped) await overview(panel, current).catch(() => {});
        }
      })();
    }
    else if (tab === 'html') frame(panel, m, false);
    else if (tab === 'text') await textTab(panel, m, `/api/v1/messages/${m.id}/text`, 'This message has no text body. See the HTML tab.');
    else if (tab === 'raw') await textTab(panel, m, `/api/v1/messages/${m.id}/raw`, 'The raw source is gone.');
    else if (tab === 'headers')
      render(panel, m.headers.length ? html`<div class="scroll"><table class="headers"><caption>Headers in the order received</caption><tbody>${m.headers.map(([k, v]) => html`<tr><th scope="row">${k}</th><td>${v}</td></tr>`)}</tbody></table></div>` : html`<p class="empty">Not parsed (yet): see Raw.</p>`);
    else if (tab === 'parts') partsTab(panel, m);
  } catch (err) {
    render(panel, errorBox(err));
  }
  return () => {
    stopped = true;
  };
}
