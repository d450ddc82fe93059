/* paper.js: money and paper (issue 12).
 *
 * - "In phiếu": the farmer's receipt of a priced lot (POST /lots/{id}/receipt), offered
 *   under the message right after a lot is recorded and on each priced lot of today's
 *   list; printed again ("In lại phiếu") only with a reason, as a copy ("BẢN SAO").
 * - "In lại nhãn": any lot label printed again with a reason (POST
 *   /print-jobs/{id}/reprint), a copy when the first one had printed.
 * - The totals card: today's lots, kg and đồng per farmer and per product
 *   (GET /totals), and "In tổng kết ngày" (POST /totals/print).
 * Who asked is the signed-in person (the station's audit log), never sent from here.
 */
import { api } from "./api.js";
import { formatDong, formatKg } from "./format.js";
import { both, t } from "./i18n.js";
import { refreshLots } from "./lots.js";
import { $, el, showError, showMessage } from "./page.js";

const TOTALS_EVERY_MS = 10000;
const REASONS = ["reason_torn", "reason_wet", "reason_extra"];

let totals = null; // GET /api/totals
let offered = null; // the lot just recorded, while its receipt is offered
let offerNode = null;
let dialog = null;

const card = {
  sum: $("totals-sum"),
  unpriced: $("totals-unpriced"),
  empty: $("totals-empty"),
  tables: $("totals-tables"),
  farmers: $("totals-farmers"),
  products: $("totals-products"),
  print: $("totals-print"),
};

function button(testid, key, onClick, primary) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = primary ? "btn btn-primary" : "btn";
  b.setAttribute("data-testid", testid);
  b.textContent = t(key);
  b.addEventListener("click", () => onClick(b));
  return b;
}

// ---------------------------------------------------------------- the reason to print again

function buildDialog() {
  const d = document.createElement("dialog");
  d.className = "reprint-dialog";
  d.setAttribute("data-testid", "reprint-dialog");
  const form = document.createElement("form");
  form.method = "dialog";
  const title = document.createElement("h2");
  const why = document.createElement("p");
  const choices = document.createElement("div");
  choices.className = "reprint-reasons";
  for (const key of [...REASONS, "reason_other"]) {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "radio";
    input.name = "reason";
    input.value = key;
    input.setAttribute("data-testid", key);
    const span = document.createElement("span");
    label.append(input, span);
    choices.appendChild(label);
  }
  const other = document.createElement("input");
  other.maxLength = 200;
  other.setAttribute("data-testid", "reason-text");
  const problem = document.createElement("p");
  problem.className = "reprint-problem";
  problem.hidden = true;
  const row = document.createElement("div");
  row.className = "form-buttons";
  const ok = document.createElement("button");
  ok.type = "submit";
  ok.value = "ok";
  ok.className = "btn btn-primary";
  ok.setAttribute("data-testid", "reprint-confirm");
  const cancel = document.createElement("button");
  cancel.type = "submit";
  cancel.value = "cancel";
  cancel.className = "btn";
  cancel.setAttribute("data-testid", "reprint-cancel");
  row.append(ok, cancel);
  form.append(title, why, choices, other, problem, row);
  d.appendChild(form);
  document.body.appendChild(d);
  other.addEventListener("input", () => {
    form.querySelector('input[value="reason_other"]').checked = true;
  });
  const render = () => {
    title.textContent = t("reprint_title");
    why.textContent = t("reprint_why");
    choices.querySelectorAll("label").forEach((label) => {
      label.querySelector("span").textContent = t(label.querySelector("input").value);
    });
    other.placeholder = t("reason_other_text");
    problem.textContent = t("reason_missing");
    ok.textContent = t("reprint_confirm");
    cancel.textContent = t("cancel");
  };
  return { d, form, other, problem, render };
}

/** Ask why a label or receipt is printed again; resolves to the reason (Vietnamese, as
 * the audit log keeps it) or null when cancelled. */
function askReason() {
  if (!dialog) dialog = buildDialog();
  const { d, form, other, problem, render } = dialog;
  form.reset();
  problem.hidden = true;
  render();
  return new Promise((resolve) => {
    let reason = null;
    const onSubmit = (ev) => {
      if (ev.submitter && ev.submitter.value === "cancel") return;
      const picked = form.querySelector('input[name="reason"]:checked');
      const text = picked && picked.value === "reason_other" ? other.value.trim() : "";
      if (!picked || (picked.value === "reason_other" && !text)) {
        ev.preventDefault();
        problem.hidden = false;
        return;
      }
      reason = picked.value === "reason_other" ? text : t(picked.value, undefined, "vi");
    };
    form.addEventListener("submit", onSubmit);
    d.addEventListener(
      "close",
      () => {
        form.removeEventListener("submit", onSubmit);
        resolve(d.returnValue === "ok" ? reason : null);
      },
      { once: true },
    );
    d.returnValue = "";
    d.showModal();
  });
}

// ---------------------------------------------------------------- receipts and labels

