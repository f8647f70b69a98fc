import { createHash } from 'node:crypto';
import path from 'node:path';
import iconv from 'iconv-lite';
import { z } from 'zod';
import type { DeliveryContext, ParsedMessage, Receipt, Target } from '../core/delivery.js';
import { asMailError, mailError, MailError } from '../core/errors.js';
import { makeDirs } from '../core/make-dirs.js';
import { compileTemplate, type Template } from '../routing/template.js';
import { sanitiseFilename } from '../mime/filename.js';
import { renderIni, SpoolFiles, SPOOL_NAME_MAX, type IniData } from './spool-files.js';
import { attachedSource, outerSource, type SpoolSource } from './spool-source.js';
import { COMMAND_NAME, completeControl, takeCommands, type Control } from './spool-control.js';

/**
 * Files in an output directory for software that picks them up (a fax or SMS daemon): the
 * message in the first format it can give, optionally its attachments, and last a control
 * file whose values come from templates. Every file appears atomically; the control file
 * appears after the files it describes.
 */

const FORMATS = ['txt', 'eml', 'htm', 'mht'] as const;
type Format = (typeof FORMATS)[number];

const iniName = z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . -');
// YAML turns `user_app_id: 4711` into a number; control values are text.
const iniScalar = z.union([z.string(), z.number(), z.boolean()]).transform(String);

/** Compile-check a template (syntax only: route captures are checked by the route schema). */
const template = z.string().superRefine((v, ctx) => {
  try {
    compileTemplate(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: `template: ${(e as Error).message}` });
  }
});

export const spoolParams = z.strictObject({
  dir: z.string().min(1).describe('output directory (relative: to the working directory); created if missing'),
  format: z
    .union([z.enum(FORMATS), z.array(z.enum(FORMATS)).min(1)])
    .transform((v) => [v].flat())
    .default(['eml'])
    .describe('preference list of txt, eml, htm, mht: the first one the message can give is written'),
  attachments: z.boolean().default(false).describe('also write each attachment as a file of its own'),
  attachedMessage: z
    .boolean()
    .default(false)
    .describe('process the first attached message/rfc822 instead of the outer message (when there is one)'),
  control: z
    .record(iniName, z.union([iniScalar.pipe(template), z.record(iniName, iniScalar.pipe(template))]))
    .transform((c, ctx) => {
      const done = completeControl(c);
      if (typeof done === 'string') {
        ctx.addIssue({ code: 'custom', message: done });
        return z.NEVER;
      }
      return done;
    })
    .optional()
    .describe('control file: top-level keys and [sections] of keys; values are templates. ctl_type: fax or sms selects a layout (its sections, and defaults for what is not set)'),
  txt: template
    .optional()
    .describe("content of the .txt file, a template (<%msg%> is the text body); unset: the text body as it is"),
  commands: z
    .strictObject({
      tag: z.string().min(1).max(8).regex(/^[^\sA-Za-z0-9]+$/, 'punctuation, e.g. @ or #').default('@').describe('what starts a command line'),
      names: z
        .array(z.string().regex(COMMAND_NAME, 'letters, digits, _'))
        .min(1)
        .describe('the commands senders may give; each sets the template variable of its name, over a capture of that name'),
    })
    .optional()
    .describe("body lines '@name: value' that set control-file values, removed from the text (the fax gateway's cmd_tags)"),
  controlExtension: iniName.default('ctl').describe('extension of the control file'),
  encoding: z
    .string()
    .default('utf-8')
    .refine((e) => iconv.encodingExists(e), 'unknown code page (e.g. utf-8, windows-1250, iso-8859-2, cp852)')
    .describe('code page of txt, htm and control files, for software that reads no UTF-8 (utf-8, windows-1250, iso-8859-2, cp852, …)'),
  newline: z.enum(['lf', 'crlf']).default('lf').describe('line ending of txt and control files: crlf for Windows software'),
  prefix: z
    .string()
    .regex(/^[A-Za-z0-9_-]*$/, 'letters, digits, _ -')
    .max(64, 'at most 64 characters: file names have 255 bytes in all')
    .default('')
    .describe('prepended to every file name'),
})
  .describe('write files into a directory for software that picks them up (a fax or SMS daemon): the message, its attachments, last a control file');

export type SpoolParams = z.output<typeof spoolParams>;

