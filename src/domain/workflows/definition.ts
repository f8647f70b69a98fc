import { z } from 'zod';
import { duration, size } from '../../config/units.js';

/**
 * What a workflow is: a name (the `wf+NAME` of its address), which part of a message is its
 * input, and one action. An action runs a command as an argv list (never through a shell: no
 * word of the message can become a shell word) with the input on stdin, or POSTs the input
 * to a URL. Definitions are data, validated by this schema in the API and the CLI alike.
 */

const mimeType = z
  .string()
  .regex(/^[a-z0-9!#$&^_.+-]+\/(\*|[a-z0-9!#$&^_.+-]+)$/i, 'a MIME type like text/plain, application/pdf or image/*')
  .transform((s) => s.toLowerCase());

/** Environment variable names a workflow may set (POSTROOM_* are ours). */
const envName = z.string().regex(/^(?!POSTROOM_)[A-Za-z_][A-Za-z0-9_]*$/, 'a variable name not starting with POSTROOM_');

export const commandAction = z.strictObject({
  command: z.array(z.string().min(1)).min(1).describe('argv: the program and its arguments, run without a shell'),
  timeout: duration().default(60_000).describe('killed after this long (a transient failure, retried)'),
  maxOutput: size().default(1024 * 1024).describe('stdout kept up to this many bytes; the rest is dropped'),
  env: z.record(envName, z.string()).default({}).describe('extra environment variables (the environment is otherwise PATH, LANG and POSTROOM_*)'),
});

export const httpAction = z.strictObject({
  url: z
    .string()
    .url()
    .refine((u) => /^https?:$/.test(new URL(u).protocol), 'only http:// and https:// URLs')
    .describe('POST the input here'),
  timeout: duration().default(30_000),
  maxOutput: size().default(1024 * 1024).describe('response body kept up to this many bytes'),
  token: z.string().min(1).optional().describe('sent as Authorization: Bearer <token>'),
  allowPrivate: z.boolean().default(false).describe('allow loopback, link-local and private addresses (refused by default: SSRF)'),
});

export const workflowName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, "letters, digits, . _ - (up to 64); it is the NAME in PREFIX+wf+NAME@DOMAIN");

export const workflowDefinition = z.strictObject({
  name: workflowName,
  input: z
    .strictObject({
      type: mimeType.default('text/plain').describe('text/plain: the text body; another type: the first attachment of that type'),
    })
    .prefault({}),
  action: z.union([commandAction, httpAction]).describe('{ command: [argv…] } or { url }'),
});

export type WorkflowDefinition = z.output<typeof workflowDefinition>;
export type WorkflowDefinitionInput = z.input<typeof workflowDefinition>;
export type CommandAction = z.output<typeof commandAction>;
export type HttpAction = z.output<typeof httpAction>;

/** Whether an action runs a command (else it POSTs). */
export function isCommand(a: CommandAction | HttpAction): a is CommandAction {
  return 'command' in a;
}
