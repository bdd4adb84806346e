// The gallery page in a real Chromium, driven by playwright-core: what a
// person does, step by step, failing (exit 1) at the first surprise.
// Run by e2e/browser_test.go, which starts imaged and passes:
//   IMAGED_BASE, IMAGED_TOKEN, IMAGED_FILES (a directory of test files),
//   IMAGED_SHOTS (where screenshots go), IMAGED_MODE (gallery | speed | oidc).
// Prints one JSON line of figures at the end.
import { createRequire } from "node:module";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");

const base = process.env.IMAGED_BASE;
const token = process.env.IMAGED_TOKEN;
const files = process.env.IMAGED_FILES;
const shots = process.env.IMAGED_SHOTS;
const mode = process.env.IMAGED_MODE || "gallery";
const figures = {};

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

const context = await chromium.launchPersistentContext(mkdtempSync(path.join(tmpdir(), "imaged-chromium-")), {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1280, height: 900 },
});
context.setDefaultTimeout(20000);

const problems = [];
function watch(page) {
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  page.on("console", (m) => {
    // The refused uploads are expected; the browser logs every failed request.
    if (m.type() === "error" && !/Failed to load resource: .* 41[35]/.test(m.text())) problems.push("console error: " + m.text());
  });
  page.on("dialog", (d) => { problems.push("a JavaScript dialog opened: " + d.message()); d.dismiss(); });
}

async function signIn(page, tok) {
  await page.goto(base + "/");
  await page.getByRole("textbox", { name: "Token" }).fill(tok);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.getByRole("heading", { name: "Your images" }).waitFor();
}

const gridImages = (page) => page.locator("#grid img");

