/* lots.js: today's lots and the labels held after an interrupted print.
 *
 * The table lists today's lots, newest first, with print, sync and grade pills and a
 * button opening the lot's photo step. A label cut off while printing is "held" until
 * the staff look at the printer and press "print again" (POST .../reprint); each held
 * label says why as far as the station knows (a restart or power cut, a lost
 * connection, or what the printer reported: the job's fault, faults.js).
 */
import { api } from "./api.js";
import { faultText } from "./faults.js";
import { formatKg, formatTime, gradeLabel } from "./format.js";
import { both, t } from "./i18n.js";
import { el, showError, showMessage } from "./page.js";

let lots = []; // GET /api/lots, newest first
let lotsInFlight = false;
let heldJobs = []; // GET /api/print-jobs with status "held"
let lastHeldKey = "";
let openLotPhoto = () => {};
let lotButtons = () => []; // more buttons for a lot's row (main.js passes paper.js's)

/** Extra buttons for each lot's row: lotButtons(lot) returns a list of elements. */
export function onLotRow(buttons) {
  lotButtons = buttons;
}

/** What a lot's photo button does (main.js passes photo.js's openPhoto). */
export function onLotPhoto(open) {
  openLotPhoto = open;
}

// ---------------------------------------------------------------- today's lots

function pill(kind, status, text, testid) {
  const span = document.createElement("span");
  span.setAttribute("data-testid", testid);
  span.className = "pill";
  span.dataset.kind = kind;
  span.dataset.status = status || "none";
  span.textContent = text;
  return span;
}

function cell(tr, cls, labelKey, content) {
  const td = document.createElement("td");
  td.className = cls;
  td.dataset.label = t(labelKey);
  if (content instanceof Node) td.appendChild(content);
  else td.textContent = content;
  tr.appendChild(td);
  return td;
}

export function renderLots() {
  const body = el.lotsBody;
  body.textContent = "";
  for (const lot of lots) {
    const tr = document.createElement("tr");
    tr.setAttribute("data-testid", "lot-row");
    tr.dataset.lotId = lot.id;
    tr.dataset.seq = String(lot.seq);
    const top = cell(tr, "c-top", "col_lot", "");
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = formatTime(lot.recorded_at) + " · #" + (lot.day_no ?? lot.seq);
    const ps = lot.print_status;
    const ss = lot.sync_status;
    const pKnown = ["queued", "sending", "printed", "held", "failed"].includes(ps);
    const sKnown = ["pending", "sent", "confirmed"].includes(ss);
    top.append(
      meta,
      pill("print", ps, pKnown ? t("print_" + ps) : ps || "–", "lot-print"),
      pill("sync", ss, sKnown ? t("sync_" + ss) : ss || "–", "lot-sync"),
    );
    if (lot.voided) {
      // voided (issue 12): kept in the list, struck through, said so (corrections.js)
      tr.classList.add("lot-voided");
      tr.dataset.voided = "true";
      tr.title = lot.void_reason || "";
      top.append(pill("void", "voided", t("lot_voided"), "lot-voided"));
    }
    if (lot.grade || lot.proposed_grade) {
      const confirmed = Boolean(lot.grade);
      const text = confirmed
        ? t("lot_grade", { grade: gradeLabel(lot.grade) })
        : t("lot_proposed", { grade: gradeLabel(lot.proposed_grade) });
      top.append(pill("grade", confirmed ? "confirmed" : "proposed", text, "lot-grade"));
    }
    const open = document.createElement("button");
    open.type = "button";
    open.className = "btn lot-photo";
    open.setAttribute("data-testid", "lot-photo-button");
    open.textContent = t("photo_open");
    open.addEventListener("click", () => openLotPhoto(lot.id));
    top.append(open, ...lotButtons(lot));
    cell(tr, "c-producer", "col_producer", lot.producer_name).setAttribute("data-testid", "lot-producer");
    cell(tr, "c-product", "col_product", lot.product_name).setAttribute("data-testid", "lot-product");
    cell(tr, "c-weight", "col_weight", formatKg(lot.net_g)).setAttribute("data-testid", "lot-weight");
    body.appendChild(tr);
  }
  el.lotsEmpty.hidden = lots.length > 0;
  el.lotsCount.textContent = lots.length ? "(" + lots.length + ")" : "";
}

/** Reload today's lots; redraw only when something changed. One request at a time. */
export async function refreshLots() {
  if (lotsInFlight) return;
  lotsInFlight = true;
  try {
    const rows = await api("GET", "/lots");
    rows.sort((a, b) => b.seq - a.seq);
    const changed = JSON.stringify(rows) !== JSON.stringify(lots);
    lots = rows;
    if (changed) {
      renderLots();
      renderHeld();
    }
  } catch (_e) {
    /* shown by the connection banner */
  } finally {
    lotsInFlight = false;
  }
}

// ---------------------------------------------------------------- held print jobs

/** Each state poll's print job counts: the held list is fetched again when they move. */
export function noteJobCounts(jobs) {
  if (jobs.held || heldJobs.length) {
    const key = JSON.stringify(jobs);
    if (key !== lastHeldKey) {
      lastHeldKey = key;
      refreshHeld();
    }
  }
}

async function refreshHeld() {
  try {
    const jobs = await api("GET", "/print-jobs");
    heldJobs = jobs.filter((j) => j.status === "held");
    renderHeld();
  } catch (_e) {
    /* next round */
  }
}

export function renderHeld() {
  el.heldList.textContent = "";
  el.held.hidden = heldJobs.length === 0;
  for (const job of heldJobs) {
    const lot = lots.find((l) => l.id === job.record_id);
    const li = document.createElement("li");
    li.setAttribute("data-testid", "held-job");
    li.dataset.jobId = job.id;
    const text = document.createElement("span");
    text.className = "held-text";
    text.textContent = lot
      ? [t("lot_short", { seq: lot.day_no ?? lot.seq }), lot.producer_name, lot.product_name, formatKg(lot.net_g)].join(" · ")
      : t("label_short", { id: String(job.record_id).slice(-6) });
    const btn = document.createElement("button");
    btn.type = "button";
    btn.className = "btn btn-primary";
    btn.setAttribute("data-testid", "reprint-button");
    btn.textContent = t("reprint");
    btn.addEventListener("click", () => reprint(job.id, btn));
    li.append(text, btn);
    const why = faultText(job.fault);
    if (why) {
      const note = document.createElement("span");
      note.className = "held-why";
      note.setAttribute("data-testid", "held-why");
      note.dataset.fault = String(job.fault.code);
      note.textContent = why;
      li.append(note);
    }
    el.heldList.appendChild(li);
  }
}

async function reprint(jobId, btn) {
  btn.disabled = true;
  try {
    await api("POST", "/print-jobs/" + encodeURIComponent(jobId) + "/reprint", {
      reason: t("reprint_reason", undefined, "vi") + " / staff confirmed no label after an interrupted print",
    });
    heldJobs = heldJobs.filter((j) => j.id !== jobId);
    renderHeld();
    showMessage("ok", both("reprint_ok"));
  } catch (err) {
    btn.disabled = false;
    showError(err);
  }
  refreshHeld();
  refreshLots();
}
