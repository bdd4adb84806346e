// dom.js: building nodes. Text only ever goes in through textContent or
// attributes, never as HTML (the CSP's Trusted Types would refuse it
// anyway), so a filename like <img src=x onerror=alert(1)>.png stays text.

/** el("p", {class: "hint"}, "text", child...) makes an element. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    node.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return node;
}

export const $ = (id) => document.getElementById(id);

export function show(node, visible = true) {
  node.hidden = !visible;
}

/** clear removes every child of node. */
export function clear(node) {
  node.replaceChildren();
}

/** announce puts a short message in a live region for screen readers. */
export function announce(text) {
  const live = $("announcer");
  live.textContent = "";
  // A new text node after a tick is read even when the text repeats.
  setTimeout(() => { live.textContent = text; }, 30);
}

export function humanBytes(n) {
  if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + " MiB";
  if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + " KiB";
  return n + " B";
}

export function formatDate(iso) {
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

/** debounce calls fn once input has been quiet for ms. */
export function debounce(fn, ms) {
  let t;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}
