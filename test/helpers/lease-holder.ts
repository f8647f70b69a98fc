// A second node for lease tests: takes the lease named in argv[3] on database argv[2], says
// "held" on stdout, and waits to be killed.
import { openDb } from '../../src/store/db.js';
import { openLeases } from '../../src/store/leases.js';

const [url, key] = process.argv.slice(2);
const db = openDb(url, '/nonexistent');
const leases = openLeases(db);
const lease = await leases.tryAcquire(key);
process.stdout.write(lease ? 'held\n' : 'refused\n');
setInterval(() => {}, 60_000);
