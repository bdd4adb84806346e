// api.js: calls to the imaged API with the bearer token, the envelope's
// errors as ApiError, uploads through XMLHttpRequest for their progress, and
// error messages in words a person understands.

import { getToken, signOut } from "./auth.js";

export class ApiError extends Error {
  constructor(status, errorCode, message, retryAfter) {
    super(message || "The service answered " + status);
    this.status = status;
    this.errorCode = errorCode || "";
    this.retryAfter = retryAfter || 0;
  }
}

function headers(extra = {}) {
  const h = { Accept: "application/json", ...extra };
  const tok = getToken();
  if (tok) h.Authorization = "Bearer " + tok;
  return h;
}

function errorFrom(status, body, retryAfter) {
  const e = body && typeof body === "object" && body.success === false
    ? new ApiError(status, body.errorCode, body.message, retryAfter)
    : new ApiError(status, "", "The service answered " + status, retryAfter);
  if (status === 401) signOut("Your sign-in is no longer valid; sign in again.");
  return e;
}

/** call sends a request to the API and returns the whole success envelope. */
export async function call(method, path, { body, headers: extra } = {}) {
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers: headers(body === undefined ? extra : { "Content-Type": "application/json", ...extra }),
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "", "The service cannot be reached; check your connection.");
  }
  let env = null;
  try { env = await resp.json(); } catch { /* not JSON: a proxy's page */ }
  if (!resp.ok || !env || env.success !== true) {
    throw errorFrom(resp.status, env, Number(resp.headers.get("Retry-After")) || 0);
  }
  env.retryAfter = Number(resp.headers.get("Retry-After")) || 0;
  return env;
}

/**
 * upload sends one file (POST /api/media/upload), reporting progress as a
 * fraction, and resolves to the image object. xhr.abort() through the
 * returned handle cancels it.
 */
export function upload(file, onProgress) {
  const xhr = new XMLHttpRequest();
  const done = new Promise((resolve, reject) => {
    xhr.open("POST", "/api/media/upload");
    for (const [k, v] of Object.entries(headers())) xhr.setRequestHeader(k, v);
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = () => {
      const env = xhr.response;
      if (xhr.status === 201 && env && env.success) resolve(env.data);
      else reject(errorFrom(xhr.status, env, Number(xhr.getResponseHeader("Retry-After")) || 0));
    };
    xhr.onerror = () => reject(new ApiError(0, "", "The upload was interrupted: the service cannot be reached."));
    xhr.onabort = () => reject(new ApiError(0, "ABORTED", "Upload cancelled."));
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
  return { done, abort: () => xhr.abort() };
}

/** uploadMessage says in plain words why a file was not uploaded. */
export function uploadMessage(err, name) {
  switch (err.status) {
    case 415:
      return `“${name}” is not an image the service accepts: only PNG, JPEG, WebP and GIF files, complete and undamaged.`;
    case 413:
      return `“${name}” is too large for this service: ${err.message}`;
    case 401:
      return "Your sign-in is no longer valid; sign in again.";
    case 429:
    case 503:
      return "The service is busy; try again in a moment.";
  }
  return err.message;
}

/** thumbURL is the image's thumb variant where the service has variants. */
export function thumbURL(img) {
  const v = img.variants && (img.variants.thumb || img.variants.small);
  if (typeof v === "string") return v;
  if (v && typeof v.url === "string") return v.url;
  return img.url;
}
