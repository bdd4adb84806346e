// Reads a file's C2PA manifest store with c2pa-rs (npm @contentauth/c2pa-wasm)
// and prints, as JSON, the manifest store and its validation results for the
// Go tests to check.
//
// Usage: C2PA_WASM=<dir of @contentauth/c2pa-wasm> node c2pa-read.mjs MEDIA-TYPE FILE [TRUST-ANCHORS-PEM]
// Trust is verified (c2pa-rs's default); with TRUST-ANCHORS-PEM those roots are trusted.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const pkg = process.env.C2PA_WASM;
const c2pa = await import(pathToFileURL(join(pkg, 'pkg', 'c2pa.js')).href);
// In Node the wasm is not fetched: hand it over.
c2pa.initSync({ module: readFileSync(join(pkg, 'pkg', 'c2pa_bg.wasm')) });

const [mediaType, file, anchors] = process.argv.slice(2);
const settings = anchors ? { trust: { trust_anchors: readFileSync(anchors, 'utf8') } } : {};
let out;
try {
  const reader = await c2pa.WasmReader.fromBytes(mediaType, new Uint8Array(readFileSync(file)), JSON.stringify(settings));
  out = { found: true, store: JSON.parse(reader.json()) };
} catch (e) {
  out = { found: false, error: String((e && e.message) || e) };
}
process.stdout.write(JSON.stringify(out));
