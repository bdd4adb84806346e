// detail.js: one image large, its metadata (provenance included, where
// present), copy URL, download, open the original, and delete after a
// confirmation.

import { call } from "./api.js";
import { $, el, clear, announce, humanBytes, formatDate } from "./dom.js";
import { altText, remove } from "./gallery.js";

let current = null;
let returnFocus = null;

function addRow(dl, label, value) {
  if (value === undefined || value === null || value === "") return;
  dl.append(el("dt", { text: label }), el("dd", { text: String(value) }));
}

function provenanceText(p) {
  if (typeof p !== "object") return String(p);
  return Object.entries(p).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join("; ");
}

export function openDetail(img, from) {
  current = img;
  returnFocus = from || null;
  const big = $("detail-img");
  // The large variant where the service makes one (never upscaled, so at
  // most the original's size), else the original itself.
  big.src = (img.variants && img.variants.large) || img.url;
  big.alt = altText(img);
  big.width = img.width || 0;
  big.height = img.height || 0;
  $("detail-title").textContent = img.originalFilename || img.id;
  const dl = $("detail-meta");
  clear(dl);
  addRow(dl, "Type", img.mediaType);
  addRow(dl, "Size", `${humanBytes(img.fileSize)} (${img.fileSize} bytes)`);
  addRow(dl, "Dimensions", img.width && `${img.width} × ${img.height}`);
  addRow(dl, "Created", formatDate(img.createdAt));
  addRow(dl, "Source", img.source === "generation" ? "generated" : img.source);
  addRow(dl, "Prompt", img.prompt);
  addRow(dl, "Revised prompt", img.revisedPrompt);
  addRow(dl, "Negative prompt", img.negativePrompt);
  addRow(dl, "Provider", img.provider);
  addRow(dl, "Model", img.model);
  addRow(dl, "Aspect ratio", img.aspectRatio);
  addRow(dl, "Seed", img.seed);
  if (img.provenance) addRow(dl, "Provenance", provenanceText(img.provenance));
  addRow(dl, "SHA-256", img.sha256);
  addRow(dl, "Id", img.id);
  $("download").href = img.url;
  $("download").download = img.originalFilename || img.id;
  $("open-original").href = img.url;
  $("copy-status").textContent = "";
  $("detail").showModal();
}

async function copyURL() {
  try {
    await navigator.clipboard.writeText(current.url);
    $("copy-status").textContent = "URL copied";
  } catch {
    $("copy-status").textContent = current.url; // shown to copy by hand
  }
}

async function confirmDelete() {
  $("confirm-text").textContent = `“${current.originalFilename}” will be deleted, and its URL will stop working. This cannot be undone.`;
  $("confirm-error").textContent = "";
  $("confirm-delete").showModal();
  $("confirm-cancel").focus();
}

async function doDelete() {
  const img = current;
  try {
    await call("DELETE", "/api/images/" + encodeURIComponent(img.id));
  } catch (err) {
    $("confirm-error").textContent = "Not deleted: " + err.message;
    return;
  }
  $("confirm-delete").close();
  $("detail").close();
  remove(img.id);
  announce(`Deleted ${img.originalFilename}`);
}

export function initDetail() {
  $("copy-url").addEventListener("click", copyURL);
  $("delete").addEventListener("click", confirmDelete);
  $("close-detail").addEventListener("click", () => $("detail").close());
  $("confirm-cancel").addEventListener("click", () => $("confirm-delete").close());
  $("confirm-ok").addEventListener("click", doDelete);
  $("detail").addEventListener("close", () => {
    $("detail-img").removeAttribute("src");
    if (returnFocus && returnFocus.isConnected) returnFocus.focus();
  });
}
