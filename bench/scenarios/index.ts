import type { Scenario } from '../lib/types.js';
import { consolePages } from './console-pages.js';
import { largeMessageRss } from './large-message-rss.js';
import { mailFetch } from './mail-fetch.js';
import { mboxImport } from './mbox-import.js';
import { messageSearch } from './message-search.js';
import { smtpThroughput } from './smtp-throughput.js';
import { storeBackends } from './store-backends.js';
import { stuckTarget } from './stuck-target.js';
import { webhookLatency } from './webhook-latency.js';

/** Every bench scenario, in the order they run. Add one: a module beside this file, one entry here. */
export const scenarios: Scenario[] = [smtpThroughput, largeMessageRss, webhookLatency, stuckTarget, storeBackends, mailFetch, consolePages, messageSearch, mboxImport];
