/* farmers.js: choosing the farmer, among thousands.
 *
 * The farmer "select" (data-testid producer-select) is a button showing the chosen
 * farmer: name, village and the end of the phone number; its value is the farmer's id
 * and it fires "change" when the choice changes, as the <select> it replaces did. A tap
 * (or Enter, ↓, or typing a letter) opens a search box over the page with the recent
 * farmers listed; typing ("huong", "0987", "ban lac") asks the station
 * (GET /api/producers?q=) and lists the best few. ↑/↓ move, Enter chooses, Esc closes.
 *
 * The choice is kept on this device (localStorage) and checked against the station on
 * load and on every catalogue round: a farmer the station no longer has is forgotten,
 * a renamed one is shown by the new name, a merged one becomes the one it was merged
 * into.
 *
 * Adding a farmer (the "+ thêm" form) that the station already has by that name and
 * village (case, spacing and diacritics aside) asks first: choose the one listed, or
 * create a new one anyway (confirm_duplicate).
 */
import { api, ApiError } from "./api.js";
import { both, lang, t } from "./i18n.js";
import { $, el, showError, showMessage } from "./page.js";

const STORE_KEY = "station.farmer";
const LIMIT = 8;
const TYPE_DELAY_MS = 120;

let chosen = null; // {id, name, village, phone} or null
let results = [];
let active = -1; // index in results of the highlighted row
let asked = ""; // the text of the latest search sent
let answered = null; // the text the rows shown answer (null: none yet)
let pickOnAnswer = false; // Enter was pressed before the answer to what was typed came
let searchSeq = 0;
let typeTimer = 0;
let question = null; // {form, body, matches, msg}: the duplicate question shown

const picker = {
  button: $("producer-select"),
  name: $("producer-chosen-name"),
  detail: $("producer-chosen-detail"),
  panel: $("producer-panel"),
  input: $("producer-search"),
  heading: $("producer-results-heading"),
  list: $("producer-results"),
  none: $("producer-none"),
};

// ---------------------------------------------------------------- what a row shows

function digitsOf(phone) {
  return String(phone || "").replace(/\D/g, "");
}

/** "…4321": enough of the number to tell two namesakes apart, not the whole of it. */
export function phoneTail(phone) {
  const digits = digitsOf(phone);
  return digits.length >= 4 ? "…" + digits.slice(-4) : "";
}

function detailOf(row) {
  return [row.village, phoneTail(row.phone)].filter(Boolean).join(" · ");
}

// ---------------------------------------------------------------- the chosen farmer

function remember(row) {
  try {
    if (row) {
      const kept = { id: row.id, name: row.name, village: row.village, phone: row.phone };
      window.localStorage.setItem(STORE_KEY, JSON.stringify(kept));
    } else {
      window.localStorage.removeItem(STORE_KEY);
    }
  } catch (_e) {
    /* private mode: the choice lasts until reload */
  }
}

function remembered() {
  try {
    const row = JSON.parse(window.localStorage.getItem(STORE_KEY) || "null");
    return row && typeof row.id === "string" ? row : null;
  } catch (_e) {
    return null;
  }
}

/** Chooses ``row`` (or nobody), keeps it on this device, and tells the page. */
export function chooseFarmer(row) {
  const before = chosen ? chosen.id : "";
  chosen = row ? { id: row.id, name: row.name, village: row.village || null, phone: row.phone || null } : null;
  remember(chosen);
  renderFarmer();
  if ((chosen ? chosen.id : "") !== before) {
    picker.button.dispatchEvent(new Event("change", { bubbles: true }));
  }
}

/** The button, in the page's language. */
export function renderFarmer() {
  picker.button.value = chosen ? chosen.id : "";
  picker.button.dataset.chosen = chosen ? "yes" : "no";
  picker.name.textContent = chosen ? chosen.name : t("choose_producer");
  picker.detail.textContent = chosen ? detailOf(chosen) : "";
  picker.detail.hidden = !picker.detail.textContent;
  picker.button.title = chosen ? [chosen.name, picker.detail.textContent].filter(Boolean).join(" · ") : "";
  picker.input.placeholder = t("farmer_search_placeholder");
  picker.input.setAttribute("aria-label", t("farmer_search_placeholder"));
  if (!picker.panel.hidden) renderResults();
  if (question) renderQuestion();
}

/** The remembered farmer, checked with the station: kept (by its current name) if the
 * station has it, forgotten if not, kept as it is while the station cannot be asked. */
