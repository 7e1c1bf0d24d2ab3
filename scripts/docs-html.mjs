#!/usr/bin/env node
// npm run docs:html: spec/language.md as docs/language.html, its ```nnet blocks highlighted by Shiki from the
// generated TextMate grammar (compiler/editor/highlight.ts). Needs `npm run build` first.
import { mkdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { markdownToHtml } = await import(path.join(root, "dist/compiler/editor/highlight.js"));
const { writeFileAtomic } = await import(path.join(root, "dist/runtime/checkpoint/store.js"));
const html = await markdownToHtml(readFileSync(path.join(root, "spec/language.md"), "utf8"), "The .nnet language");
const out = path.join(root, "docs/language.html");
mkdirSync(path.dirname(out), { recursive: true });
writeFileAtomic(out, html);
console.log(`wrote ${path.relative(process.cwd(), out) || out}`);