try {
  const page = context.pages()[0] || await context.newPage();
  watch(page);

  if (mode === "speed") {
    // First load of an account with many images: transfer before images,
    // and time until the first 50 thumbnails are shown (decoded).
    await context.addInitScript((t) => sessionStorage.setItem("imaged.token", t), token);
    const start = Date.now();
    await page.goto(base + "/");
    await page.waitForFunction(() => {
      const imgs = [...document.querySelectorAll("#grid img")].slice(0, 50);
      return imgs.length === 50 && imgs.every((i) => i.complete && i.naturalWidth > 0);
    }, null, { timeout: 60000, polling: 10 });
    figures.first50ThumbnailsMs = Date.now() - start;
    figures.first50SinceNavigationMs = await page.evaluate(() => Math.round(performance.now()));
    figures.count = await page.locator("#count").textContent();
    figures.timeline = await page.evaluate(() => performance.getEntriesByType("resource")
      .filter((r) => r.initiatorType !== "img").map((r) => `${new URL(r.name).pathname} ${Math.round(r.startTime)}-${Math.round(r.responseEnd)}`));
  } else if (mode === "oidc") {
    // OpenID Connect against Hydra: the Go test seeded one image, harbour.png.
    const signInOIDC = async () => {
      await page.getByRole("button", { name: "Sign in", exact: true }).click();
      await page.waitForURL((u) => u.toString().startsWith(base + "/"), { timeout: 30000, waitUntil: "load" });
      await page.getByRole("heading", { name: "Your images" }).waitFor({ timeout: 30000 });
      await page.getByRole("img", { name: "harbour.png" }).waitFor();
      check(page.url() === base + "/", "the address keeps the code after sign-in: " + page.url());
      check((await page.locator("#count").textContent()).startsWith("1 image"), "count: " + await page.locator("#count").textContent());
    };
    await page.goto(base + "/");
    await signInOIDC();
    await page.screenshot({ path: path.join(shots, "oidc-signed-in.png") });
    figures.oidcCount = await page.locator("#count").textContent();

    // A new sign-in in the same browser (the tab's token forgotten):
    // Hydra's session lets it through without a login.
    await page.evaluate(() => sessionStorage.removeItem("imaged.token"));
    await page.reload();
    await signInOIDC();

    // Sign out: the token goes, and so does Hydra's session.
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByText("Signed out, at the identity provider too.").waitFor({ timeout: 30000 });
    check(page.url() === base + "/", "the address after sign-out: " + page.url());
    check(await page.evaluate(() => sessionStorage.getItem("imaged.token")) === null, "sign out left the token");
    check(await page.evaluate(() => sessionStorage.getItem("imaged.oidc.idToken")) === null, "sign out left the ID token");
    check(await page.locator("#grid img").count() === 0 || !(await page.locator("#app-view").isVisible()), "images still shown after sign-out");

    // The next sign-in goes through the login step again (the Go test
    // checks it with the login app).
    await signInOIDC();
  } else {
    // Sign in with a token; the empty state tells what to do.
    await signIn(page, token);
    await page.getByText("No images yet").waitFor();

    // Upload two files through the picker, one of them named like HTML,
    // and a text file that must be refused in words.
    const xssName = "<img src=x onerror=alert(1)>.png";
    await page.getByLabel("Upload images").setInputFiles([
      path.join(files, "a.png"), path.join(files, xssName), path.join(files, "notes.png"),
      path.join(files, "big.png"), path.join(files, "huge.png"),
    ]);
    await page.locator(".upload.ok").nth(1).waitFor();
    await page.getByText("“notes.png” is not an image the service accepts").waitFor();
    // Over the size limit: refused before sending, with both sizes in words.
    await page.getByText(/^“big\.png” is 4\.\d MiB, more than this service accepts \(3\.8 MiB at most\)\.$/).waitFor();
    // Over the pixel limit: the service's 413, in words.
    await page.getByText(/^“huge\.png” is too large for this service: .*7500x7000.*pixels/).waitFor();
    check(await page.locator(".upload.failed").count() === 3, "the refused files are not marked failed");
    await page.waitForFunction(() => document.querySelectorAll("#grid img").length === 2);
    await page.getByRole("img", { name: xssName }).waitFor();
    check(await page.locator('img[src="x"]').count() === 0, "the filename was parsed as HTML");
    check((await page.locator("#count").textContent()).startsWith("2 images"), "count after upload: " + await page.locator("#count").textContent());

    // Generate two images with the builtin provider; they appear.
    await page.getByRole("textbox", { name: "Prompt" }).fill("a lighthouse at dusk");
    await page.getByLabel("Aspect ratio").selectOption("16:9");
    await page.getByLabel("Images", { exact: true }).fill("2");
    await page.getByRole("button", { name: "Generate" }).click();
    await page.locator("#generate-status", { hasText: /^Done: 2 images/ }).waitFor({ timeout: 60000 });
    await page.waitForFunction(() => document.querySelectorAll("#grid img").length === 4);
    check(await page.locator("#grid").getByRole("img", { name: /a lighthouse at dusk/ }).count() === 2, "generated images are not in the grid");

    // Search finds the file by name, then the whole list comes back...
    await page.getByRole("searchbox", { name: "Search" }).fill("onerror");
    await page.waitForFunction(() => document.querySelectorAll("#grid img").length === 1);
    await page.getByRole("searchbox", { name: "Search" }).fill("");
    await page.waitForFunction(() => document.querySelectorAll("#grid img").length === 4);
    // ... and the generated images by their prompt, with the count.
    await page.getByRole("searchbox", { name: "Search" }).fill("LIGHTHOUSE at");
    await page.waitForFunction(() => document.querySelectorAll("#grid img").length === 2);
    check(await page.locator("#grid").getByRole("img", { name: /a lighthouse at dusk/ }).count() === 2, "the prompt search found other images");
    await page.locator("#count", { hasText: /^2 images match/ }).waitFor();
    await page.getByRole("searchbox", { name: "Search" }).fill("");
    await page.waitForFunction(() => document.querySelectorAll("#grid img").length === 4);
    await page.getByLabel("Source").selectOption("upload");
    await page.waitForFunction(() => document.querySelectorAll("#grid img").length === 2);
    await page.getByLabel("Source").selectOption("");
    await page.waitForFunction(() => document.querySelectorAll("#grid img").length === 4);
    await page.screenshot({ path: path.join(shots, "gallery-1280.png") });

    // The detail view of a generated image, then of a.png, which is deleted.
    const grid = page.locator("#grid");
    await grid.getByRole("img", { name: /a lighthouse at dusk/ }).first().click();
    const detail = page.getByRole("dialog");
    await detail.getByText("builtin").waitFor();
    await detail.getByText("a lighthouse at dusk").first().waitFor();
    await page.waitForFunction(() => document.getElementById("detail-img").complete);
    await page.screenshot({ path: path.join(shots, "detail-1280.png") });
    await page.keyboard.press("Escape");

    await grid.getByRole("img", { name: "a.png", exact: true }).click();
    await detail.getByRole("heading", { name: "a.png" }).waitFor();
    await detail.getByText("image/png").waitFor();
    await detail.getByRole("button", { name: "Delete" }).click();
    const confirm = page.getByRole("dialog", { name: "Delete this image?" });
    await confirm.getByRole("button", { name: "Delete" }).click();
    await confirm.waitFor({ state: "hidden" });
    await page.waitForFunction(() => document.querySelectorAll("#grid img").length === 3);
    check(await page.getByRole("img", { name: "a.png", exact: true }).count() === 0, "a.png is still in the grid");
    check((await page.locator("#count").textContent()).startsWith("3 images"), "count after delete");

    // A reload keeps the sign-in (sessionStorage) and a.png stays gone;
    // each tile shows the service's thumb variant where the image object
    // names one, else the original.
    const [listing] = await Promise.all([
      page.waitForResponse((r) => /\/api\/images\?/.test(r.url())),
      page.reload(),
    ]);
    const served = (await listing.json()).data;
    await page.waitForFunction(() => document.querySelectorAll("#grid img").length === 3);
    check(await page.getByRole("img", { name: "a.png", exact: true }).count() === 0, "a.png came back after a reload");
    const shown = await page.locator("#grid img").evaluateAll((imgs) => imgs.map((i) => i.getAttribute("src")));
    check(shown.every((src, i) => src === ((served[i].variants && served[i].variants.thumb) || served[i].url)),
      "tiles do not show the images' thumb variant: " + shown);
    figures.thumbVariants = served.filter((img) => img.variants && img.variants.thumb).length;
    await page.waitForFunction(() => [...document.querySelectorAll("#grid img")].every((i) => i.complete && i.naturalWidth > 0));

    // Thumbnails: the image object's `variants.thumb` where it has one,
    // else the original (the listing is rewritten in flight to give the
    // newest image a thumb of its own and take the others' away).
    const thumb = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
    let listed = [];
    await page.route(/\/api\/images\?/, async (route) => {
      const resp = await route.fetch();
      const body = await resp.json();
      body.data.forEach((img, i) => {
        if (i === 0) img.variants = { ...(img.variants || {}), thumb };
        else delete img.variants;
      });
      listed = body.data;
      await route.fulfill({ response: resp, json: body });
    });
    await page.reload();
    await page.waitForFunction(() => document.querySelectorAll("#grid img").length === 3);
    const srcs = await page.locator("#grid img").evaluateAll((imgs) => imgs.map((i) => i.getAttribute("src")));
    check(srcs[0] === thumb, "the tile of an image with variants.thumb shows " + srcs[0].slice(0, 40));
    check(srcs.slice(1).every((src, i) => src === listed[i + 1].url), "tiles without variants do not show the original: " + srcs.slice(1));
    await page.waitForFunction(() => document.querySelector("#grid img").naturalWidth === 1);
    await page.unroute(/\/api\/images\?/);

    // Keyboard: Tab reaches a tile, Enter opens it.
    await page.locator("#grid .tile").first().focus();
    await page.keyboard.press("Enter");
    await page.getByRole("dialog").waitFor();
    await page.keyboard.press("Escape");

    // Keyboard from the top: the first Tab stop is the skip link, which
    // takes the focus to the images; focus is visible.
    await page.reload();
    await page.waitForFunction(() => document.querySelectorAll("#grid img").length === 3);
    await page.keyboard.press("Tab");
    check(await page.evaluate(() => document.activeElement.className) === "skip", "the first Tab stop is not the skip link");
    check(await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle) !== "none", "the focused skip link has no visible outline");
    await page.keyboard.press("Enter");
    check(await page.evaluate(() => document.activeElement.id) === "gallery", "the skip link does not lead to the images");

    // Dark mode follows the system.
    const colours = () => page.evaluate(() => [getComputedStyle(document.body).backgroundColor, getComputedStyle(document.body).color]);
    const light = await colours();
    await page.emulateMedia({ colorScheme: "dark" });
    const dark = await colours();
    check(dark[0] === "rgb(21, 23, 28)" && dark[1] === "rgb(231, 233, 238)" && light[0] !== dark[0], "dark colours: " + dark + " (light " + light + ")");
    await page.screenshot({ path: path.join(shots, "gallery-dark-1280.png") });
    await page.emulateMedia({ colorScheme: "light" });

    // Phone width: nothing wider than the screen.
    await page.setViewportSize({ width: 360, height: 780 });
    await page.waitForTimeout(200);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
    check(overflow <= 360, "at 360 px the page is " + overflow + " px wide");
    await page.screenshot({ path: path.join(shots, "gallery-360.png"), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });

    // Page weight of a first load: everything but images, as transferred.
    const fresh = await context.newPage();
    watch(fresh);
    const cdp = await context.newCDPSession(fresh);
    await cdp.send("Network.enable");
    await cdp.send("Network.clearBrowserCache"); // a first visit: nothing cached
    await fresh.goto(base + "/");
    await fresh.getByRole("textbox", { name: "Token" }).waitFor();
    figures.firstLoadBytes = await fresh.evaluate(() => {
      const nav = performance.getEntriesByType("navigation")[0];
      const res = performance.getEntriesByType("resource").filter((r) => r.initiatorType !== "img");
      return nav.transferSize + res.reduce((n, r) => n + r.transferSize, 0);
    });
    figures.firstLoadFiles = await fresh.evaluate(() => performance.getEntriesByType("resource").length + 1);

    // The development token of the embedded default, offered on loopback.
    await fresh.evaluate(() => sessionStorage.clear());
    await fresh.reload();
    await fresh.getByRole("button", { name: "Use the development token" }).click();
    await fresh.getByRole("heading", { name: "Your images" }).waitFor();
    await fresh.getByRole("button", { name: "Sign out" }).click();
    await fresh.getByRole("textbox", { name: "Token" }).waitFor();
    await fresh.close();
  }
  check(problems.length === 0, "problems on the page:\n" + problems.join("\n"));
  console.log(JSON.stringify(figures));
} catch (err) {
  console.error(err.stack || String(err));
  if (problems.length) console.error(problems.join("\n"));
  try { await context.pages()[0].screenshot({ path: path.join(shots, "failure.png"), fullPage: true }); } catch {}
  process.exitCode = 1;
} finally {
  await context.close();
}
