// auth.js: the bearer token and how the page gets one: pasted, the
// development token of the embedded default, or OpenID Connect
// (authorization code with PKCE, as a public client).
//
// The token is kept in sessionStorage: it survives a reload of the tab but
// not the tab itself, is never sent by the browser on its own (unlike a
// cookie, so no cross-site request can use it), and is not shared with
// other tabs or sites. Script on the page could read it; the CSP allows no
// script but the page's own files, and nothing is ever inserted as HTML.

const TOKEN = "imaged.token";
const ID_TOKEN = "imaged.oidc.idToken"; // for the provider's logout (id_token_hint)
const PENDING = "imaged.oidc.pending";
const LOGOUT = "imaged.oidc.logout"; // the state of a logout under way

let listeners = [];

export function getToken() {
  return sessionStorage.getItem(TOKEN) || "";
}

export function onSignChange(fn) {
  listeners.push(fn);
}

/** setToken keeps tok; known says it was kept before (a reload). */
export function setToken(tok, known = false) {
  sessionStorage.setItem(TOKEN, tok.trim());
  for (const fn of listeners) fn(true, "", known);
}

/** signOut forgets the token; message says why, when it was not asked. */
export function signOut(message = "") {
  const had = getToken() !== "";
  sessionStorage.removeItem(TOKEN);
  sessionStorage.removeItem(ID_TOKEN);
  if (had || message) for (const fn of listeners) fn(false, message);
}

/**
 * signOutEverywhere forgets the token and, when it came from the OpenID
 * provider and its discovery offers an end_session_endpoint, ends the
 * provider's session too (RP-initiated logout: the browser goes there and
 * comes back to the page). It resolves to a message when the provider's
 * session could not be ended, and never returns when it navigates away.
 */
export async function signOutEverywhere(oidc) {
  const idToken = sessionStorage.getItem(ID_TOKEN);
  if (!oidc || !idToken) return signOut();
  let endpoint;
  try {
    endpoint = (await discovery(oidc.issuer)).end_session_endpoint;
  } catch (err) {
    signOut();
    return "Signed out here, but the identity provider could not be reached to end its session: " + err.message;
  }
  signOut();
  if (!endpoint) return;
  const state = randomString();
  sessionStorage.setItem(LOGOUT, state);
  const u = new URL(endpoint);
  u.search = new URLSearchParams({
    id_token_hint: idToken,
    post_logout_redirect_uri: redirectURI(),
    client_id: oidc.clientId,
    state,
  }).toString();
  location.assign(u.toString());
  return new Promise(() => {}); // the page is leaving
}

/**
 * finishLogout recognises the provider's redirect back after a logout
 * (?state=... alone) and cleans the address; it resolves to true then.
 */
export function finishLogout() {
  const params = new URLSearchParams(location.search);
  const want = sessionStorage.getItem(LOGOUT);
  if (!want || !params.has("state") || params.has("code") || params.has("error")) return false;
  sessionStorage.removeItem(LOGOUT);
  history.replaceState(null, "", "/");
  return params.get("state") === want;
}

/** pageConfig is GET /web/config.json: {devToken: bool, oidc: {...}|null}. */
export async function pageConfig() {
  const resp = await fetch("/web/config.json", { cache: "no-store", credentials: "omit" });
  if (!resp.ok) return { devToken: false, oidc: null };
  return resp.json();
}

/** devToken fetches the development token (loopback visitors only). */
export async function devToken() {
  const resp = await fetch("/web/dev-token", { cache: "no-store", credentials: "omit" });
  if (!resp.ok) throw new Error(await resp.text());
  return (await resp.json()).token;
}

// ---- OpenID Connect ----

const b64url = (bytes) =>
  btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

function randomString(n = 32) {
  return b64url(crypto.getRandomValues(new Uint8Array(n)));
}

async function discovery(issuer) {
  const resp = await fetch(issuer + "/.well-known/openid-configuration", { credentials: "omit" });
  if (!resp.ok) throw new Error("The identity provider's discovery document answered " + resp.status);
  const doc = await resp.json();
  if (doc.issuer.replace(/\/$/, "") !== issuer) throw new Error("The identity provider names another issuer: " + doc.issuer);
  return doc;
}

function redirectURI() {
  return location.origin + "/";
}

/** startOIDC sends the browser to the provider's authorization endpoint. */
export async function startOIDC(oidc) {
  const doc = await discovery(oidc.issuer);
  const verifier = randomString(48);
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const pending = { state: randomString(), nonce: randomString(), verifier, issuer: oidc.issuer };
  sessionStorage.setItem(PENDING, JSON.stringify(pending));
  const u = new URL(doc.authorization_endpoint);
  u.search = new URLSearchParams({
    response_type: "code",
    client_id: oidc.clientId,
    redirect_uri: redirectURI(),
    scope: oidc.scope || "openid",
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: challenge,
    code_challenge_method: "S256",
    ...(oidc.audience ? { audience: oidc.audience } : {}),
  }).toString();
  location.assign(u.toString());
}

function decodeJWT(jwt) {
  const part = jwt.split(".")[1] || "";
  const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (c) => c.charCodeAt(0))));
}

/**
 * finishOIDC completes a sign-in when the page was opened by the
 * provider's redirect (?code=...&state=...): it checks state, trades the
 * code (with the PKCE verifier) for tokens, checks the ID token's issuer,
 * audience, expiry and nonce, and keeps the access token as the bearer
 * token. It resolves to false when the URL is not a redirect.
 */
export async function finishOIDC(oidc) {
  const params = new URLSearchParams(location.search);
  if (!params.has("state") || !(params.has("code") || params.has("error"))) return false;
  history.replaceState(null, "", "/"); // the code is used once; keep it out of the history
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  sessionStorage.removeItem(PENDING);
  if (!oidc || !pending || pending.state !== params.get("state")) {
    throw new Error("The sign-in answer does not match a sign-in started here (state); start again.");
  }
  if (params.has("error")) {
    throw new Error("The identity provider refused: " + (params.get("error_description") || params.get("error")));
  }
  const doc = await discovery(oidc.issuer);
  const resp = await fetch(doc.token_endpoint, {
    method: "POST",
    credentials: "omit",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: params.get("code"),
      redirect_uri: redirectURI(),
      client_id: oidc.clientId,
      code_verifier: pending.verifier,
    }),
  });
  const tokens = await resp.json().catch(() => ({}));
  if (!resp.ok || !tokens.access_token) {
    throw new Error("The identity provider did not give a token: " + (tokens.error_description || tokens.error || resp.status));
  }
  if (tokens.id_token) {
    // Received straight from the token endpoint over the provider's
    // connection, so its signature need not be checked here (OpenID
    // Connect Core 3.1.3.7); its claims must still match this sign-in.
    const claims = decodeJWT(tokens.id_token);
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (String(claims.iss).replace(/\/$/, "") !== oidc.issuer || !aud.includes(oidc.clientId)) {
      throw new Error("The ID token was not issued for this page.");
    }
    if (claims.nonce !== pending.nonce) throw new Error("The ID token does not belong to this sign-in (nonce).");
    if (typeof claims.exp === "number" && claims.exp * 1000 < Date.now()) throw new Error("The ID token has expired.");
  } else if ((oidc.scope || "openid").split(" ").includes("openid")) {
    throw new Error("The identity provider sent no ID token.");
  }
  if (tokens.id_token) sessionStorage.setItem(ID_TOKEN, tokens.id_token);
  setToken(tokens.access_token);
  return true;
}
