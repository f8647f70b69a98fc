import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileTemplate, strftime, TemplateError } from '../../src/routing/template.js';

const vars = {
  subject: 'Order ID:4711 urgent',
  messageFromAddress: 'jan@example.org',
  messageReplyToAddress: '',
  name: 'Jan Novak',
};
const render = (src: string, v: Record<string, string> = vars, now = new Date(2026, 0, 2, 3, 4, 5)) =>
  compileTemplate(src).render({ vars: v, now });

describe('templates', () => {
  it('copies text outside <% %> unchanged', () => {
    assert.equal(render('plain text, 100% sure > 5'), 'plain text, 100% sure > 5');
  });

  it('substitutes a variable', () => {
    assert.equal(render('Dear <%name%>!'), 'Dear Jan Novak!');
    assert.equal(render('<% name %>'), 'Jan Novak', 'spaces inside the delimiters are allowed');
  });

  it('renders a missing variable as empty', () => {
    assert.equal(render('[<%dept%>]'), '[]');
  });

  it('takes the first non-empty of a fallback chain, left to right', () => {
    const t = "<%messageReplyToAddress|messageFromAddress|'lamp_room@example.org'%>";
    assert.equal(render(t), 'jan@example.org');
    assert.equal(render(t, { messageReplyToAddress: 'reply@example.org', messageFromAddress: 'jan@example.org' }), 'reply@example.org');
    assert.equal(render(t, {}), 'lamp_room@example.org');
  });

  it('reads quotes and pipes inside a literal as text', () => {
    assert.equal(render("<%dept|'a|b \\'c\\''%>", {}), "a|b 'c'");
  });

  it('formats now with strftime conversions', () => {
    assert.equal(render('<%now:%Y-%m-%d %H:%M%>'), '2026-01-02 03:04');
    assert.equal(render('<%now:%F %T %%%>'), '2026-01-02 03:04:05 %');
    assert.equal(strftime(new Date(2026, 0, 2), '%j %a %b %y'), '002 Fri Jan 26');
  });

  it('extracts the first group of a regex, or renders empty so a fallback can follow', () => {
    assert.equal(render('<%subject~/ID:(\\d+)/%>'), '4711');
    assert.equal(render('<%subject~/ID:(\\d+)/%>', { subject: 'no id here' }), '');
    assert.equal(render("<%subject~/ID:(\\d+)/|'none'%>", { subject: 'no id here' }), 'none');
    assert.equal(render('<%subject~/urgent/i%>'), 'urgent', 'no group: the whole match');
    assert.equal(render('<%subject~/[/%]>(x)/%>', { subject: '/%>x' }), 'x', 'a regex may contain %> and / in a class');
  });

  it('refuses unknown constructs at compile time', () => {
    for (const bad of ['<%name', '<%%>', '<%name.length%>', '<%name()%>', "<%'open%>", '<%now:%Q%>', '<%subject~ID%>', '<%a b%>', '<%subject~/x/g%>']) {
      assert.throws(() => compileTemplate(bad), TemplateError, bad);
    }
  });

  it('refuses an unknown variable name when the known names are given', () => {
    assert.throws(() => compileTemplate('<%subjet%>', ['number']), /unknown variable 'subjet'/);
    assert.equal(compileTemplate('<%number%> <%subject%>', ['number']).variables.join(','), 'number,subject');
  });

  it("never evaluates <%__import__('os').system('id')%>: it is a compile error", () => {
    assert.throws(() => compileTemplate("<%__import__('os').system('id')%>"), TemplateError);
    assert.throws(() => compileTemplate("x <%__import__('os').system('id')%> y", ['name']), TemplateError);
  });

  it('never evaluates ${process.exit()}: it is text', () => {
    // If this were evaluated the test process would exit and the run would fail.
    assert.equal(render('${process.exit()}'), '${process.exit()}');
    assert.equal(render('a ${process.exit()} <%name%>'), 'a ${process.exit()} Jan Novak');
  });

  it("never evaluates {{constructor.constructor('return process')()}}: it is text", () => {
    const s = "{{constructor.constructor('return process')()}}";
    assert.equal(render(s), s);
    assert.equal(typeof render(s), 'string');
  });

  it('does not read inherited properties: <%constructor%> and <%__proto__%> are empty', () => {
    assert.equal(render('<%constructor%>|<%__proto__%>|<%toString%>'), '||');
  });
});