/** 'high' | 'normal' | 'low' from X-Priority (1–5), Priority or Importance. */
export function priorityOf(headers: SpoolSource['headers']): string {
  for (const [name, value] of headers) {
    const n = name.toLowerCase();
    const v = value.trim().toLowerCase();
    if (n === 'x-priority') {
      const d = Number.parseInt(v, 10);
      if (d <= 2) return 'high';
      if (d >= 4) return 'low';
      return 'normal';
    }
    if (n === 'importance' || n === 'priority') {
      if (v === 'high' || v === 'urgent') return 'high';
      if (v === 'low' || v === 'non-urgent') return 'low';
      return 'normal';
    }
  }
  return 'normal';
}

/** A text body in the configured code page and line ending. */
function encodeText(s: string, p: SpoolParams): Buffer {
  const lines = s.replace(/\r\n?/g, '\n');
  return iconv.encode(p.newline === 'crlf' ? lines.replace(/\n/g, '\r\n') : lines, p.encoding);
}

async function buildMht(html: string, src: SpoolSource): Promise<Buffer> {
  const related = src.files.filter((f) => f.contentId);
  // Loaded on first use: only spool routes that write .mht need nodemailer's composer.
  const { default: MailComposer } = await import('nodemailer/lib/mail-composer/index.js');
  const composer = new MailComposer({
    subject: src.subject,
    html,
    attachments: await Promise.all(
      related.map(async (f) => ({ content: await f.open(), contentType: f.contentType, cid: f.contentId!.replace(/^<|>$/g, ''), filename: f.filename })),
    ),
    // Content from mail must never make us read a local file or fetch a URL.
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  return composer.compile().build();
}

/** The first format of the preference list the source can give, with its bytes. */
async function render(src: SpoolSource, p: SpoolParams): Promise<{ format: Format; data: Buffer | import('node:stream').Readable; text?: string } | null> {
  for (const format of p.format as Format[]) {
    if (format === 'eml') return { format, data: await src.raw() };
    if (format === 'txt') {
      // Encoded once its template and commands are applied (see spool()).
      const text = await src.text();
      if (text !== null) return { format, data: Buffer.alloc(0), text };
    } else {
      const html = await src.html();
      if (html === null) continue;
      return { format, data: format === 'htm' ? iconv.encode(html, p.encoding) : await buildMht(html, src) };
    }
  }
  return null;
}

/** The `spool` target; `opts.now` fixes the clock for tests. */
export function createSpoolTarget(opts: { now?: () => Date } = {}): Target<SpoolParams> {
  // Templates compile once per distinct source, not per message.
  const compiled = new Map<string, Template>();
  const tpl = (s: string) => {
    let t = compiled.get(s);
    if (!t) compiled.set(s, (t = compileTemplate(s)));
    return t;
  };
  return {
    kind: 'spool',
    params: spoolParams,
    async deliver(msg: ParsedMessage, p: SpoolParams, ctx: DeliveryContext): Promise<Receipt> {
      try {
        return await spool(msg, p, ctx, tpl, opts.now?.() ?? new Date());
      } catch (err) {
        throw spoolError(err);
      }
    },
  };
}

async function spool(
  msg: ParsedMessage,
  p: SpoolParams,
  ctx: DeliveryContext,
  tpl: (s: string) => Template,
  now: Date,
): Promise<Receipt> {
  const src = (p.attachedMessage ? await attachedSource(msg) : null) ?? outerSource(msg);
  const out = await render(src, p);
  if (!out) throw mailError('BAD_CONTENT', `spool: the message has none of the formats ${p.format.join(', ')}`);
  const dir = path.resolve(p.dir);
  await makeDirs(dir);
  // Sortable (message ids sort by arrival) and stable per delivery: a retry rewrites its own
  // files instead of producing a second fax.
  const base = `${p.prefix}${msg.message.id}-${createHash('sha256').update(ctx.deliveryId).digest('hex').slice(0, 8)}`;
  const msgFileName = `${base}.${out.format}`;
  const format = out.format;
  const files = new SpoolFiles(dir);
  try {
    const attached: string[] = [];
    if (p.attachments) {
      // mht carries its inline parts inside; eml carries everything but was asked for anyway.
      const parts = src.files.filter((f) => !(format === 'mht' && f.inline && f.contentId));
      for (const [i, f] of parts.entries()) {
        // The sender chooses the name: cut it (in UTF-8 bytes, extension kept) to what the file system takes after our prefix.
        const head = `${base}.${i + 1}.`;
        const name = head + sanitiseFilename(f.filename, { maxLength: SPOOL_NAME_MAX - Buffer.byteLength(head), index: i + 1, contentType: f.contentType });
        await files.add(name, await f.open());
        attached.push(name);
      }
    }
    const body = (await src.text()) ?? '';
    const commands = p.commands ? takeCommands(body, p.commands.tag, p.commands.names) : { text: body, values: {} };
    const from = src.from[0];
    const replyTo = src.replyTo[0];
    const vars: Record<string, string> = {
      // The envelope sender, as in the fax gateway's table of variables.
      address: msg.message.mailFrom,
      recipient: ctx.recipients[0] ?? '',
      app: ctx.route,
      format,
      msgFileName,
      attachmentFiles: attached.join(','),
      pri: priorityOf(src.headers),
      subject: src.subject,
      msg: commands.text,
      messageFromAddress: from?.address ?? '',
      messageFromName: from?.name ?? '',
      messageReplyToAddress: replyTo?.address ?? '',
      messageReplyToName: replyTo?.name ?? '',
      sender: msg.message.mailFrom,
      messageId: msg.message.messageId ?? '',
      id: msg.message.id,
      ...ctx.captures,
      ...commands.values,
    };
    if (out.text !== undefined) {
      out.data = encodeText(p.txt ? tpl(p.txt).render({ vars, now }) : p.commands ? commands.text : out.text, p);
    }
    // The message file after its attachments: without a control file it is what a consumer picks up.
    await files.add(msgFileName, out.data);
    const written = [msgFileName, ...attached];
    if (p.control) {
      const data: IniData = {};
      for (const [k, v] of Object.entries(p.control as Control)) {
        data[k] =
          typeof v === 'string'
            ? tpl(v).render({ vars, now })
            : Object.fromEntries(Object.entries(v).map(([kk, vv]) => [kk, tpl(vv).render({ vars, now })]));
      }
      const ctl = `${base}.${p.controlExtension}`;
      await files.add(ctl, iconv.encode(renderIni(data, p.newline === 'crlf' ? '\r\n' : '\n'), p.encoding));
      written.push(ctl);
    }
    await files.commit();
    return { summary: `wrote ${path.join(p.dir, msgFileName)}${written.length > 1 ? ` + ${written.length - 1} more` : ''}`, files: written, dir };
  } catch (err) {
    await files.abort();
    throw err;
  }
}

/**
 * What a failed write means, by errno: whether writing again can succeed without anyone
 * changing the message. Permanent: the file system refuses this name or these bytes whatever
 * we retry (ENAMETOOLONG once names are cut to NAME_MAX means the directory path itself is too
 * long; EINVAL/EILSEQ: a name the file system cannot store, e.g. on vfat; EFBIG: larger than
 * the file system's file size limit), so retrying until the delivery dies only delays the
 * bounce. Transient: what an operator or time fixes (ENOSPC/EDQUOT: a full disk, 4.3.1;
 * EACCES/EPERM/EROFS: permissions or a read-only mount, fixed with chmod or a remount, and
 * ENOTDIR/EISDIR/ELOOP: something else where the spool path or a file should be: 4.3.5;
 * EIO, EMFILE, ENOENT of a directory removed meanwhile: 4.4.1). Unknown ones are transient
 * (a sender told 5xx by mistake loses the message).
 */
const PERMANENT_ERRNO = new Set(['ENAMETOOLONG', 'EINVAL', 'EILSEQ', 'EFBIG']);
const CONFIG_ERRNO = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'EISDIR', 'ELOOP']);

export function spoolError(err: unknown): MailError {
  if (err instanceof MailError) return err;
  const errno = (err as NodeJS.ErrnoException | undefined)?.code;
  const why = `spool: ${(err as Error)?.message ?? String(err)}`;
  if (errno && PERMANENT_ERRNO.has(errno)) return mailError('SPOOL_REFUSED', why, { cause: err });
  if (errno && CONFIG_ERRNO.has(errno)) return mailError('CONFIG', why, { cause: err });
  const e = asMailError(err);
  return e.code === 'INTERNAL' ? mailError('TARGET_TEMPFAIL', why, { cause: err }) : e;
}

/** The spool target with the real clock. */
export const spoolTarget = createSpoolTarget();
