// The one escaping helper of the console. Every value that reaches the page goes through
// html`...`: interpolations are escaped unless they are already-built Html (from html`` itself),
// so a subject like `<img src=x onerror=alert(1)>` shows as text. Mail is hostile; nothing from
// a message is ever put into innerHTML any other way.

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;', '=': '&#61;' };

/** Text made safe for element content and quoted attribute values. */
export function escapeHtml(value) {
  return String(value ?? '').replace(/[&<>"'`=]/g, (c) => ESCAPES[c]);
}

/** Markup built by html``: inserted as it is. Only html`` makes one. */
export class Html {
  constructor(text) {
    this.text = text;
  }
  toString() {
    return this.text;
  }
}

function part(v) {
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return v.map(part).join('');
  if (v === null || v === undefined || v === false) return '';
  return escapeHtml(v);
}

/** Tagged template: html`<td>${subject}</td>` escapes subject; arrays of Html join. */
export function html(strings, ...values) {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += part(values[i]) + strings[i + 1];
  return new Html(out);
}

/** A URL for href/src: only our own paths and http(s)/mailto; anything else (javascript:, data:) becomes '#'. */
export function safeUrl(url) {
  const s = String(url ?? '').trim();
  if (/^\/(?!\/)/.test(s) || /^#/.test(s)) return s;
  if (/^(https?:|mailto:)/i.test(s)) return s;
  return '#';
}
