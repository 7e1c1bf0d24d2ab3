// `nnetc data`: a dataset's samples as the model gets them (runtime/data/show.ts), one JSON line each —
// WordPiece ids with their tokens, SpamAssassin labels with their class names — and its usage errors.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { mailBody } from "../../runtime/data/steps.js";
import { ROOT, runNode } from "../helpers.js";

const CLI = path.join(ROOT, "dist/nnetc.mjs");
const dir = mkdtempSync(path.join(tmpdir(), "nnetc-data-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const NNET = `dataset mail {
  source jsonl(path: "mail.jsonl")
  field ids: i32[8] = text -> tokenize(vocab: "vocab.txt", max_len: 8)
  field mask: i32[8] = text -> tokenize(vocab: "vocab.txt", max_len: 8) -> attention_mask
  field label: i32 = label
}
`;

test("data: WordPiece ids with their tokens and attention mask, shaped as declared, from --start for -n samples", async () => {
  writeFileSync(path.join(dir, "vocab.txt"), ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "free", "money", "!", "meet", "##ing", "at", "10"].join("\n") + "\n");
  writeFileSync(path.join(dir, "mail.jsonl"), ['{"text": "FREE money!!", "label": 1}', '{"text": "Meeting at 10", "label": 0}', '{"text": "Café?", "label": 0}'].join("\n") + "\n");
  writeFileSync(path.join(dir, "mail.nnet"), NNET);
  const r = await runNode([CLI, "data", path.join(dir, "mail.nnet"), "--start", "1", "-n", "5"]);
  assert.is(r.code, 0, r.stderr);
  assert.is((r.stderr.match(/WordPiece vocabulary of 11 tokens/g) ?? []).length, 1, "two fields of one vocab.txt read it once");
  assert.equal(
    r.stdout.trim().split("\n").map((l) => JSON.parse(l)),
    [
      { split: "train", index: 1, ids: [2, 7, 8, 9, 10, 3, 0, 0], "ids.tokens": ["[CLS]", "meet", "##ing", "at", "10", "[SEP]"], mask: [1, 1, 1, 1, 1, 1, 0, 0], label: 0 },
      { split: "train", index: 2, ids: [2, 1, 1, 3, 0, 0, 0, 0], "ids.tokens": ["[CLS]", "[UNK]", "[UNK]", "[SEP]"], mask: [1, 1, 1, 1, 0, 0, 0, 0], label: 0 },
    ],
  );
});

test("data: SpamAssassin's test split, labels named by the source's classes", async () => {
  const r = await runNode([CLI, "data", path.join(ROOT, "models/text_classifier.nnet"), "--split", "test", "-n", "3"]);
  assert.is(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.is(lines.length, 3);
  for (const l of lines) {
    assert.is(l.split, "test");
    assert.is((l.tokens as number[]).length, 200);
    assert.ok((l["tokens.tokens"] as string[]).length > 0);
    assert.is(l["label.class"], ["ham", "spam"][l.label as number]);
  }
});

test("data: attention_mask anywhere but after tokenize is refused, naming the field", async () => {
  const file = path.join(dir, "bad.nnet");
  writeFileSync(file, NNET.replace("field label: i32 = label", "field label: i32 = label -> attention_mask"));
  const r = await runNode([CLI, "data", file]);
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /field "label": attention_mask marks the padding of token ids: put it right after tokenize\(…\)/);
});

test("mail_body: an e-mail's Subject (folded lines joined) and body, the other headers dropped; other text unchanged", () => {
  const mail = "From spam@example.com  Thu Aug 22 12:36:23 2002\nReturn-Path: <spam@example.com>\nReceived: from localhost (localhost [127.0.0.1])\n\tby phobos.labs (Postfix)\nSubject: WIN a FREE\n iPhone now\nX-Mailer: Foo\n\nClick here!\n\nThanks";
  assert.is(mailBody(mail), "WIN a FREE iPhone now\nClick here!\n\nThanks");
  assert.is(mailBody("Return-Path: <a@b>\r\n\r\nno subject"), "no subject");
  assert.is(mailBody("just a sentence.\n\nAnd another: with a colon."), "just a sentence.\n\nAnd another: with a colon.");
  assert.is(mailBody("one line"), "one line");
});

test("mail_body(headers): the named headers the message has, in the list's order, as Name: value lines, then the body", () => {
  const mail = "From spam@example.com  Thu Aug 22 12:36:23 2002\nReceived: from a\n\tby b\nFrom: Spammer <s@x.com>\nTo: you@y.org,\n  them@z.org\nSubject: WIN\nX-Mailer: Foo\n\nClick here!";
  assert.is(mailBody(mail, ["Subject", "from", "To", "List-Id"]), "Subject: WIN\nfrom: Spammer <s@x.com>\nTo: you@y.org, them@z.org\nClick here!");
  assert.is(mailBody(mail, []), "Click here!", "no header kept: the body alone");
  assert.is(mailBody(mail, ["Received"]), "Received: from a by b\nClick here!", "folded lines joined");
  assert.is(mailBody("Cc: a\nCc: b\n\nhi", ["Cc"]), "Cc: a\nCc: b\nhi", "a header given twice keeps both");
  assert.is(mailBody("no headers here\n\nbody", ["Subject"]), "no headers here\n\nbody", "text that is no e-mail is unchanged");
});

test("mail_body(headers), property: every kept line is a named header's, in list order; the body follows whole; nothing else of the header block", () => {
  const name = fc.constantFrom("From", "To", "Subject", "Received", "X-Spam", "List-Id");
  const value = fc.stringMatching(/^[a-z0-9 <>@.]{0,12}$/).map((v) => v.trim()).filter((v) => v.length > 0);
  fc.assert(
    fc.property(fc.array(fc.tuple(name, value), { minLength: 1, maxLength: 8 }), fc.array(name, { maxLength: 4 }), fc.stringMatching(/^[a-z ]{0,20}$/), (hdrs, keep, body) => {
      const mail = `${hdrs.map(([n, v]) => `${n}: ${v}`).join("\n")}\n\n${body}`;
      const out = mailBody(mail, keep);
      const expected = keep.flatMap((k) => hdrs.filter(([n]) => n.toLowerCase() === k.toLowerCase()).map(([, v]) => `${k}: ${v}`));
      assert.is(out, expected.length ? `${expected.join("\n")}\n${body}` : body);
    }),
    { numRuns: 300 },
  );
});

test("data: mail_body's headers must be header names: a clear error naming the field, exit 2, no stack", async () => {
  writeFileSync(path.join(dir, "one_vocab.txt"), ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "free"].join("\n") + "\n");
  writeFileSync(path.join(dir, "one_mail.jsonl"), '{"text": "Subject: hi\\n\\nFREE", "label": 1}\n');
  writeFileSync(path.join(dir, "bad_headers.nnet"), NNET.replace("mail.jsonl", "one_mail.jsonl").replaceAll("vocab.txt", "one_vocab.txt").replace('field ids: i32[8] = text -> tokenize', 'field ids: i32[8] = text -> mail_body(headers: ["Sub ject"]) -> tokenize'));
  const r = await runNode([CLI, "data", path.join(dir, "bad_headers.nnet")]);
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /field "ids": mail_body's headers must be a list of header names such as \["From", "Subject"\], got \["Sub ject"\]/);
  assert.not.match(r.stderr, /at .*\.js:\d+/);
});

test("data: mail_body before tokenize spends max_len on the message: the SpamAssassin samples start with their kept headers, then the body", async () => {
  const r = await runNode([path.join(ROOT, "dist/nnetc.mjs"), "data", path.join(ROOT, "models/minilm_spam.nnet"), "-n", "1"]);
  assert.is(r.code, 0, r.stderr);
  const tokens = (JSON.parse(r.stdout.trim().split("\n")[0]!) as Record<string, string[]>)["ids.tokens"]!.join(" ");
  assert.ok(tokens.startsWith("[CLS] from : robert el ##z"), tokens);
  assert.match(tokens, /subject : re : new sequences window/);
  const head = tokens.slice(0, tokens.indexOf("subject :"));
  assert.not.match(head, /received|message - id|delivered - to|date :/, "the routing headers are dropped");
  // Without headers: the Subject's value alone, then the body (models/minibert.nnet).
  const r2 = await runNode([path.join(ROOT, "dist/nnetc.mjs"), "data", path.join(ROOT, "models/minibert.nnet"), "--dataset", "spam_words", "-n", "1"]);
  assert.is(r2.code, 0, r2.stderr);
  assert.equal((JSON.parse(r2.stdout.trim().split("\n")[0]!) as Record<string, string[]>)["ids.tokens"]!.slice(0, 5), ["re", ":", "new", "sequences", "window"]);
});

test("data: usage errors are one line, exit code 2", async () => {
  const file = path.join(dir, "mail.nnet");
  const cases: [string[], RegExp][] = [
    [["-n", "0"], /--count needs a positive integer/],
    [["--split", "valid"], /--split valid: choose train or test/],
    [["--start", "3"], /--start 3: the train split of dataset "mail" has 3 samples \(0 to 2\)/],
    [["--split", "test"], /dataset "mail" has no test split/],
    [["--dataset", "nope"], /--dataset nope: .* has no such dataset \(it has mail\)/],
    [["-n", "10001"], /-n 10001: give a number of samples from 1 to 10000/],
  ];
  for (const [flags, message] of cases) {
    const r = await runNode([CLI, "data", file, ...flags]);
    assert.is(r.code, 2, `${flags.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.not.match(r.stderr, /at .*\.js:\d+/);
    assert.is(r.stdout, "");
  }
});

test.run();