export async function refreshChosen() {
  const row = chosen || remembered();
  if (!row) return;
  if (!chosen) chooseFarmer(row); // shown at once, then checked
  try {
    const fresh = await api("GET", "/producers/" + encodeURIComponent(row.id));
    // the same farmer (perhaps renamed), or the one a lead merged it into
    if (chosen && chosen.id === row.id) chooseFarmer(fresh);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404 && chosen && chosen.id === row.id) {
      chooseFarmer(null);
    }
  }
}

// ---------------------------------------------------------------- the search panel

function openPanel(text) {
  if (picker.panel.hidden) {
    picker.panel.hidden = false;
    picker.button.setAttribute("aria-expanded", "true");
    picker.input.setAttribute("aria-expanded", "true");
    results = []; // nothing stale while the first answer comes
    answered = null;
    pickOnAnswer = false;
    picker.list.textContent = "";
    picker.heading.textContent = "";
    picker.none.hidden = true;
  }
  picker.input.value = text || "";
  picker.input.focus();
  search(picker.input.value);
}

function closePanel(focusButton) {
  if (picker.panel.hidden) return;
  clearTimeout(typeTimer);
  pickOnAnswer = false;
  picker.panel.hidden = true;
  picker.button.setAttribute("aria-expanded", "false");
  picker.input.setAttribute("aria-expanded", "false");
  picker.input.removeAttribute("aria-activedescendant");
  if (focusButton) picker.button.focus();
}

async function search(text) {
  const seq = ++searchSeq;
  asked = text.trim();
  const path = "/producers?limit=" + LIMIT + "&q=" + encodeURIComponent(asked);
  try {
    const rows = await api("GET", path);
    if (seq !== searchSeq) return; // a newer search was sent meanwhile
    results = rows;
    answered = asked;
    active = rows.length ? 0 : -1;
    renderResults();
    if (pickOnAnswer) {
      pickOnAnswer = false;
      if (rows.length) pick(0);
    }
  } catch (err) {
    if (seq === searchSeq) showError(err);
  }
}

function renderResults() {
  const list = picker.list;
  list.textContent = "";
  picker.heading.textContent = asked ? t("farmer_search_found") : t("farmer_search_recent");
  results.forEach((row, i) => {
    const li = document.createElement("li");
    li.id = "producer-option-" + i;
    li.className = "farmer-option";
    li.setAttribute("role", "option");
    li.setAttribute("aria-selected", String(i === active));
    li.setAttribute("data-testid", "producer-option");
    li.dataset.producerId = row.id;
    const name = document.createElement("span");
    name.className = "farmer-option-name";
    name.textContent = row.name;
    li.appendChild(name);
    const detail = detailOf(row);
    if (detail) {
      const small = document.createElement("span");
      small.className = "farmer-option-detail";
      small.textContent = detail;
      li.appendChild(small);
    }
    // pointerdown, not click: the input keeps focus and the panel stays put until chosen
    li.addEventListener("pointerdown", (ev) => ev.preventDefault());
    li.addEventListener("click", () => pick(i));
    list.appendChild(li);
  });
  picker.none.hidden = results.length > 0;
  picker.none.textContent = asked ? t("farmer_search_none", { q: asked }) : t("farmer_search_empty");
  fitList();
  if (active >= 0) {
    picker.input.setAttribute("aria-activedescendant", "producer-option-" + active);
    const row = list.children[active];
    if (row && typeof row.scrollIntoView === "function") row.scrollIntoView({ block: "nearest" });
  } else {
    picker.input.removeAttribute("aria-activedescendant");
  }
}

/** The list ends above the bottom of the screen (800x480: a few rows, scrolled). */
function fitList() {
  const top = picker.list.getBoundingClientRect().top;
  const room = Math.floor(window.innerHeight - top - 16);
  picker.list.style.maxHeight = Math.max(2 * 48, Math.min(room, 360)) + "px";
}

function pick(i) {
  const row = results[i];
  if (!row) return;
  chooseFarmer(row);
  closePanel(true);
}

function onSearchKey(ev) {
  if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
    ev.preventDefault();
    if (!results.length) return;
    const step = ev.key === "ArrowDown" ? 1 : -1;
    active = (active + step + results.length) % results.length;
    renderResults();
  } else if (ev.key === "Enter") {
    ev.preventDefault();
    const typed = picker.input.value.trim();
    if (answered !== typed) {
      // typed faster than the station answered: choose the first row of the answer
      pickOnAnswer = true;
      if (asked !== typed) {
        clearTimeout(typeTimer);
        search(typed);
      }
    } else if (active >= 0) {
      pick(active);
    }
  } else if (ev.key === "Escape") {
    ev.preventDefault();
    closePanel(true);
  } else if (ev.key === "Tab") {
    closePanel(false);
  }
}

