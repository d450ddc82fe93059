/* corrections.js: a lead's corrections (issue 12). Nothing is deleted: a lot is voided
 * or its farmer/product corrected with a reason, and the station keeps the lot as it was
 * recorded (edge/web/corrections_api.py).
 *
 * - lotCorrectionButtons(lot): "Sửa" and "Hủy lô" on a row of today's lots, for leads,
 *   each opening one dialog (farmer and product pickers, a required reason);
 * - wireCorrections(): the leads' "Sửa danh mục" card (edit a farmer or a product, merge
 *   two farmers), in the station tab.
 * The signed-in person's role comes from signin.js (GET /api/me); until it is known
 * the page acts as a lead would (the station refuses what the role may not do).
 */
import { api, ApiError } from "./api.js";
import { refreshCatalog } from "./catalog.js";
import { formatKg } from "./format.js";
import { both, lang, t } from "./i18n.js";
import { refreshLots } from "./lots.js";
import { $, showMessage } from "./page.js";
import { person } from "./signin.js";

let dialog = null;
let cardParts = null;
let producers = [];
let products = [];

export function isLead() {
  return !person || person.role === "lead";
}

function node(tag, testid, cls) {
  const n = document.createElement(tag);
  if (testid) n.setAttribute("data-testid", testid);
  if (cls) n.className = cls;
  return n;
}

function button(testid, cls, onClick) {
  const b = node("button", testid, cls);
  b.type = "button";
  if (onClick) b.addEventListener("click", () => onClick(b));
  return b;
}

function labelled(key, input) {
  const label = node("label");
  const span = node("span");
  span.dataset.corrKey = key;
  span.textContent = t(key);
  label.append(span, input);
  return label;
}

function byName(a, b) {
  return String(a.name).localeCompare(String(b.name), "vi");
}

function fill(select, rows, placeholderKey, chosen) {
  select.textContent = "";
  const first = node("option");
  first.value = "";
  first.textContent = t(placeholderKey);
  select.appendChild(first);
  for (const row of rows) {
    const opt = node("option");
    opt.value = row.id;
    opt.textContent = row.village ? row.name + " · " + row.village : row.name;
    select.appendChild(opt);
  }
  select.value = rows.some((r) => r.id === chosen) ? chosen : "";
}

async function loadCatalog() {
  const [ps, qs] = await Promise.all([api("GET", "/producers"), api("GET", "/products")]);
  producers = ps.slice().sort(byName);
  products = qs.slice().sort(byName);
}

function errorText(err) {
  return err instanceof ApiError ? err.msg[lang] : String(err);
}

// ---------------------------------------------------------------- a lot's dialog

function buildDialog() {
  const d = node("dialog", "correct-dialog", "correct-dialog");
  const form = node("form");
  form.method = "dialog";
  const title = node("h2");
  const about = node("p", "correct-lot", "correct-lot");
  const producer = node("select", "correct-producer");
  const product = node("select", "correct-product");
  const pickers = node("div", null, "correct-pickers");
  pickers.append(labelled("corr_producer", producer), labelled("corr_product", product));
  const reason = node("input", "correct-reason");
  reason.maxLength = 200;
  reason.autocomplete = "off";
  const problem = node("p", "correct-problem", "correct-problem");
  problem.setAttribute("role", "alert");
  problem.hidden = true;
  const row = node("div", null, "form-buttons");
  const ok = node("button", "correct-confirm", "btn btn-primary");
  ok.type = "submit";
  ok.value = "ok";
  const close = node("button", "correct-close", "btn");
  close.type = "submit";
  close.value = "close";
  row.append(ok, close);
  form.append(title, about, pickers, labelled("corr_reason", reason), problem, row);
  d.appendChild(form);
  document.body.appendChild(d);
  return { d, form, title, about, pickers, producer, product, reason, problem, ok, close };
}

