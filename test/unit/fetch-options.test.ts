import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fetchOptions, rakeToFlags } from '../../src/cli/commands/fetch-options.js';
import { workpackageParams } from '../../src/targets/workpackage.js';

const deliverOf = (argv: string[]) => JSON.parse(fetchOptions(argv).deliver ?? 'null') as { kind: string; params: Record<string, unknown> }[] | null;

describe('postroom fetch options: the Redmine/OpenProject rake style and its defaults', () => {
  it('reads key=value words as the flags they name (underscores as dashes, 1/true for booleans)', () => {
    assert.deepEqual(rakeToFlags(['imap', 'host=mail.example.org', 'ssl=true', 'move_on_success=Done', 'apop=0', '--folder', 'X']), [
      'imap',
      '--host=mail.example.org',
      '--ssl',
      '--move-on-success=Done',
      '--folder',
      'X',
    ]);
    assert.throws(() => rakeToFlags(['ssl=maybe']), /give 1\/true or 0\/false/);
    assert.throws(() => rakeToFlags(['colour=red']), /colour: no such option/);
    assert.throws(() => rakeToFlags(['private=1']), /private: not supported/);
  });

  it("the seed's documented line: imap over TLS on 993, project and allow_override as an inline workpackage target", () => {
    const o = fetchOptions(['imap', 'host=imap.example.org', 'username=u', 'password=p', 'port=993', 'ssl=true', 'allow_override=type,project', 'project=test_project']);
    assert.deepEqual([o.host, o.port, o.tls, o.folder, o.route, o.onSuccess], ['imap.example.org', 993, 'tls', 'INBOX', null, 'delete']);
    assert.deepEqual(deliverOf(['imap', 'username=u', 'password=p', 'allow_override=type,project', 'project=test_project']), [
      { kind: 'workpackage', params: { project: 'test_project', allow_override: ['type', 'project'], no_permission_check: false, require_dmarc: false, truncate: [] } },
    ]);
  });

  it('defaults as the original: the server on 127.0.0.1, POP3 on 110, IMAP on 143; IMAP deletes unless move_on_success (or --keep)', () => {
    const pop = fetchOptions(['pop3', 'username=u', 'password=p']);
    assert.deepEqual([pop.host, pop.port, pop.tls, pop.keep, pop.deliver], ['127.0.0.1', 110, 'none', false, null]);
    const imap = fetchOptions(['imap', '--username', 'u', '--password', 'p']);
    assert.deepEqual([imap.host, imap.port, imap.onSuccess], ['127.0.0.1', 143, 'delete']);
    assert.deepEqual(fetchOptions(['imap', 'username=u', 'password=p', 'move_on_success=Done']).onSuccess, { move: 'Done' });
    assert.equal(fetchOptions(['imap', 'username=u', 'password=p', '--keep']).onSuccess, 'seen');
  });

  it('every work-package option: tracker is type, unknown_user=accept is no_permission_check, assigned_to is assignee', () => {
    const [t] = deliverOf(['pop3', 'username=u', 'password=p', 'project=p1', 'tracker=Bug', 'category=Docs', 'priority=High', 'status=New', 'allow_override=assigned_to,tracker', 'unknown_user=accept'])!;
    assert.deepEqual(t.params, { project: 'p1', type: 'Bug', category: 'Docs', priority: 'High', status: 'New', allow_override: ['assignee', 'type'], no_permission_check: true, require_dmarc: false, truncate: [] });
    assert.equal(deliverOf(['pop3', 'username=u', 'password=p', 'no_permission_check=1'])![0].params.no_permission_check, true);
    assert.throws(() => fetchOptions(['pop3', 'username=u', 'password=p', 'unknown_user=create']), /Postroom creates no users from mail/);
    assert.throws(() => fetchOptions(['pop3', 'username=u', 'password=p', 'allow_override=colour']), /'colour' is not an attribute/);
    assert.throws(() => fetchOptions(['pop3', 'username=u', 'password=p', 'project=x', '--route', 'r']), /one of them/);
  });

  it("a route's allow_override takes assigned_to (the original's own example) as assignee", () => {
    assert.deepEqual(workpackageParams.parse({ project: 'p', allow_override: 'assigned_to, fixed_version' }).allow_override, ['assignee', 'version']);
  });
});
