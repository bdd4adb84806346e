// generate.js: the generation form, built from GET /api/images/models
// (providers, their models, each model's ratios, count, seed and negative
// prompt support), an async job followed until it ends, then its images.

import { call, thumbURL } from "./api.js";
import { $, el, show, clear, announce } from "./dom.js";
import { altText, prepend } from "./gallery.js";

let providers = [];

function currentModel() {
  const p = providers.find((p) => p.provider === $("provider").value);
  return p && p.models.find((m) => m.id === $("model").value);
}

function fillSelect(select, values, labels = values) {
  const keep = select.value;
  clear(select);
  values.forEach((v, i) => select.append(el("option", { value: v, text: labels[i] })));
  if (values.includes(keep)) select.value = keep;
}

function onProvider() {
  const p = providers.find((p) => p.provider === $("provider").value);
  const models = p ? p.models : [];
  fillSelect($("model"), models.map((m) => m.id), models.map((m) => m.description ? `${m.id} — ${m.description}` : m.id));
  onModel();
}

function onModel() {
  const m = currentModel();
  if (!m) return;
  fillSelect($("aspect"), m.aspectRatios);
  $("n").max = String(m.maxImages || 1);
  if (Number($("n").value) > m.maxImages) $("n").value = String(m.maxImages);
  if (m.maxPromptLength) $("prompt").maxLength = m.maxPromptLength;
  show($("seed-field"), m.supportsSeed);
  show($("negative-field"), m.supportsNegativePrompt);
}

export async function loadModels() {
  try {
    providers = (await call("GET", "/api/images/models")).data;
  } catch (err) {
    $("generate-status").textContent = "Generation is not available: " + err.message;
    return;
  }
  fillSelect($("provider"), providers.map((p) => p.provider), providers.map((p) => p.default ? `${p.provider} (default)` : p.provider));
  onProvider();
}

function request() {
  const m = currentModel();
  const body = { prompt: $("prompt").value.trim(), provider: $("provider").value, model: $("model").value, aspectRatio: $("aspect").value, n: Number($("n").value) || 1 };
  if (m && m.supportsSeed && $("seed").value !== "") body.seed = Number($("seed").value);
  if (m && m.supportsNegativePrompt && $("negative").value.trim()) body.negativePrompt = $("negative").value.trim();
  for (const k of ["artStyle", "artDescription", "themeStyle", "themeDescription"]) {
    const v = $(k).value.trim();
    if (v) body[k] = v;
  }
  return body;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const statusWords = { queued: "Queued…", running: "Generating…", succeeded: "Done", failed: "Failed" };

async function run(e) {
  e.preventDefault();
  const status = $("generate-status"), results = $("generate-results"), button = $("generate");
  const body = request();
  if (!body.prompt) {
    status.textContent = "Write a prompt first.";
    $("prompt").focus();
    return;
  }
  button.disabled = true;
  clear(results);
  status.classList.remove("error");
  const started = Date.now();
  try {
    let job = (await call("POST", "/api/images/generate", { body, headers: { Prefer: "respond-async" } })).data;
    while (job.status === "queued" || job.status === "running") {
      status.textContent = `${statusWords[job.status]} (${Math.round((Date.now() - started) / 1000)} s)`;
      await sleep(job.status === "queued" ? 500 : 700);
      job = (await call("GET", "/api/images/generations/" + encodeURIComponent(job.id))).data;
    }
    if (job.status === "failed") {
      throw new Error(job.error ? job.error.message : "The generation failed.");
    }
    status.textContent = `Done: ${job.images.length} image${job.images.length === 1 ? "" : "s"} in ${((Date.now() - started) / 1000).toFixed(1)} s`;
    for (const img of job.images) {
      results.append(el("li", {}, el("img", { src: thumbURL(img), alt: altText(img), width: img.width, height: img.height })));
      prepend(img);
    }
    announce(status.textContent);
  } catch (err) {
    status.classList.add("error");
    status.textContent = "The generation failed: " + err.message;
  } finally {
    button.disabled = false;
  }
}

export function initGenerate() {
  $("provider").addEventListener("change", onProvider);
  $("model").addEventListener("change", onModel);
  $("generate-form").addEventListener("submit", run);
}
