import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { parseSearch } from '../../core/message-search.js';
import { listMessages } from '../../store/messages.js';
import { defineRoute } from '../route.js';
import type { ApiDeps } from '../deps.js';
import { MESSAGES, summaryOf } from './messages.js';

const EventsQuery = z.strictObject({
  q: z.string().max(998).optional().describe('the same search as GET /api/v1/messages?q='),
  after: z.string().max(64).regex(/^[0-9a-z_-]+$/i).optional().describe('send what arrived after this message id (else: from now on)'),
});

// How often the store is looked at while anyone listens: messages kept by other processes
// (`postroom deliver`, another node) reach the list as well as our own, within this time.
const POLL_MS = 1000;
const HEARTBEAT_MS = 15_000;

/**
 * GET /api/v1/messages/events: new mail as Server-Sent Events, each `event: message` with the
 * message's summary (as in the list) and its id as the event id, so a client that reconnects
 * with Last-Event-ID misses nothing. One query per listener per second, through listMessages
 * (the same filter the list uses), only while someone listens.
 */
export async function messageEventRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  // Open streams never end by themselves: closing the server ends them, or close() would wait forever.
  const open = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of [...open]) end();
  });
  defineRoute(
    app,
    {
      method: 'GET',
      url: `${MESSAGES}/events`,
      summary: 'New messages as Server-Sent Events (text/event-stream)',
      description:
        'Each event is `event: message`, `id: <message id>`, `data: <message summary JSON>`. Reconnect with `Last-Event-ID` ' +
        '(or `?after=`) to get what arrived meanwhile. A comment line every 15 s keeps proxies from closing an idle stream.',
      tags: ['messages'],
      query: EventsQuery,
      responses: { 200: { description: 'the event stream', contentType: 'text/event-stream' } },
    },
    async ({ query, request, reply }) => {
      const search = query.q ? parseSearch(query.q) : undefined;
      const lastEventId = request.headers['last-event-id'];
      let after = (typeof lastEventId === 'string' && /^[0-9a-z_-]{1,64}$/i.test(lastEventId) ? lastEventId : undefined) ?? query.after;
      if (!after) after = (await listMessages(deps.db.kysely, { limit: 1 }))[0]?.id ?? '0';
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        // nginx buffers responses unless told otherwise, which would hold events back.
        'x-accel-buffering': 'no',
        connection: 'keep-alive',
      });
      res.write('retry: 2000\n\n');
      let closed = false;
      let busy = false;
      const poll = async () => {
        if (busy || closed) return;
        busy = true;
        try {
          const rows = await listMessages(deps.db.kysely, { search, after, limit: 50 });
          for (const m of rows.reverse()) {
            res.write(`event: message\nid: ${m.id}\ndata: ${JSON.stringify(summaryOf(m))}\n\n`);
            after = m.id;
          }
        } catch (err) {
          deps.log.warn({ err }, 'message events: reading new messages failed; trying again');
        } finally {
          busy = false;
        }
      };
      const timer = setInterval(() => void poll(), POLL_MS);
      const beat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
      const off = deps.onStored?.(() => void poll());
      const stop = () => {
        if (closed) return;
        closed = true;
        open.delete(end);
        clearInterval(timer);
        clearInterval(beat);
        off?.();
      };
      const end = () => {
        stop();
        res.end();
      };
      open.add(end);
      request.raw.on('close', stop);
      res.on('close', stop);
    },
  );
}
