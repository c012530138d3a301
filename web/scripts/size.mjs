// Prints the gzipped JavaScript each page loads and fails when the exam's page (index.html, staff pages loaded
// on demand excluded) exceeds its budget: 200 KB gzipped.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const BUDGET = 200 * 1024;
const dist = join(import.meta.dirname, "..", "dist");
const manifest = JSON.parse(readFileSync(join(dist, ".vite", "manifest.json"), "utf8"));

/** The JavaScript files a page loads at once: its entry and everything it imports statically. */
function loaded(key, seen = new Set()) {
  const chunk = manifest[key];
  if (!chunk || seen.has(key)) return seen;
  seen.add(key);
  for (const child of chunk.imports ?? []) loaded(child, seen);
  return seen;
}

function gzipped(key) {
  const file = manifest[key].file;
  return file.endsWith(".js") ? gzipSync(readFileSync(join(dist, file)), { level: 9 }).length : 0;
}

let examPage = 0;
for (const [page, entry] of [["the exam (/)", "index.html"], ["the API explorer (/docs)", "docs.html"]]) {
  const size = [...loaded(entry)].reduce((total, key) => total + gzipped(key), 0);
  console.log(`${page}: ${(size / 1024).toFixed(1)} KB of JavaScript gzipped`);
  if (entry === "index.html") examPage = size;
}
for (const [key, chunk] of Object.entries(manifest)) {
  if (chunk.isDynamicEntry) console.log(`  on demand, ${chunk.name}: ${(gzipped(key) / 1024).toFixed(1)} KB gzipped`);
}
console.log(`budget of the exam's page: ${BUDGET / 1024} KB`);
if (examPage > BUDGET) {
  console.error("the exam's page is over its JavaScript budget");
  process.exit(1);
}
