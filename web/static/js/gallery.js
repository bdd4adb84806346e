// gallery.js: the grid of the caller's images, newest first, a page of 50
// at a time as one scrolls (cursor paging), with search, source filter,
// sort and the count.

import { call, thumbURL } from "./api.js";
import { $, el, show, clear, debounce } from "./dom.js";

const PAGE = 50;

let state = { cursor: null, done: false, loading: false, total: 0, generation: 0 };
let openDetail = () => {};
let observer;

/** altText names the image: its prompt for generations, else its filename. */
export function altText(img) {
  return img.prompt ? `${img.prompt} (${img.originalFilename})` : img.originalFilename || "image " + img.id;
}

function tile(img, eager) {
  const w = img.width || 1, h = img.height || 1;
  const picture = el("img", {
    src: thumbURL(img), alt: altText(img), loading: eager ? "eager" : "lazy", decoding: "async",
    width: w, height: h,
  });
  const button = el("button", { type: "button", class: "tile", "data-id": img.id, onclick: () => openDetail(img, button) }, picture);
  return el("li", { "data-id": img.id }, button);
}

function query() {
  const q = new URLSearchParams({ pageSize: String(PAGE) });
  const search = $("search").value.trim();
  if (search) q.set("search", search);
  if ($("source").value) q.set("source", $("source").value);
  if ($("sort").value !== "desc") q.set("sort", $("sort").value);
  if (state.cursor) q.set("cursor", state.cursor);
  return q;
}

function setCount(total) {
  state.total = total;
  const filtered = $("search").value.trim() || $("source").value;
  $("count").textContent = `${total} image${total === 1 ? "" : "s"}${filtered ? " match" : ""}`;
}

function updateEmpty() {
  const empty = state.done && $("grid").children.length === 0;
  const filtered = $("search").value.trim() || $("source").value;
  $("empty").textContent = filtered
    ? "No image matches. Try another search or source."
    : "No images yet. Upload some above, or generate them from a prompt.";
  show($("empty"), empty);
  show($("more"), !state.done);
}

/** loadMore fetches the next page and appends it. */
export async function loadMore() {
  if (state.loading || state.done) return;
  state.loading = true;
  const gen = state.generation;
  $("grid-status").textContent = "Loading…";
  try {
    const env = await call("GET", "/api/images?" + query());
    if (gen !== state.generation) return; // the filters changed meanwhile
    const frag = document.createDocumentFragment();
    const first = $("grid").children.length === 0; // the first screen loads at once
    for (const img of env.data) frag.append(tile(img, first));
    $("grid").append(frag);
    state.cursor = env.pagination.nextCursor;
    state.done = !state.cursor;
    setCount(env.pagination.totalItems);
    $("grid-status").textContent = "";
  } catch (err) {
    if (gen === state.generation) $("grid-status").textContent = "Could not load images: " + err.message;
  } finally {
    if (gen === state.generation) {
      state.loading = false;
      updateEmpty();
    }
  }
}

/** reload starts the listing again from the first page. */
export function reload() {
  state = { cursor: null, done: false, loading: false, total: 0, generation: state.generation + 1 };
  clear($("grid"));
  show($("empty"), false);
  return loadMore();
}

/** prepend shows a new image at the top, where it belongs in the listing. */
export function prepend(img) {
  const filtered = $("search").value.trim() || ($("source").value && $("source").value !== img.source);
  if (filtered || $("sort").value !== "desc") return;
  $("grid").prepend(tile(img));
  setCount(state.total + 1);
  updateEmpty();
}

/** remove takes a deleted image out of the grid. */
export function remove(id) {
  const li = $("grid").querySelector(`li[data-id="${CSS.escape(id)}"]`);
  if (li) {
    li.remove();
    setCount(Math.max(0, state.total - 1));
    updateEmpty();
  }
}

export function initGallery(onOpen) {
  openDetail = onOpen;
  $("search").addEventListener("input", debounce(reload, 250));
  $("source").addEventListener("change", reload);
  $("sort").addEventListener("change", reload);
  $("more").addEventListener("click", loadMore);
  observer = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) loadMore();
  }, { rootMargin: "800px" });
  observer.observe($("more"));
}
