/* tabs.js: the secondary panels, one at a time behind tabs (index.html, .side).
 *
 * The weighing column (weight, farmer, product, "Ghi & In", message) is always on
 * screen; today's lots, orders and packing, the photo and grade step, the day totals
 * and the station's state (with the practice scale) share the other column (below it
 * on a phone), one panel at a time. Panels hold whole cards that other modules fill; this module only
 * shows one panel and marks tabs:
 * - the photo step opening (photo.js un-hides the photo card) brings its tab forward,
 *   and "Xong" (the card hidden again) goes back to the tab shown before;
 * - a tab whose hidden panel holds something to act on (a held label, a printer or link
 *   problem, any role="alert") gets a dot, so it is not missed behind another tab;
 * - a tab whose panel holds no card is not shown; the tab chosen is kept on this device;
 * - each panel shown says so: a "station:tab" event on window, its name in detail (the
 *   orders tab fetches its list then).
 */
import { t } from "./i18n.js";

const KEY = "station.tab";
const ALERTS = '[role="alert"], .held, .printer-error, .link-warning';

const bar = document.querySelector(".side .tabs");
const tabs = Array.from(bar.querySelectorAll('[role="tab"]'));
const panelOf = (tab) => document.getElementById(tab.getAttribute("aria-controls"));
const photoCard = document.querySelector('[data-testid="photo-card"]');

let current = null;
let beforePhoto = null;

function tabNamed(name) {
  return tabs.find((tab) => tab.dataset.tab === name && !tab.hidden) || null;
}

/** Show the panel of the tab called name ("lots", "orders", "photo", "totals", "station"). */
export function showTab(name, remember = true) {
  const chosen = tabNamed(name) || tabs.find((tab) => !tab.hidden);
  if (!chosen) return;
  current = chosen.dataset.tab;
  for (const tab of tabs) {
    const on = tab === chosen;
    tab.setAttribute("aria-selected", on ? "true" : "false");
    tab.tabIndex = on ? 0 : -1;
    panelOf(tab).hidden = !on;
  }
  panelOf(chosen).scrollTop = 0;
  if (remember) {
    try {
      window.localStorage.setItem(KEY, current);
    } catch (_e) {
      /* private mode: the choice lasts until reload */
    }
  }
  markAlerts();
  window.dispatchEvent(new CustomEvent("station:tab", { detail: current }));
}

/** The language changed: the tab bar's own words (the tabs' texts are data-i18n). */
export function renderTabs() {
  bar.setAttribute("aria-label", t("tabs_label"));
  markAlerts();
}

function shown(node, panel) {
  const hiddenAbove = node.closest("[hidden]");
  return hiddenAbove === null || hiddenAbove === panel;
}

function markAlerts() {
  for (const tab of tabs) {
    const panel = panelOf(tab);
    const alert = tab.dataset.tab !== current && [...panel.querySelectorAll(ALERTS)].some((n) => shown(n, panel));
    if (alert) {
      tab.dataset.alert = "true";
      tab.title = t("tab_alert");
    } else {
      delete tab.dataset.alert;
      tab.removeAttribute("title");
    }
  }
}

function hideEmptyTabs() {
  for (const tab of tabs) tab.hidden = panelOf(tab).querySelector(".card") === null;
}

function followPhoto() {
  if (!photoCard) return;
  if (!photoCard.hidden && current !== "photo") {
    beforePhoto = current;
    showTab("photo", false);
  } else if (photoCard.hidden && current === "photo" && beforePhoto) {
    const back = beforePhoto;
    beforePhoto = null;
    showTab(back, false);
  }
}

/** Wire the tab bar and show the tab kept on this device (main.js, once). */
export function wireTabs() {
  hideEmptyTabs();
  for (const tab of tabs) {
    tab.addEventListener("click", () => {
      beforePhoto = null;
      showTab(tab.dataset.tab);
    });
  }
  bar.addEventListener("keydown", (ev) => {
    if (ev.key !== "ArrowRight" && ev.key !== "ArrowLeft") return;
    const visible = tabs.filter((tab) => !tab.hidden);
    const at = visible.findIndex((tab) => tab.dataset.tab === current);
    const next = visible[(at + (ev.key === "ArrowRight" ? 1 : visible.length - 1)) % visible.length];
    showTab(next.dataset.tab);
    next.focus();
  });
  let kept = null;
  try {
    kept = window.localStorage.getItem(KEY);
  } catch (_e) {
    kept = null;
  }
  showTab(kept && kept !== "photo" ? kept : "lots", false);
  if (photoCard) new MutationObserver(followPhoto).observe(photoCard, { attributes: true, attributeFilter: ["hidden"] });
  new MutationObserver(markAlerts).observe(document.querySelector(".side"), {
    subtree: true,
    childList: true,
    attributes: true,
    attributeFilter: ["hidden"],
  });
}
