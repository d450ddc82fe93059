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
 *   station.js   polling /api/state, weight, tare, status card, "Ghi & In"
 *   catalog.js   farmers and products, and their add forms
 * This file adds the language button and the practice scale ("Cân mô phỏng"), then
 * starts the loops: /api/state every 500 ms, /api/lots every 3 s, the catalogue every
 * 20 s (not while a picker has focus).
 */
import { api } from "./api.js";
import { refreshCatalog, renderOptions, wireCatalog } from "./catalog.js";
import { both, lang, t, toggleLang } from "./i18n.js";
import { onLotPhoto, refreshLots, renderHeld, renderLots } from "./lots.js";
import { $, el, renderMessage, showError, showMessage } from "./page.js";
import { openPhoto, renderPhoto, wirePhoto } from "./photo.js";
import { pollState, recordLot, refitWeight, renderState, updateRecordButton, wireTare } from "./station.js";

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
  renderState();
  renderOptions();
  renderLots();
  renderHeld();
  renderMessage();
  renderPhoto();
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

function start() {
  el.langToggle.addEventListener("click", () => {
    toggleLang();
    applyLanguage();
  });
  el.producerSelect.addEventListener("change", updateRecordButton);
  el.productSelect.addEventListener("change", updateRecordButton);
  el.record.addEventListener("click", recordLot);
  wireCatalog();
  wireSimulator();
  wireTare();
  wirePhoto();
  onLotPhoto(openPhoto);
  window.addEventListener("resize", refitWeight);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) pollState();
  });

  applyLanguage();
  pollState();
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