function onButtonKey(ev) {
  if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
    ev.preventDefault();
    openPanel("");
  } else if (ev.key.length === 1 && ev.key !== " " && !ev.ctrlKey && !ev.metaKey && !ev.altKey) {
    ev.preventDefault(); // typing on the closed picker starts the search with that letter
    openPanel(ev.key);
  }
}

// ---------------------------------------------------------------- adding a farmer

function trimmed(form, name) {
  const v = form.elements[name].value.trim();
  return v === "" ? null : v;
}

function questionBox(form) {
  let box = form.querySelector('[data-testid="duplicate-question"]');
  if (!box) {
    box = document.createElement("div");
    box.className = "duplicate-question";
    box.setAttribute("data-testid", "duplicate-question");
    box.setAttribute("role", "alert");
    form.insertBefore(box, form.querySelector(".form-buttons"));
  }
  return box;
}

function renderQuestion() {
  const box = questionBox(question.form);
  box.textContent = "";
  const text = document.createElement("p");
  text.className = "duplicate-text";
  text.textContent = question.msg[lang] || question.msg.vi;
  box.appendChild(text);
  for (const row of question.matches) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "btn duplicate-pick";
    b.setAttribute("data-testid", "duplicate-pick");
    b.dataset.producerId = row.id;
    b.textContent = t("duplicate_pick", { farmer: [row.name, detailOf(row)].filter(Boolean).join(" · ") });
    b.addEventListener("click", () => {
      const form = question.form;
      clearQuestion();
      chooseFarmer(row);
      showMessage("ok", both("farmer_chosen", () => ({ name: row.name })));
      form.dispatchEvent(new Event("farmer:done"));
    });
    box.appendChild(b);
  }
  const create = document.createElement("button");
  create.type = "button";
  create.className = "btn duplicate-create";
  create.setAttribute("data-testid", "duplicate-create");
  create.textContent = t("duplicate_create");
  create.addEventListener("click", async () => {
    const form = question.form;
    const body = { ...question.body, confirm_duplicate: true };
    create.disabled = true;
    if (await createFarmer(form, body)) form.dispatchEvent(new Event("farmer:done"));
    create.disabled = false;
  });
  box.appendChild(create);
}

/** Hides the duplicate question (a new entry, the form closed). */
export function clearQuestion() {
  if (!question) return;
  const box = question.form.querySelector('[data-testid="duplicate-question"]');
  if (box) box.remove();
  question = null;
}

async function createFarmer(form, body) {
  try {
    const row = await api("POST", "/producers", body);
    clearQuestion();
    chooseFarmer(row);
    showMessage("ok", both("producer_added", () => ({ name: row.name })));
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.code === "possible_duplicate" && err.body) {
      question = { form: form, body: body, matches: err.body.matches || [], msg: err.msg };
      renderQuestion();
      const first = form.querySelector('[data-testid="duplicate-pick"]');
      if (first) first.focus();
      return false;
    }
    showError(err);
    return false;
  }
}

/** The "+ thêm" form's save: true when the form can close (a farmer was added). */
export async function saveProducer(form) {
  const name = trimmed(form, "name");
  if (!name) {
    showMessage("error", both("name_required"));
    return false;
  }
  clearQuestion();
  return createFarmer(form, { name: name, phone: trimmed(form, "phone"), village: trimmed(form, "village") });
}

// ---------------------------------------------------------------- wiring

/** The picker's events (the remembered farmer is checked by refreshChosen). */
export function wireFarmers() {
  picker.button.addEventListener("click", () => {
    if (picker.panel.hidden) openPanel("");
    else closePanel(false);
  });
  picker.button.addEventListener("keydown", onButtonKey);
  picker.input.addEventListener("keydown", onSearchKey);
  picker.input.addEventListener("input", () => {
    clearTimeout(typeTimer);
    const text = picker.input.value;
    typeTimer = setTimeout(() => search(text), TYPE_DELAY_MS);
  });
  document.addEventListener("pointerdown", (ev) => {
    if (!picker.panel.hidden && !picker.panel.contains(ev.target) && !picker.button.contains(ev.target)) {
      closePanel(false);
    }
  });
  el.producerForm.addEventListener("input", clearQuestion);
}
