// The dashboard in a real browser (Debian's Chromium, driven by playwright-core), run by
// tests/serve_browser.rs:
//
//   node dashboard.test.mjs CONFIG.json
//
// CONFIG: {url, screenshot, profile, status, batches, search: {run_id, job_id, stored,
// latest, stored_text, job_runs}} where `status` is the real `status --json` of the
// repository and `batches` the number of `log --json` entries. The script checks the page
// against them, searches the run and opens it, then prints `ready-for-apply` and reads one
// line on stdin: {"status", "batches"} after an apply the Rust test ran meanwhile. The page
// must show the new numbers without a reload. It saves a screenshot, prints `pass` and
// exits 0; on any failure it prints `FAIL: ...` and exits 1. The browser is always closed.
//
// With "mode": "empty" (an empty branch: `status` 0 and no batch) it checks what the page
// says about that and about a run that is not there, prints `ready-for-stop`, reads a line
// (the Rust test stopped the server meanwhile) and checks the page says it cannot reach it.

import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const WAIT_MS = 20000;

function check(cond, what) {
  if (!cond) throw new Error(what);
}

function same(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  check(a === e, `${what}: the page shows ${a}, expected ${e}`);
}

const step = (s) => console.log(`step: ${s}`);

// The figures and the table of the "Now" card, read from the page.
async function shown(page) {
  return page.evaluate(() => {
    const val = (id) => document.getElementById(id).dataset.value;
    const text = (id) => document.getElementById(id).textContent;
    const rows = {};
    for (const tr of document.querySelectorAll("#now-table tbody tr[data-version]")) {
      rows[tr.dataset.version] = Number(tr.querySelector("td").dataset.value);
    }
    return {
      commit: val("commit"),
      total: Number(val("total")),
      totalText: text("total"),
      pending: Number(val("pending")),
      pendingText: text("pending"),
      latest: text("latest"),
      invalid: Number(val("invalid")),
      rows,
      bars: document.querySelectorAll("#chart g.bar").length,
      logRows: document.querySelectorAll("#log tbody tr[data-commit]").length,
      rollbacks: document.querySelectorAll("#log .kind-rollback").length,
    };
  });
}

async function checkNumbers(page, status, batches) {
  const s = await shown(page);
  same(s.commit, status.head, "the commit");
  same(s.total, status.total, "the manifest count");
  same(s.totalText.replace(/,/g, ""), String(status.total), "the manifest count as written");
  same(s.pending, status.pending, "the pending count");
  same(s.pendingText.replace(/,/g, ""), String(status.pending), "the pending count as written");
  same(s.latest, status.latest, "the latest version");
  same(s.invalid, status.invalid.length, "the invalid count");
  const expected = { ...status.versions };
  if (status.invalid.length > 0) expected.unreadable = status.invalid.length;
  const sorted = (o) => Object.fromEntries(Object.entries(o).sort());
  same(sorted(s.rows), sorted(expected), "the manifests per version");
  same(s.bars, batches, "the bars of the timeline chart");
  same(s.logRows, batches, "the rows of the batch table");
  return s;
}

async function nextLine() {
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    rl.close();
    return line;
  }
  throw new Error("stdin closed before the test said the apply was done");
}

