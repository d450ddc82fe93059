/* catalog.js: farmers and products.
 *
 * Fills the product picker (and the product form's grading rules) from the station,
 * sorted the Vietnamese way, keeping what is chosen; the farmer picker is a search
 * (farmers.js), whose remembered choice is checked here on every round. The "+ thêm"
 * forms add a farmer or a product; the new one is then chosen.
 */
import { api } from "./api.js";
import { clearQuestion, refreshChosen, renderFarmer, saveProducer, wireFarmers } from "./farmers.js";
import { formatDong } from "./format.js";
import { both, t } from "./i18n.js";
import { el, showError, showMessage } from "./page.js";
import { updateRecordButton } from "./station.js";

let products = [];
let gradingKeys = []; // grading rules a product can use (GET /api/grading)

function byName(a, b) {
  return String(a.name).localeCompare(String(b.name), "vi");
}

function fillSelect(select, rows, placeholderKey, labelOf) {
  const chosen = select.value;
  select.textContent = "";
  const first = document.createElement("option");
  first.value = "";
  first.textContent = t(placeholderKey);
  select.appendChild(first);
  for (const row of rows) {
    const opt = document.createElement("option");
    opt.value = row.id;
    opt.textContent = labelOf(row);
    select.appendChild(opt);
  }
  select.value = rows.some((r) => r.id === chosen) ? chosen : "";
}

function productLabel(p) {
  return typeof p.unit_price_dong === "number" ? p.name + " · " + formatDong(p.unit_price_dong) : p.name;
}

function gradingLabel(key) {
  const text = t("grading_" + key);
  return text === "grading_" + key ? key : text + " (" + key + ")";
}

export function renderOptions() {
  renderFarmer();
  fillSelect(el.productSelect, products, "choose_product", productLabel);
  const keys = gradingKeys.map((k) => ({ id: k, name: k }));
  fillSelect(el.productGrading, keys, "grading_none", (k) => gradingLabel(k.id));
  updateRecordButton();
}

export async function refreshCatalog() {
  try {
    refreshChosen();
    const [qs, gk] = await Promise.all([api("GET", "/products"), api("GET", "/grading")]);
    products = qs.slice().sort(byName);
    gradingKeys = gk.keys || [];
    renderOptions();
  } catch (_e) {
    /* the connection banner tells the staff; try again on the next round */
  }
}

// ---------------------------------------------------------------- the add forms

function setFormOpen(toggle, form, open) {
  form.hidden = !open;
  toggle.setAttribute("aria-expanded", String(open));
  toggle.textContent = open ? t("close_form") : t("add");
  if (open) {
    const first = form.querySelector("input");
    if (first) first.focus();
  } else {
    form.reset();
    if (form === el.producerForm) clearQuestion();
  }
}

function wireAddForm(toggle, form, save) {
  toggle.addEventListener("click", () => setFormOpen(toggle, form, form.hidden));
  form.querySelector("[data-cancel]").addEventListener("click", () => setFormOpen(toggle, form, false));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const submit = form.querySelector('button[type="submit"]');
    submit.disabled = true;
    try {
      if (await save(form)) setFormOpen(toggle, form, false);
    } finally {
      submit.disabled = false;
    }
  });
}

function trimmed(form, name) {
  const v = form.elements[name].value.trim();
  return v === "" ? null : v;
}

async function saveProduct(form) {
  const name = trimmed(form, "name");
  if (!name) {
    showMessage("error", both("name_required"));
    return false;
  }
  const priceText = trimmed(form, "price");
  let price = null;
  if (priceText !== null) {
    price = Number(priceText.replace(/[.\s]/g, ""));
    if (!Number.isInteger(price) || price <= 0) {
      showMessage("error", both("price_invalid"));
      return false;
    }
  }
  try {
    const row = await api("POST", "/products", {
      name: name,
      unit_price_dong: price,
      grading: form.elements.grading.value || null,
    });
    await refreshCatalog();
    el.productSelect.value = row.id;
    updateRecordButton();
    showMessage("ok", both("product_added", () => ({ name: row.name })));
    return true;
  } catch (err) {
    showError(err);
    return false;
  }
}

/** The two "+ thêm" buttons and their forms. */
export function wireCatalog() {
  wireAddForm(el.producerToggle, el.producerForm, saveProducer);
  // the duplicate question's answers (farmers.js) end the form too
  el.producerForm.addEventListener("farmer:done", () => setFormOpen(el.producerToggle, el.producerForm, false));
  wireFarmers();
  wireAddForm(el.productToggle, el.productForm, saveProduct);
}
