// What a person sees on the template explorer page, in a real headless Chromium (Debian's
// `chromium`, driven by puppeteer-core). Run by tests/integration/explorer_test.py, which starts
// faultline and posts the events first:
//   node explorer.js BASE_URL EXPECTATIONS_JSON SCREENSHOT_DIR
// EXPECTATIONS_JSON: {"old": {"text", "count", "word"}, "fresh": {"text", "count"},
// "grouped": {"text", "group"}}: three templates; "fresh" is new; "word" is in "old" only.
// Prints what it checked; exits 1 on the first difference.
"use strict";
const puppeteer = require("puppeteer-core");
const path = require("path");

const [base, expectations, shots] = process.argv.slice(2);
const want = JSON.parse(expectations);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

function check(cond, what) {
  if (!cond) throw new Error("FAIL: " + what);
  console.log("ok: " + what);
}

async function rows(page) {
  return page.$$eval("li.template", (items) =>
    items.map((li) => ({
      text: li.querySelector(".text").textContent,
      count: li.querySelector(".count").textContent,
      isNew: !!li.querySelector(".badge.new"),
      visible: li.offsetParent !== null,
      bars: li.querySelectorAll("svg.trend rect").length,
    })));
}

(async () => {
  const browser = await puppeteer.launch({
    executablePath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
  });
  const problems = [];
  try {
    const page = await browser.newPage();
    page.on("pageerror", (e) => problems.push("page error: " + e.message));
    page.on("console", (m) => { if (m.type() === "error") problems.push("console error: " + m.text()); });
    // Offline: anything but the page's own origin is refused (no CDN, no font, no analytics).
    await page.setRequestInterception(true);
    const foreign = [];
    page.on("request", (r) => {
      if (r.url().startsWith(base) || r.url().startsWith("data:")) r.continue();
      else { foreign.push(r.url()); r.abort(); }
    });
    await page.setViewport({ width: 1280, height: 900 });
    await page.goto(base + "/", { waitUntil: "networkidle0" });
    await page.waitForSelector("li.template");

    let list = await rows(page);
    const byText = (t) => list.find((r) => r.text === t);
    const fresh = byText(want.fresh.text), old = byText(want.old.text);
    check(fresh, "the new template's text is shown: " + want.fresh.text);
    check(old, "the older template's text is shown: " + want.old.text);
    check(fresh.count === want.fresh.count.toLocaleString("en"), `its count reads ${want.fresh.count} (${fresh.count})`);
    check(old.count === want.old.count.toLocaleString("en"), `the older one's count reads ${want.old.count} (${old.count})`);
    check(fresh.isNew && !old.isNew, "the new template, and only it, carries the \"new\" mark");
    check(list[0].text === want.fresh.text, "new templates come first");
    check(fresh.bars === 15, "a 15-minute trend is drawn");
    const links = await page.$$eval("header nav a", (as) => as.map((a) => a.getAttribute("href")));
    check(links.includes("/v1/templates"), "it links to the JSON it reads");
    await page.screenshot({ path: path.join(shots, "explorer.png"), fullPage: true });

    // The text filter hides the rows that do not match.
    await page.type("#q", want.old.word);
    list = await rows(page);
    check(!list.some((r) => r.text === want.fresh.text), "the text filter hides the new template's row");
    check(list.some((r) => r.text === want.old.text), "and keeps the matching one");
    const summary = await page.$eval("#summary", (e) => e.textContent);
    check(/shown/.test(summary), "the summary says how many are shown: " + summary);
    await page.$eval("#q", (e) => { e.value = ""; e.dispatchEvent(new Event("input")); });

    // The group filter: one group shows its template only.
    await page.select("#group", want.grouped.group);
    list = await rows(page);
    check(list.length === 1 && list[0].text === want.grouped.text,
          `group ${want.grouped.group} shows only its template (${list.map((r) => r.text).join(" | ")})`);
    await page.select("#group", "");
    list = await rows(page);
    check(list.length === 3, "clearing the filter shows every template again");

    // A phone's width: every row fits, no horizontal scrolling.
    await page.setViewport({ width: 390, height: 844, isMobile: true });
    await new Promise((r) => setTimeout(r, 200));
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 1, `readable at a phone's width (horizontal overflow ${overflow} px)`);
    await page.screenshot({ path: path.join(shots, "explorer-phone.png"), fullPage: true });

    check(foreign.length === 0, "nothing is fetched from elsewhere: " + foreign.join(", "));
    check(problems.length === 0, "no script error: " + problems.join("; "));
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
