// main.js: starts the page: sign-in view or the gallery, and the wiring
// between the parts (one module per concern).

import {
  getToken, setToken, signOut, signOutEverywhere, onSignChange, pageConfig, devToken, startOIDC, finishOIDC, finishLogout,
} from "./auth.js";
import { call } from "./api.js";
import { $, show } from "./dom.js";
import { initGallery, reload } from "./gallery.js";
import { initUpload } from "./upload.js";
import { initGenerate, loadModels } from "./generate.js";
import { initDetail, openDetail } from "./detail.js";

let config = { devToken: false, oidc: null };

function signInError(text) {
  $("signin-error").textContent = text;
}

function showSignIn(message, status = "") {
  show($("app-view"), false);
  show($("sign-out"), false);
  $("count").textContent = "";
  show($("signin-view"), true);
  signInError(message || "");
  $("signin-status").textContent = status;
  (config.oidc ? $("oidc-sign-in") : $("token")).focus();
}

async function showApp() {
  show($("signin-view"), false);
  show($("app-view"), true);
  show($("sign-out"), true);
  $("token").value = "";
  await Promise.all([reload(), loadModels()]);
}

/** tryToken checks a token with one small call before keeping it. */
async function tryToken(tok) {
  tok = tok.trim();
  if (!tok) {
    signInError("Paste a token first.");
    return;
  }
  setToken(tok);
}

function initSignIn() {
  $("signin-form").addEventListener("submit", (e) => {
    e.preventDefault();
    tryToken($("token").value);
  });
  $("use-dev-token").addEventListener("click", async () => {
    try {
      await tryToken(await devToken());
    } catch (err) {
      signInError("No development token: " + err.message);
    }
  });
  $("oidc-sign-in").addEventListener("click", () => {
    startOIDC(config.oidc).catch((err) => signInError("Sign-in failed: " + err.message));
  });
  $("sign-out").addEventListener("click", async () => {
    const problem = await signOutEverywhere(config.oidc);
    if (problem) signInError(problem);
  });
}

async function start() {
  initSignIn();
  initGallery(openDetail);
  initGenerate();
  initDetail();
  config = await pageConfig().catch(() => config);
  initUpload(config);
  show($("dev-token"), config.devToken);
  show($("oidc"), !!config.oidc);
  if (config.oidc) $("token-submit").textContent = "Use token";

  onSignChange(async (signedIn, message, known) => {
    if (!signedIn) return showSignIn(message);
    if (known) return showApp(); // kept from this tab: the listing itself checks it
    try {
      await call("GET", "/api/images?pageSize=1");
    } catch (err) {
      // A 401 has already signed out with its message.
      if (err.status !== 401) { signOut(); showSignIn("The token could not be checked: " + err.message); }
      return;
    }
    showApp();
  });

  if (finishLogout()) return showSignIn("", "Signed out, at the identity provider too.");
  try {
    if (await finishOIDC(config.oidc)) return; // setToken has shown the app
  } catch (err) {
    return showSignIn(err.message);
  }
  if (getToken()) setToken(getToken(), true);
  else showSignIn("");
}

start();
