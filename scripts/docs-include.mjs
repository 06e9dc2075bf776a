#!/usr/bin/env node
// Rewrites every `<!-- include: path -->` code block in docs/*.md with the file's current content, so the docs quote
// the example files exactly (examples/getting-started's test fails when they drift). Run after editing an example.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const docs = path.join(root, 'docs');
for (const f of fs.readdirSync(docs).filter((x) => x.endsWith('.md'))) {
  const file = path.join(docs, f);
  const before = fs.readFileSync(file, 'utf8');
  const after = before.replace(
    /(<!-- include: (\S+) -->\n```\w+\n)[\s\S]*?```/g,
    (_m, head, src) => `${head}${fs.readFileSync(path.join(root, src), 'utf8')}\`\`\``,
  );
  if (after !== before) {
    fs.writeFileSync(file, after);
    console.log(`updated docs/${f}`);
  }
}