/** Open the dialog for ``lot``: mode "correct" (pickers and reason) or "void" (reason). */
async function openDialog(lot, mode) {
  if (!dialog) dialog = buildDialog();
  const g = dialog;
  try {
    await loadCatalog();
  } catch (err) {
    showMessage("error", { vi: errorText(err), en: errorText(err) });
    return;
  }
  g.form.reset();
  g.problem.hidden = true;
  g.d.dataset.mode = mode;
  g.d.dataset.lotId = lot.id;
  g.title.textContent = t(mode === "void" ? "corr_void_title" : "corr_title", { n: lot.day_no || lot.seq });
  g.about.textContent = [lot.producer_name, lot.product_name, formatKg(lot.net_g)].join(" · ");
  g.pickers.hidden = mode === "void";
  fill(g.producer, producers, "choose_producer", lot.producer_id);
  fill(g.product, products, "choose_product", lot.product_id);
  g.form.querySelectorAll("[data-corr-key]").forEach((s) => {
    s.textContent = t(s.dataset.corrKey);
  });
  g.reason.placeholder = t(mode === "void" ? "corr_void_reason_hint" : "corr_reason_hint");
  g.ok.textContent = t(mode === "void" ? "corr_void_confirm" : "corr_confirm");
  g.ok.classList.toggle("btn-danger", mode === "void");
  g.close.textContent = t("corr_close");
  const onSubmit = async (ev) => {
    if (ev.submitter && ev.submitter.value === "close") return;
    ev.preventDefault();
    const why = g.reason.value.trim();
    if (!why) return say("corr_reason_missing");
    let path = "/lots/" + encodeURIComponent(lot.id) + "/" + (mode === "void" ? "void" : "correct");
    let body = { reason: why };
    if (mode === "correct") {
      const p = g.producer.value;
      const q = g.product.value;
      if (!p || !q) return say("corr_pick");
      if (p === lot.producer_id && q === lot.product_id) return say("corr_same");
      if (p !== lot.producer_id) body.producer_id = p;
      if (q !== lot.product_id) body.product_id = q;
    }
    g.ok.disabled = true;
    try {
      await api("POST", path, body);
      g.form.removeEventListener("submit", onSubmit);
      g.d.close("done");
      const n = lot.day_no || lot.seq;
      showMessage("ok", both(mode === "void" ? "corr_voided" : "corr_corrected", () => ({ n: n })));
      refreshLots();
    } catch (err) {
      g.problem.textContent = errorText(err);
      g.problem.hidden = false;
    } finally {
      g.ok.disabled = false;
    }
  };
  const say = (key) => {
    g.problem.textContent = t(key);
    g.problem.hidden = false;
  };
  g.form.addEventListener("submit", onSubmit);
  g.d.addEventListener("close", () => g.form.removeEventListener("submit", onSubmit), { once: true });
  g.d.showModal();
  (mode === "void" ? g.reason : g.producer).focus();
}

/** The "Sửa" and "Hủy lô" buttons of a lot's row (leads only; none for a voided lot). */
export function lotCorrectionButtons(lot) {
  if (!isLead() || lot.voided) return [];
  const fix = button("lot-correct-button", "btn", () => openDialog(lot, "correct"));
  fix.textContent = t("corr_button");
  const drop = button("lot-void-button", "btn btn-danger-outline", () => openDialog(lot, "void"));
  drop.textContent = t("corr_void_button");
  return [fix, drop];
}

// ---------------------------------------------------------------- farmers and products

function input(testid, max, type) {
  const i = node("input", testid);
  i.maxLength = max;
  i.autocomplete = "off";
  if (type) i.type = type;
  return i;
}