const problems = [];
let context;
let failed = false;
try {
  context = await chromium.launchPersistentContext(config.profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1400, height: 900 },
    deviceScaleFactor: 1,
  });
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(WAIT_MS);
  // Any script error or refused resource (a CSP violation is a console error) fails the test.
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()}`));

  step(`load ${config.url}`);
  await page.goto(config.url);
  await page.waitForSelector("#total[data-value]");
  if (config.mode === "empty") {
    await emptyThenDown(page);
    console.log("pass");
  } else {
    await migrated(page);
  }
} catch (e) {
  failed = true;
  console.log(`FAIL: ${e.message}`);
  if (problems.length) console.log(problems.join("\n"));
} finally {
  if (context) await context.close().catch(() => {});
}
process.exit(failed ? 1 : 0);

// An empty branch reads as such; a missing id is "nothing found"; a server that went away
// is said to be, and what was shown stays.
async function emptyThenDown(page) {
  await checkNumbers(page, config.status, 0);
  const text = (sel) => page.locator(sel).innerText();
  check((await text("#now-table")).includes("No manifests on this branch yet"), "no empty-branch note");
  check((await text("#time-hint")).startsWith("No batch yet"), "no empty-timeline note");
  check((await text("#log-hint")).startsWith("No batch"), "no empty-log note");
  await page.fill("#q", "no-such-run");
  await page.press("#q", "Enter");
  await page.waitForFunction(() => document.getElementById("find-msg").textContent.startsWith("Nothing found"));
  check(problems.every((p) => p.includes("404")), `the page reported problems:\n${problems.join("\n")}`);
  console.log("ready-for-stop");
  await nextLine();
  await page.waitForSelector("#error:not([hidden])");
  check((await text("#error")).includes("cannot reach the server"), `the error says ${await text("#error")}`);
  check((await text("#live-text")).startsWith("not up to date"), "the page still says it is up to date");
  same(Number(await page.locator("#total").getAttribute("data-value")), 0, "the count kept");
  await page.screenshot({ path: config.screenshot, fullPage: true });
}

async function migrated(page) {
  const first = await checkNumbers(page, config.status, config.batches);
  check(first.rollbacks >= 1, "the batch table shows no rollback");
  step(`numbers: ${first.total} manifests, ${first.pending} pending, ${first.bars} bars`);

  step(`search the job ${config.search.job_id}`);
  await page.fill("#q", config.search.job_id);
  await page.click("#find button[type=submit]");
  await page.waitForSelector("#job-runs:not([hidden]) tbody tr");
  same(await page.locator("#job-runs tbody tr").count(), config.search.job_runs, "the runs of the job");

  step(`search the run ${config.search.run_id} and open it`);
  await page.fill("#q", config.search.run_id);
  await page.press("#q", "Enter");
  await page.waitForSelector(`#manifest[data-run="${config.search.run_id}"]`);
  await page.waitForFunction(() => document.getElementById("latest-ver").dataset.value);
  const opened = await page.evaluate(() => ({
    stored: document.getElementById("stored-ver").dataset.value,
    latest: document.getElementById("latest-ver").dataset.value,
    storedText: document.getElementById("stored").textContent,
    latestText: document.getElementById("migrated").textContent,
    note: document.getElementById("latest-note").textContent,
  }));
  same(opened.stored, config.search.stored, "the stored version");
  same(opened.latest, config.search.latest, "the latest version of the run");
  check(opened.storedText === config.search.stored_text, "the stored manifest is not the committed bytes");
  same(JSON.parse(opened.latestText).schema_version, config.search.latest, "the migrated manifest's version");
  check(opened.note.includes("migrated on read"), `the latest side says ${JSON.stringify(opened.note)}`);

  // The apply happens in another process while the page stays open: no reload.
  await page.evaluate(() => {
    window.__notReloaded = true;
  });
  console.log("ready-for-apply");
  const after = JSON.parse(await nextLine());
  step(`await ${after.status.head.slice(0, 10)}`);
  await page.waitForFunction(
    (head) => document.getElementById("commit")?.dataset.value === head,
    after.status.head,
    { timeout: WAIT_MS },
  );
  check(await page.evaluate(() => window.__notReloaded === true), "the page was reloaded");
  const second = await checkNumbers(page, after.status, after.batches);
  check(second.pending !== first.pending, "the pending count did not change");
  // The open manifest follows too (its job was not migrated: still stored at its version).
  same(
    await page.evaluate(() => document.getElementById("stored-ver").dataset.value),
    config.search.stored,
    "the stored version after the apply",
  );
  step(`numbers after the apply: ${second.total} manifests, ${second.pending} pending, ${second.bars} bars`);

  await page.locator("#q").blur();
  await page.screenshot({ path: config.screenshot, fullPage: true });
  step(`screenshot ${config.screenshot}`);
  check(problems.length === 0, `the page reported problems:\n${problems.join("\n")}`);
  console.log("pass");
}
