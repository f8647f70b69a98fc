import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createPost, listPosts, type Post } from '../../src/domain/groups/posts.js';
import { createGroup } from '../../src/domain/groups/store.js';
import { openTestDb, type TestDb } from '../helpers/test-db.js';

/** A topic and its replies: what each names and what it should hang under whatever the order. */
const TOPIC = [
  { id: 'root', subject: 'Topic' },
  { id: 'a', subject: 'Re: Topic', inReplyTo: ['root'] },
  { id: 'b', subject: 'other words', references: ['root', 'a'] },
  { id: 'c', subject: 'RE: [list] topic' },
  { id: 'd', subject: 'smaller question', inReplyTo: ['a'], references: ['root', 'a'] },
];
type Mail = (typeof TOPIC)[number];

const mid = (id: string) => `<${id}@t.test>`;

function permutations<T>(xs: T[]): T[][] {
  if (xs.length <= 1) return [xs];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((rest) => [x, ...rest]));
}

/**
 * Threading does not depend on the order posts are made in, nor on their being made at once
 * (PostgreSQL: concurrent transactions under READ COMMITTED; createPost serialises per group).
 */
describe('group threading: order and concurrency', () => {
  let db: TestDb;
  let n = 0;
  before(async () => {
    db = await openTestDb();
  });
  after(async () => {
    await db?.cleanup();
  });

  const group = async () => (await createGroup(db, { name: `g${++n}`, address: `g${n}@t.test`, posting: 'anyone', replyTo: 'group' })).id;
  const make = (g: number, m: Mail) =>
    createPost(db, {
      group: g,
      message: `msg-${g}-${m.id}`,
      delivery: `d-${g}-${m.id}`,
      messageId: mid(m.id),
      inReplyTo: (m.inReplyTo ?? []).map(mid),
      references: (m.references ?? []).map(mid),
      subject: m.subject,
      author: 'ann@t.test',
      status: 'approved',
      postedAt: new Date().toISOString(),
    });

  /** The five posts form one tree whose Message-ID links are those the mail names. */
  async function check(g: number, order: string) {
    const posts = await listPosts(db.kysely, g, { limit: 100 });
    const by = (id: string) => posts.find((p) => p.messageId === mid(id)) as Post;
    const why = `${order}: ${JSON.stringify(posts.map((p) => [p.messageId, p.id, p.parent, p.thread]))}`;
    assert.equal(posts.length, TOPIC.length, why);
    assert.equal(new Set(posts.map((p) => p.thread)).size, 1, why);
    assert.equal(by('a').parent, by('root').id, why);
    assert.equal(by('b').parent, by('a').id, why);
    assert.equal(by('d').parent, by('a').id, why);
    // By subject: c joins whatever of the topic came before it, or root joins c when c came first.
    assert.ok(by('root').parent === null || by('root').parent === by('c').id, why);
    // The thread is a tree: from every post the parents lead to the one post without a parent.
    const top = posts.filter((p) => p.parent === null);
    assert.equal(top.length, 1, why);
    assert.equal(top[0].thread, top[0].id, why);
    for (const p of posts) {
      let q: Post | undefined = p;
      for (let hops = 0; q && q.parent !== null; hops++) {
        assert.ok(hops < posts.length, `a cycle through ${p.messageId}; ${why}`);
        q = posts.find((x) => x.id === q!.parent);
      }
      assert.equal(q?.id, top[0].id, why);
    }
  }

  it('one at a time, in every order: a reply kept before its parent is adopted with the replies below it', async () => {
    for (const order of permutations(TOPIC)) {
      const g = await group();
      for (const m of order) await make(g, m);
      await check(g, order.map((m) => m.id).join(','));
    }
  });

  it('all at once, many times over (concurrent transactions on PostgreSQL)', async () => {
    const orders = permutations(TOPIC);
    for (let round = 0; round < 40; round++) {
      const order = orders[(round * 7) % orders.length];
      const g = await group();
      await Promise.all(order.map((m) => make(g, m)));
      await check(g, `at once: ${order.map((m) => m.id).join(',')}`);
    }
  });
});