function buildCard() {
  const card = node("div", "catalog-edit", "card catalog-edit");
  const h = node("h2");
  h.dataset.corrKey = "corr_catalog_title";
  const help = node("p", null, "corr-help");
  help.dataset.corrKey = "corr_catalog_help";

  const fForm = node("form", "edit-producer-form", "corr-form");
  const fPick = node("select", "edit-producer-select");
  const fName = input("edit-producer-name", 120);
  const fPhone = input("edit-producer-phone", 40, "tel");
  const fVillage = input("edit-producer-village", 120);
  const fSave = node("button", "edit-producer-save", "btn btn-primary");
  fSave.type = "submit";
  fSave.dataset.corrKey = "save";
  const fHead = node("h3");
  fHead.dataset.corrKey = "corr_edit_producer";
  fForm.append(fHead, labelled("producer", fPick), labelled("name", fName));
  fForm.append(labelled("phone_optional", fPhone), labelled("village_optional", fVillage), fSave);

  const pForm = node("form", "edit-product-form", "corr-form");
  const pPick = node("select", "edit-product-select");
  const pName = input("edit-product-name", 120);
  const pPrice = input("edit-product-price", 12);
  pPrice.inputMode = "numeric";
  const pSave = node("button", "edit-product-save", "btn btn-primary");
  pSave.type = "submit";
  pSave.dataset.corrKey = "save";
  const pHead = node("h3");
  pHead.dataset.corrKey = "corr_edit_product";
  pForm.append(pHead, labelled("product", pPick), labelled("product_name", pName));
  pForm.append(labelled("price_optional", pPrice), pSave);

  const mForm = node("form", "merge-form", "corr-form");
  const mFrom = node("select", "merge-from");
  const mInto = node("select", "merge-into");
  const mReason = input("merge-reason", 200);
  const mSave = node("button", "merge-save", "btn btn-danger");
  mSave.type = "submit";
  mSave.dataset.corrKey = "corr_merge_confirm";
  const mHead = node("h3");
  mHead.dataset.corrKey = "corr_merge";
  const mHelp = node("p", null, "corr-help");
  mHelp.dataset.corrKey = "corr_merge_help";
  mForm.append(mHead, mHelp, labelled("corr_merge_from", mFrom), labelled("corr_merge_into", mInto));
  mForm.append(labelled("corr_reason", mReason), mSave);

  card.append(h, help, fForm, pForm, mForm);
  const parts = { card, fForm, fPick, fName, fPhone, fVillage, pForm, pPick, pName, pPrice, mForm, mFrom, mInto, mReason };

  fPick.addEventListener("change", () => {
    const p = producers.find((x) => x.id === fPick.value) || {};
    fName.value = p.name || "";
    fPhone.value = p.phone || "";
    fVillage.value = p.village || "";
  });
  pPick.addEventListener("change", () => {
    const p = products.find((x) => x.id === pPick.value) || {};
    pName.value = p.name || "";
    pPrice.value = typeof p.unit_price_dong === "number" ? String(p.unit_price_dong) : "";
  });
  const empty = (v) => (v.trim() === "" ? null : v.trim());
  submitWith(fForm, async () => {
    if (!fPick.value) return [false, both("corr_pick")];
    const row = await api("POST", "/producers/" + encodeURIComponent(fPick.value), {
      name: fName.value.trim(),
      phone: empty(fPhone.value),
      village: empty(fVillage.value),
    });
    return [true, both("corr_saved", () => ({ name: row.name }))];
  });
  submitWith(pForm, async () => {
    if (!pPick.value) return [false, both("corr_pick")];
    const text = empty(pPrice.value);
    const price = text === null ? null : Number(text.replace(/[.\s]/g, ""));
    if (price !== null && (!Number.isInteger(price) || price <= 0)) return [false, both("price_invalid")];
    const row = await api("POST", "/products/" + encodeURIComponent(pPick.value), {
      name: pName.value.trim(),
      unit_price_dong: price,
    });
    return [true, both("corr_saved", () => ({ name: row.name }))];
  });
  submitWith(mForm, async () => {
    if (!mFrom.value || !mInto.value) return [false, both("corr_pick")];
    if (mFrom.value === mInto.value) return [false, both("corr_merge_same")];
    if (!mReason.value.trim()) return [false, both("corr_reason_missing")];
    const from = producers.find((x) => x.id === mFrom.value);
    const into = producers.find((x) => x.id === mInto.value);
    await api("POST", "/producers/" + encodeURIComponent(mFrom.value) + "/merge", {
      into: mInto.value,
      reason: mReason.value.trim(),
    });
    return [true, both("corr_merged", () => ({ from: from.name, into: into.name }))];
  });
  return parts;
}

/** On submit: run ``save``, which answers [done, message {vi, en}]; the message is
 * shown and, when done, the lists reload. */
function submitWith(form, save) {
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const submit = form.querySelector('button[type="submit"]');
    submit.disabled = true;
    try {
      const [ok, said] = await save();
      showMessage(ok ? "ok" : "error", said);
      if (ok) {
        form.reset();
        await Promise.all([refreshCatalog(), refreshCard()]);
        refreshLots();
      }
    } catch (err) {
      showMessage("error", { vi: errorText(err), en: errorText(err) });
    } finally {
      submit.disabled = false;
    }
  });
}

async function refreshCard() {
  if (!cardParts) return;
  try {
    await loadCatalog();
  } catch (_e) {
    return;
  }
  renderCorrections();
}

/** Texts and lists of the leads' card (language switch, catalogue reload). */
export function renderCorrections() {
  if (!cardParts) return;
  const c = cardParts;
  c.card.querySelectorAll("[data-corr-key]").forEach((s) => {
    s.textContent = t(s.dataset.corrKey);
  });
  fill(c.fPick, producers, "choose_producer", c.fPick.value);
  fill(c.pPick, products, "choose_product", c.pPick.value);
  fill(c.mFrom, producers, "choose_producer", c.mFrom.value);
  fill(c.mInto, producers, "choose_producer", c.mInto.value);
}

/** The leads' card, in the station tab (nothing for other roles). */
export function wireCorrections() {
  if (!isLead() || cardParts) return;
  const panel = $("panel-station");
  if (!panel) return;
  cardParts = buildCard();
  panel.appendChild(cardParts.card);
  refreshCard();
}