async function printReceipt(lot, btn) {
  let body;
  if (lot.receipt_job_id) {
    const reason = await askReason();
    if (!reason) return;
    body = { reason: reason };
  }
  btn.disabled = true;
  try {
    const r = await api("POST", "/lots/" + encodeURIComponent(lot.id) + "/receipt", body);
    showMessage(
      "ok",
      both(r.copy ? "receipt_copy_queued" : "receipt_queued", () => ({
        day_no: r.day_no,
        amount: formatDong(r.amount_dong),
      })),
    );
    lot.receipt_job_id = lot.receipt_job_id || r.job_id;
    if (offered && offered.id === lot.id) hideOffer();
  } catch (err) {
    showError(err);
  } finally {
    btn.disabled = false;
  }
  refreshLots();
}

async function reprintLabel(lot, btn) {
  const reason = await askReason();
  if (!reason) return;
  btn.disabled = true;
  try {
    const r = await api("POST", "/print-jobs/" + encodeURIComponent(lot.print_job_id) + "/reprint", {
      reason: reason,
    });
    showMessage("ok", both(r.copy ? "label_copy_queued" : "label_requeued", () => ({ day_no: lot.day_no })));
  } catch (err) {
    showError(err);
  } finally {
    btn.disabled = false;
  }
  refreshLots();
}

/** The buttons a row of today's lots gets (lots.js calls this for each lot). */
export function lotPaperButtons(lot) {
  const out = [];
  if (lot.unit_price_dong !== null && lot.unit_price_dong !== undefined) {
    const key = lot.receipt_job_id ? "receipt_again" : "receipt_print";
    out.push(button("lot-receipt-button", key, (b) => printReceipt(lot, b)));
  }
  if (lot.print_job_id) {
    out.push(button("lot-label-again", "label_again", (b) => reprintLabel(lot, b)));
  }
  return out;
}

/** Right after recording: the receipt of a priced lot, one press away. */
export async function offerReceipt(recorded) {
  offered = null;
  renderOffer();
  refreshTotals();
  try {
    const lot = await api("GET", "/lots/" + encodeURIComponent(recorded.id) + "/receipt");
    offered = lot.unit_price_dong === null ? null : lot;
  } catch (_e) {
    offered = null; // the list's "In phiếu" still offers it
  }
  renderOffer();
}

function hideOffer() {
  offered = null;
  renderOffer();
}

function renderOffer() {
  if (!offerNode) {
    offerNode = document.createElement("div");
    offerNode.className = "receipt-offer";
    offerNode.setAttribute("data-testid", "receipt-offer");
    el.message.after(offerNode);
  }
  offerNode.textContent = "";
  offerNode.hidden = !offered;
  if (!offered) return;
  const lot = offered;
  const text = document.createElement("span");
  text.setAttribute("data-testid", "receipt-offer-text");
  text.textContent = t("receipt_offer", {
    day_no: lot.day_no,
    weight: formatKg(lot.net_g),
    price: formatDong(lot.unit_price_dong),
    amount: formatDong(lot.amount_dong),
  });
  offerNode.append(text, button("receipt-button", "receipt_print", (b) => printReceipt(lot, b), true));
}

// ---------------------------------------------------------------- day totals

function totalsRow(tbody, row) {
  const tr = document.createElement("tr");
  tr.setAttribute("data-testid", "totals-row");
  const cells = [
    row.name,
    String(row.lots),
    formatKg(row.net_g),
    formatDong(row.amount_dong) + (row.unpriced_lots ? "*" : ""),
  ];
  const labels = ["", "totals_col_lots", "totals_col_kg", "totals_col_amount"];
  cells.forEach((text, i) => {
    const td = document.createElement(i === 0 ? "th" : "td");
    if (i === 0) td.scope = "row";
    else td.dataset.label = t(labels[i]);
    td.textContent = text;
    tr.appendChild(td);
  });
  tbody.appendChild(tr);
}

export function renderTotals() {
  card.print.textContent = t("totals_print");
  if (!totals) return;
  const any = totals.lots > 0;
  card.empty.hidden = any;
  card.tables.hidden = !any;
  card.sum.hidden = !any;
  card.sum.textContent = t("totals_lots", {
    lots: totals.lots,
    weight: formatKg(totals.net_g),
    amount: formatDong(totals.amount_dong),
  });
  card.unpriced.hidden = !totals.unpriced_lots;
  card.unpriced.textContent = "* " + t("totals_unpriced", { n: totals.unpriced_lots });
  for (const [table, rows] of [
    [card.farmers, totals.farmers],
    [card.products, totals.products],
  ]) {
    const tbody = table.tBodies[0];
    tbody.textContent = "";
    for (const row of rows) totalsRow(tbody, row);
  }
  if (offerNode) renderOffer();
}

export async function refreshTotals() {
  try {
    const next = await api("GET", "/totals");
    const changed = JSON.stringify(next) !== JSON.stringify(totals);
    totals = next;
    if (changed) renderTotals();
  } catch (_e) {
    /* shown by the connection banner */
  }
}

async function printTotals() {
  card.print.disabled = true;
  try {
    const r = await api("POST", "/totals/print", {});
    const [y, m, d] = String(r.day).split("-");
    showMessage("ok", both("totals_printed", () => ({ day: d + "/" + m + "/" + y })));
  } catch (err) {
    showError(err);
  } finally {
    card.print.disabled = false;
  }
}

export function wirePaper() {
  card.print.addEventListener("click", printTotals);
  refreshTotals();
  setInterval(refreshTotals, TOTALS_EVERY_MS);
}
