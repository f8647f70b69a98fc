import { procMemory } from '../lib/proc.js';
import { startPostroom } from '../lib/servers.js';
import { runSmtpSource } from '../lib/smtp-source.js';
import { keptMessages, unparsedMessages } from '../lib/store.js';
import type { Scenario } from '../lib/types.js';

const MiB = 1024 * 1024;

/**
 * Peak resident memory of the Postroom process while one 200 MiB message is received, kept
 * and parsed (at most 128 MiB: the message must stream, never sit in memory whole).
 * VmHWM is the kernel's own high-water mark, so no peak between two samples is missed.
 */
export const largeMessageRss: Scenario = {
  name: 'large-message-rss',
  description: 'peak RSS (VmHWM) of postroom serve while one 200 MiB message is received and parsed',
  async run(ctx) {
    if (!ctx.wants('rss.200MiB.peak')) return [];
    const size = 200 * MiB;
    ctx.log(`one ${size / MiB} MiB message`);
    const postroom = await startPostroom(ctx);
    try {
      const idle = procMemory(postroom.pid, 'VmHWM');
      const r = await runSmtpSource({ port: postroom.port, sessions: 1, messages: 1, size, keepOpen: false });
      const atAck = procMemory(postroom.pid, 'VmHWM');
      if (keptMessages(postroom.dataDir!) !== 1) throw new Error('the 200 MiB message was not kept');
      const parseStart = Date.now();
      while (unparsedMessages(postroom.dataDir!) > 0) {
        if (Date.now() - parseStart > 300_000) throw new Error('the 200 MiB message was not parsed within 5 minutes');
        await new Promise((res) => setTimeout(res, 100));
      }
      const parseSeconds = (Date.now() - parseStart) / 1000;
      const peak = procMemory(postroom.pid, 'VmHWM');
      return [
        {
          id: 'rss.200MiB.peak',
          label: '200 MiB message: peak RSS (receive + parse)',
          unit: 'MiB',
          value: Math.round(peak / MiB),
          target: { op: '<=', value: 128 },
          note: `idle ${Math.round(idle / MiB)} MiB, at the 250 ${Math.round(atAck / MiB)} MiB, +${Math.round((peak - idle) / MiB)} MiB over idle, parsed in ${parseSeconds.toFixed(1)} s`,
          details: {
            idleHwmMiB: Math.round(idle / MiB),
            growthOverIdleMiB: Math.round((peak - idle) / MiB),
            hwmAtAckMiB: Math.round(atAck / MiB),
            receiveSeconds: Number(r.seconds.toFixed(2)),
            receiveMiBps: Math.round(size / MiB / r.seconds),
            parseSeconds,
          },
        },
      ];
    } finally {
      await postroom.stop();
    }
  },
};
