// Documentation highlighting: Shiki, loaded with the generated grammar, colours the ```nnet blocks of
// spec/language.md (compiler/editor/highlight.ts, npm run docs:html).
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { markdownToHtml } from "../../compiler/editor/highlight.js";
import { ROOT } from "../helpers.js";

/** The colour Shiki gave the first token spelled `word` (null when it is plain text). */
function colourOf(html: string, word: string): string | null {
  const m = new RegExp(`<span style="color:(#[0-9A-Fa-f]{6})">\\s*${word}</span>`).exec(html);
  return m ? m[1]! : null;
}

test("the reference's nnet blocks are highlighted from the grammar", async () => {
  const md = readFileSync(path.join(ROOT, "spec/language.md"), "utf8");
  const html = await markdownToHtml(md, "The .nnet language");
  const blocks = html.match(/<pre class="shiki/g) ?? [];
  assert.is(blocks.length, [...md.matchAll(/^```nnet(?:-fragment)?(?:\s.*)?$/gm)].length, "every nnet block goes through Shiki");
  const keyword = colourOf(html, "model");
  const layer = colourOf(html, "dense");
  const plain = /<pre class="shiki[^"]*" style="background-color:#[0-9a-fA-F]+;color:(#[0-9a-fA-F]+)"/.exec(html)?.[1];
  assert.ok(keyword && layer && plain, `keyword ${keyword}, layer ${layer}, text ${plain}`);
  assert.is.not(keyword!.toLowerCase(), plain!.toLowerCase(), "a keyword is coloured, not plain text");
  assert.is.not(layer!.toLowerCase(), plain!.toLowerCase(), "a layer name is coloured, not plain text");
  assert.ok(html.includes('<h2 id="1-overview">1. Overview</h2>'));
  assert.ok(html.includes("<code>nnetc check mlp.nnet</code>"));
  assert.not.ok(html.includes("```nnet"), "no fence is left unrendered");
});

test.run();
