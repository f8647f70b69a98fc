/**
 * What a fax or SMS daemon reads beside the message: the control file's layout per
 * `ctl_type`, and the "@ commands" senders write in the body to set its values.
 */

/**
 * The control-file layouts `ctl_type` selects, as the fax/SMS gateway Postroom replaces wrote
 * them: the sections each may have and the values it gets unless the route sets them. A fax
 * goes with its files (the message file and the attachments it lists); an SMS carries its text
 * inside the control file, so it has an `[sms] text` and no files section.
 */
export const CONTROL_TYPES = {
  fax: {
    sections: ['system', 'to', 'from', 'files'],
    defaults: {
      system: { priority: '<%pri%>' },
      from: { email: '<%messageReplyToAddress|messageFromAddress|address%>' },
      files: { message: '<%msgFileName%>', attachments: '<%attachmentFiles%>' },
    },
  },
  sms: {
    sections: ['system', 'to', 'from', 'sms'],
    defaults: {
      system: { priority: '<%pri%>' },
      from: { email: '<%messageReplyToAddress|messageFromAddress|address%>' },
      sms: { text: '<%msg%>' },
    },
  },
} as const satisfies Record<string, { sections: readonly string[]; defaults: Record<string, Record<string, string>> }>;

export type ControlType = keyof typeof CONTROL_TYPES;
export type Control = Record<string, string | Record<string, string>>;

/**
 * A control as written, checked against its `ctl_type` and completed with that type's
 * defaults; a string when it is wrong (a config problem). Without `ctl_type` it stays as written.
 */
export function completeControl(control: Control): Control | string {
  const type = control.ctl_type;
  if (type === undefined) return control;
  if (typeof type !== 'string' || !(type in CONTROL_TYPES)) return `ctl_type must be one of ${Object.keys(CONTROL_TYPES).join(', ')}`;
  const layout = CONTROL_TYPES[type as ControlType];
  const out: Control = { ctl_type: type };
  for (const [k, v] of Object.entries(control)) {
    if (typeof v === 'string') out[k] = v;
    else if (!(layout.sections as readonly string[]).includes(k)) {
      return `section [${k}] is not part of a ${type} control file (its sections: ${layout.sections.join(', ')})`;
    }
  }
  const to = control.to;
  if (typeof to !== 'object' || !to.number) return `a ${type} control file needs to: { number: … } (e.g. '<%number%>' from the recipient)`;
  for (const section of layout.sections) {
    const given = control[section];
    const defaults = (layout.defaults as Record<string, Record<string, string>>)[section] ?? {};
    out[section] = { ...defaults, ...(typeof given === 'object' ? given : {}) };
  }
  return out;
}

/** A command name: what follows the tag, and the template variable it sets. */
export const COMMAND_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Take "@ commands" out of a text body: a line `@name: value` or `@name=value` (the tag is
 * configurable) whose name is one of `names` sets that variable and is removed from the text;
 * any other line stays, so `@home` in a sentence, or an unknown command, is text. The last
 * line for a name wins.
 */
export function takeCommands(text: string, tag: string, names: readonly string[]): { text: string; values: Record<string, string> } {
  const values: Record<string, string> = {};
  const known = new Set(names.map((n) => n.toLowerCase()));
  const kept: string[] = [];
  for (const line of text.split(/(?<=\n)/)) {
    const body = line.replace(/\r?\n$/, '');
    const t = body.trimStart();
    if (t.startsWith(tag)) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*[:=]\s*(.*)$/.exec(t.slice(tag.length));
      if (m && known.has(m[1].toLowerCase())) {
        values[names.find((n) => n.toLowerCase() === m[1].toLowerCase())!] = m[2].trim();
        continue;
      }
    }
    kept.push(line);
  }
  return { text: kept.join(''), values };
}
