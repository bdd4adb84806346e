// upload.js: several files by drag and drop or the picker, two at a time,
// each with its own progress bar and, when refused, its own message.

import { upload, uploadMessage } from "./api.js";
import { $, el, announce, humanBytes } from "./dom.js";
import { prepend } from "./gallery.js";

const PARALLEL = 2;

let maxFileSize = 0; // the service's limit, from its page configuration

function row(file) {
  const bar = el("progress", { max: "1", value: "0", "aria-label": `Upload of ${file.name}` });
  const status = el("span", { class: "upload-status", text: "waiting" });
  const li = el("li", { class: "upload" }, el("span", { class: "upload-name", text: file.name }),
    el("span", { class: "upload-size", text: humanBytes(file.size) }), bar, status);
  return { li, bar, status };
}

function refuse(r, message) {
  r.li.classList.add("failed");
  r.status.textContent = "";
  r.li.append(el("p", { class: "error", role: "alert", text: message }));
}

async function send(file, r) {
  if (maxFileSize > 0 && file.size > maxFileSize) {
    // Not sent: the service would refuse it after the whole upload.
    refuse(r, `“${file.name}” is ${humanBytes(file.size)}, more than this service accepts (${humanBytes(maxFileSize)} at most).`);
    return false;
  }
  r.status.textContent = "uploading";
  try {
    const img = await upload(file, (f) => { r.bar.value = f; }).done;
    r.bar.value = 1;
    r.status.textContent = "done";
    r.li.classList.add("ok");
    prepend(img);
    return true;
  } catch (err) {
    refuse(r, uploadMessage(err, file.name));
    return false;
  }
}

/** uploadFiles uploads every file, PARALLEL at a time. */
export async function uploadFiles(files) {
  const list = $("upload-list");
  const jobs = [...files].map((f) => ({ file: f, r: row(f) }));
  for (const j of jobs) list.prepend(j.r.li);
  let next = 0, ok = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const j = jobs[next++];
      if (await send(j.file, j.r)) ok++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, jobs.length) }, worker));
  announce(`${ok} of ${jobs.length} file${jobs.length === 1 ? "" : "s"} uploaded`);
}

export function initUpload(config = {}) {
  maxFileSize = Number(config.maxFileSize) || 0;
  const input = $("file-input");
  input.addEventListener("change", () => {
    if (input.files.length) uploadFiles(input.files).finally(() => { input.value = ""; });
  });
  const zone = $("dropzone");
  const over = (on) => (e) => { e.preventDefault(); zone.classList.toggle("over", on); };
  zone.addEventListener("dragenter", over(true));
  zone.addEventListener("dragover", over(true));
  zone.addEventListener("dragleave", over(false));
  zone.addEventListener("drop", (e) => {
    over(false)(e);
    if (e.dataTransfer && e.dataTransfer.files.length) uploadFiles(e.dataTransfer.files);
  });
}
