/* main.js: the collection point station page, wired together. Plain ES modules, no
 * build step, nothing fetched beyond the station itself.
 *
 * The parts, each importing only parts listed above it (no import cycles):
 *   strings.js   every text the staff read, Vietnamese first
 *   i18n.js      the page's language, t() and both()
 *   format.js    kg, đồng, times and grade names, Vietnamese and English
 *   api.js       fetch under /api and the station's error bodies
 *   page.js      the elements, the live state and the message box
 *   lots.js      today's lots and held labels
 *   photo.js     the camera's status and the photo and grade step
 *   station.js   /api/state (pushed, or polled while the stream is down), weight, tare,
 *                status card, "Ghi & In"
 *   stream.js    the pushed state: GET /api/events (server-sent events)
 *   tabs.js      the secondary panels behind tabs (lots, orders, photo, totals, station)
 *   farmers.js   the farmer search, the choice kept across a reload, the duplicate question
 *   catalog.js   farmers and products, and their add forms
 *   paper.js     receipts, labels printed again with a reason, today's totals
 *   corrections.js  a lead's corrections: void or correct a lot, edit and merge (issue 12)
 *   orders.js    orders and packing: pick list, check-weigh, shipping label (issue 13)
 * This file adds the language button and the practice scale ("Cân mô phỏng"), then
 * starts the loops: the state stream (polling /api/state every 500 ms only while it is
 * down), /api/lots every 3 s, the catalogue every 20 s (not while a picker has focus).
 */
import { api } from "./api.js";
import { refreshCatalog, renderOptions, wireCatalog } from "./catalog.js";
import { both, lang, t, toggleLang } from "./i18n.js";
import { onLotPhoto, onLotRow, refreshLots, renderHeld, renderLots } from "./lots.js";
import { $, el, renderMessage, showError, showMessage } from "./page.js";
import { lotPaperButtons, renderTotals, wirePaper } from "./paper.js";
import { lotCorrectionButtons, renderCorrections, wireCorrections } from "./corrections.js";
import { renderOrders, wireOrders } from "./orders.js";
import { openPhoto, renderPhoto, wirePhoto } from "./photo.js";
import { pollState, recordLot, refitWeight, renderState, updateRecordButton, wireTare } from "./station.js";
import { renderPeople, wirePeople } from "./people.js";
import { person, renderPerson, signIn } from "./signin.js";
import { startStream } from "./stream.js";
import { renderTabs, wireTabs } from "./tabs.js";

const LOTS_EVERY_MS = 3000;
const CATALOG_EVERY_MS = 20000;

// ---------------------------------------------------------------- language

function applyLanguage() {
  document.documentElement.lang = lang;
  document.title = t("title");
  document.querySelectorAll("[data-i18n]").forEach((node) => {
    node.textContent = t(node.dataset.i18n);
  });
  el.langToggle.textContent = t("lang_button");
  el.langToggle.lang = lang === "vi" ? "en" : "vi";
  for (const [toggle, form] of [
    [el.producerToggle, el.producerForm],
    [el.productToggle, el.productForm],
  ]) {
    toggle.textContent = form.hidden ? t("add") : t("close_form");
  }
  renderAll();
}

function renderAll() {
  renderPerson();
  renderPeople();
  renderState();
  renderOptions();
  renderLots();
  renderHeld();
  renderMessage();
  renderPhoto();
  renderTotals();
  renderCorrections();
  renderOrders();
  renderTabs();
}

// ---------------------------------------------------------------- simulator

async function simulate(command) {
  try {
    await api("POST", "/simulator", command);
  } catch (err) {
    showError(err);
  }
  pollState();
}

function wireSimulator() {
  el.simForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const grams = Number(el.simWeight.value);
    if (el.simWeight.value.trim() === "" || !Number.isInteger(grams)) {
      showMessage("error", both("sim_bad_weight"));
      return;
    }
    simulate({ weight_g: grams });
  });
  const buttons = {
    "sim-unstable": { unstable: true },
    "sim-stable": { unstable: false },
    "sim-unplug": { connected: false },
    "sim-replug": { connected: true },
    "sim-overload": { overload: true },
    "sim-clear-overload": { overload: false },
  };
  for (const [id, command] of Object.entries(buttons)) {
    $(id).addEventListener("click", () => simulate(command));
  }
}

// ---------------------------------------------------------------- start

async function start() {
  el.langToggle.addEventListener("click", () => {
    toggleLang();
    applyLanguage();
  });
  await signIn(); // nothing else is fetched before someone has signed in
  if (person.role === "courier") {
    window.location.replace("handover.html"); // couriers hand parcels over (issue 14)
    applyLanguage();
    showMessage("error", both("courier_elsewhere"));
    return;
  }
  $("handover-open").hidden = person.role !== "lead"; // a lead opens the handover page too
  el.producerSelect.addEventListener("change", updateRecordButton);
  el.productSelect.addEventListener("change", updateRecordButton);
  el.record.addEventListener("click", recordLot);
  wireCatalog();
  wireSimulator();
  wireTare();
  wirePhoto();
  onLotPhoto(openPhoto);
  onLotRow((lot) => [...lotPaperButtons(lot), ...lotCorrectionButtons(lot)]);
  wireCorrections(); // a lead's card: edit farmers and products, merge farmers
  wirePeople(); // a lead's card: who may sign in here
  wirePaper();
  wireOrders(); // the orders tab: its list loads when the tab is shown
  window.addEventListener("resize", refitWeight);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) pollState();
  });

  wireTabs();
  applyLanguage();
  document.body.dataset.ready = "true"; // every control is wired: a tap now does what it says
  pollState();
  startStream();
  refreshCatalog();
  refreshLots();
  setInterval(refreshLots, LOTS_EVERY_MS);
  setInterval(() => {
    const active = document.activeElement;
    if (active !== el.producerSelect && active !== el.productSelect && active !== el.productGrading) {
      refreshCatalog();
    }
  }, CATALOG_EVERY_MS);
}

start();
