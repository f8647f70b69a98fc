import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDate, parseDoneRatio, extractKeyLines } from '../../src/domain/tracker/keys.js';
import { htmlToPlain, replyText, truncateAt } from '../../src/mime/reply.js';

describe('replyText: what the person wrote, without what they replied to', () => {
  const cases: [string, string, string][] = [
    ['> quoting is dropped, inline answers stay', 'Yes.\n> Can you?\nTomorrow.\n> When?\n', 'Yes.\nTomorrow.'],
    ['a Gmail attribution wrapped over two lines', 'Fine.\n\nOn Mon, 2 Mar 2026 at 10:00, Alice Adams <alice@example.org>\nwrote:\n> old\n', 'Fine.'],
    ['a German attribution', 'Gut.\n\nAm 02.03.2026 um 10:00 schrieb Alice <a@example.org>:\n> alt\n', 'Gut.'],
    ['Outlook: -----Original Message----- and no >', 'Done.\r\n\r\n-----Original Message-----\r\nFrom: A\r\nSent: Monday\r\nTo: B\r\nSubject: x\r\n\r\nold text\r\n', 'Done.'],
    ['Outlook: a From:/Sent:/To:/Subject: block after an underscore line', 'Ok.\n\n________________________________\nFrom: Alice <a@example.org>\nSent: Monday, March 2, 2026 10:00\nTo: Bob\nSubject: RE: x\n\nold', 'Ok.'],
    ['Outlook: the header block alone', 'Ok.\n\nFrom: Alice <a@example.org>\nDate: Monday\nTo: Bob\nSubject: x\n\nold', 'Ok.'],
    ['a From: line in the text is not a header block', 'From: the basement, it smells.\nPlease look.', 'From: the basement, it smells.\nPlease look.'],
    ['the signature after "-- " goes', 'Thanks.\n-- \nBob\n+1 555', 'Thanks.'],
    ['"--" without its space counts too', 'Thanks.\n--\nBob', 'Thanks.'],
    ['"On it" is not an attribution', 'On it.\nWill report.', 'On it.\nWill report.'],
  ];
  for (const [name, input, want] of cases) it(name, () => assert.equal(replyText(input), want));
});

describe('truncateAt', () => {
  it('drops the delimiter line and everything after it, quoted or not', () => {
    assert.equal(truncateAt('a\nb\n> --Truncate here--\nc', ['--Truncate here--']), 'a\nb');
    assert.equal(truncateAt('a\n  --Truncate here--  \nc', ['--Truncate here--']), 'a');
  });
  it('leaves text without a delimiter (and a delimiter only inside a line) alone', () => {
    assert.equal(truncateAt('a --Truncate here-- b\nc', ['--Truncate here--']), 'a --Truncate here-- b\nc');
    assert.equal(truncateAt('a\nb', []), 'a\nb');
  });
});

describe('Key: value lines', () => {
  it('recognises standard and custom keys in any case; the rest stays', () => {
    const r = extractKeyLines('STATUS: Closed\nfoo: bar\n  Due Date :  2026-01-02 \nSeverity: major\nStatus: New\n\nText.', new Map([['Severity', 'cf:1']]));
    assert.deepEqual(r.lines, [
      { attr: 'status', key: 'STATUS', value: 'Closed' },
      { attr: 'due_date', key: 'Due Date', value: '2026-01-02' },
      { attr: 'cf:1', key: 'Severity', value: 'major' },
    ]);
    assert.equal(r.rest, 'foo: bar\n\nText.');
  });
  it('a key without a value is not recognised', () => assert.equal(extractKeyLines('Status:\nx').rest, 'Status:\nx'));
  it('dates', () => {
    assert.deepEqual(parseDate('2026-3-9'), { date: '2026-03-09' });
    assert.deepEqual(parseDate('9.3.2026'), { date: '2026-03-09' });
    assert.deepEqual(parseDate('Sept. 9, 2026'), { date: '2026-09-09' });
    assert.deepEqual(parseDate('9 September 2026'), { date: '2026-09-09' });
    assert.ok('error' in parseDate('2026-02-29'));
    assert.ok('error' in parseDate('9/3/2026'));
    assert.ok('error' in parseDate('tomorrow'));
  });
  it('done ratio', () => {
    assert.deepEqual(parseDoneRatio('100%'), { ratio: 100 });
    assert.ok('error' in parseDoneRatio('101'));
    assert.ok('error' in parseDoneRatio('-5'));
  });
});

describe('htmlToPlain (fallback when the parser stored no text)', () => {
  it('paragraphs and breaks become lines, entities decode, blockquotes are quoted', () => {
    assert.equal(
      htmlToPlain('<style>p{}</style><p>Status: Closed</p><p>A &amp; B<br>C&#33;</p><blockquote><p>old</p></blockquote>'),
      'Status: Closed\nA & B\nC!\n\n> old',
    );
  });
});
