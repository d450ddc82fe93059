/* station.js: the live station and the "Ghi & In" button.
 *
 * Shows the state the station pushes (stream.js, GET /api/events), or, only while that
 * stream is down, polls GET /api/state every 500 ms (every 5 s while the page is hidden): the weight in big digits, the scale's status, tare and zero, the status card
 * (outbox, central link with a warning when it runs without TLS, printer, camera)
 * and the connection-lost banner. The record button is enabled only when a farmer,
 * a product and a stable positive weight are there; it says why not. recordLot()
 * records and prints, then opens the photo step.
 */
import { api, ApiError } from "./api.js";
import { formatKg, formatTime, setSiteTimeZone } from "./format.js";
import { faultText } from "./faults.js";
import { both, t } from "./i18n.js";
import { noteJobCounts, refreshLots } from "./lots.js";
import { el, live, showError, showMessage } from "./page.js";
import { offerReceipt } from "./paper.js";
import { openPhoto, renderCamera } from "./photo.js";

const STATE_EVERY_MS = 500;
const STATE_HIDDEN_EVERY_MS = 5000;

const SCALE_STATUSES = ["stable", "settling", "unstable", "overload", "underload", "offline"];

let busy = false; // a lot is being recorded
let tareBusy = false; // a tare, clear or zero command is out

function scaleStatus() {
  if (!live.connected || !live.station) return "unknown";
  const s = live.station.scale && live.station.scale.status;
  return SCALE_STATUSES.includes(s) ? s : "unknown";
}

// ---------------------------------------------------------------- showing the state

export function renderState() {
  const station = live.station;
  el.banner.hidden = live.connected || !live.polled;
  if (!station) {
    updateRecordButton();
    return;
  }
  el.site.textContent = station.site ? station.site.name : "";
  if (station.site && station.site.timezone) setSiteTimeZone(station.site.timezone);

  if (!live.connected) {
    // Nothing on the page is current any more: say so rather than show old values.
    el.scaleStatus.dataset.status = "unknown";
    el.scaleStatusText.textContent = t("status_nolink");
    renderWeight(null);
    el.weight.dataset.status = "unknown";
    el.scaleDetail.hidden = true;
    renderTare(null, "unknown");
    for (const node of [el.outboxPending, el.linkStatus, el.printerStatus]) {
      node.textContent = "–";
      node.dataset.status = "unknown";
    }
    el.linkPlaintext.hidden = true;
    el.printerQueued.textContent = "";
    el.printerError.hidden = true;
    updateRecordButton();
    return;
  }
  const status = scaleStatus();
  const sc = station.scale || {};
  el.scaleStatus.dataset.status = status;
  el.scaleStatusText.textContent = t("status_" + status);
  el.weight.dataset.status = status;
  renderWeight(status === "offline" || status === "unknown" ? null : sc.weight_g);
  el.weightLabel.textContent = t(sc.net ? "weight_label_net" : "weight_label");
  // A fault is a sentence in the page's language (faults.js), never the raw error.
  const detail = status !== "stable" ? faultText(sc.fault) : "";
  el.scaleDetail.dataset.fault = detail && sc.fault ? String(sc.fault.code) : "";
  el.scaleDetail.hidden = !detail;
  el.scaleDetail.textContent = detail;
  renderTare(sc, status);

  el.sim.hidden = !sc.simulated;

  const outbox = station.outbox || {};
  el.outboxPending.textContent = typeof outbox.pending === "number" ? String(outbox.pending) : "–";
  el.outboxPending.dataset.pending = String(outbox.pending || 0);

  // A conflict (central holds seqs this station never assigned) or a nearly full disk
  // outranks the connection state: both need someone to act.
  const problem = outbox.ack_conflict ? "conflict" : outbox.disk && outbox.disk.nearly_full ? "disk_full" : null;
  const link = problem || station.link || "unknown";
  el.linkStatus.dataset.status = link;
  el.linkStatus.textContent = ["disabled", "connecting", "online", "offline", "conflict", "disk_full"].includes(link)
    ? t("link_" + link)
    : String(link);
  // Plain MQTT to another machine ([mqtt] insecure_plaintext): said until it is fixed.
  el.linkPlaintext.hidden = station.link_plaintext !== true;
  el.linkPlaintext.textContent = station.link_plaintext === true ? t("link_plaintext") : "";

  const printer = station.printer || {};
  const pstatus = printer.status || "unknown";
  el.printerStatus.dataset.status = pstatus;
  el.printerStatus.textContent = ["unknown", "ready", "offline", "paper_out", "cover_open", "error"].includes(pstatus)
    ? t("printer_" + pstatus)
    : String(pstatus);
  const jobs = printer.jobs || {};
  const waiting = (jobs.queued || 0) + (jobs.sending || 0);
  const parts = [waiting ? t("jobs_waiting", { n: waiting }) : t("jobs_none")];
  if (jobs.held) parts.push(t("jobs_held", { n: jobs.held }));
  if (jobs.failed) parts.push(t("jobs_failed", { n: jobs.failed }));
  el.printerQueued.textContent = parts.join(" · ");
  el.printerQueued.dataset.queued = String(waiting);
  // Why it does not print, or a warning while it prints (paper near its end).
  const perror = faultText(printer.fault);
  el.printerError.hidden = !perror;
  el.printerError.textContent = perror;
  el.printerError.dataset.fault = perror ? String(printer.fault.code) : "";

  renderCamera(station.camera);
  updateRecordButton();
}

let shownWeight = "";
let shownWidth = 0;
let weightGrams = null;

/** Big digits, "kg" smaller; the font shrinks rather than ever cut a digit off. */
function renderWeight(grams) {
  weightGrams = grams;
  const text = formatKg(grams);
  const box = el.weight;
  if (text !== shownWeight) {
    shownWeight = text;
    const number = document.createElement("span");
    number.className = "digits";
    number.textContent = text.slice(0, -3);
    const unit = document.createElement("span");
    unit.className = "unit-kg";
    unit.textContent = "kg";
    box.replaceChildren(number, document.createTextNode(" "), unit);
    shownWidth = -1;
  }
  if (box.clientWidth !== shownWidth) {
    shownWidth = box.clientWidth;
    box.style.fontSize = "";
    if (box.scrollWidth > box.clientWidth && box.clientWidth > 0) {
      const size = parseFloat(window.getComputedStyle(box).fontSize);
      box.style.fontSize = Math.floor((size * box.clientWidth) / box.scrollWidth) + "px";
    }
  }
}

/** The weight again at the screen's new width (main.js calls it on resize). */
export function refitWeight() {
  renderWeight(weightGrams);
}

// ---------------------------------------------------------------- tare and zero

/** What is subtracted (software or on the scale) and which tare/zero buttons apply. */
function renderTare(sc, status) {
  const info = el.tareInfo;
  let text = "";
  if (sc && sc.tare_source === "software") {
    text = t("tare_software", { weight: formatKg(sc.tare_g) });
  } else if (sc && sc.tare_source === "scale") {
    text = typeof sc.tare_g === "number" ? t("tare_scale", { weight: formatKg(sc.tare_g) }) : t("tare_scale_unknown");
  }
  info.hidden = !text;
  info.textContent = text;
  info.dataset.source = (sc && sc.tare_source) || "";
  const scaleLive = Boolean(sc) && status !== "offline" && status !== "unknown";
  const software = !sc || sc.tare_mode !== "scale";
  el.tareButton.disabled = tareBusy || !scaleLive || (software && status !== "stable");
  el.tareButton.dataset.mode = sc ? sc.tare_mode || "" : "";
  el.tareClear.hidden = !(sc && sc.tare_source === "software");
  el.tareClear.disabled = tareBusy;
  el.zeroButton.hidden = !(sc && sc.can_zero);
  el.zeroButton.disabled = tareBusy || !scaleLive;
}

async function scaleCommand(path, done) {
  if (tareBusy) return;
  tareBusy = true;
  renderState();
  try {
    const res = await api("POST", path, undefined, 5000);
    showMessage("ok", done(res));
  } catch (err) {
    showError(err);
  } finally {
    tareBusy = false;
    pollState();
  }
}

export function wireTare() {
  el.tareButton.addEventListener("click", () =>
    scaleCommand("/scale/tare", (res) =>
      res.tare_source === "software"
        ? both("tare_done_software", (l) => ({ weight: formatKg(res.scale.tare_g, l) }))
        : both("tare_done_scale"),
    ),
  );
  el.tareClear.addEventListener("click", () => scaleCommand("/scale/tare/clear", () => both("tare_cleared")));
  el.zeroButton.addEventListener("click", () => scaleCommand("/scale/zero", () => both("zero_done")));
}

// ---------------------------------------------------------------- polling

let stateTimer = null;
let stateInFlight = false;
let stateAgain = false;

let pushed = false; // the event stream (stream.js) is up: no polling loop

/** stream.js: the station pushes its state (true), or the stream is down (false: poll). */
export function setPushed(on) {
  if (on === pushed) return;
  pushed = on;
  if (on) clearTimeout(stateTimer);
  else pollState();
}

/** A GET /api/state body, polled or pushed: remember it and show it. */
export function applyState(s) {
  const before = live.station;
  live.station = s;
  live.connected = true;
  live.polled = true;
  if (changedCounts(before, s)) refreshLots();
  noteJobCounts((s.printer && s.printer.jobs) || {});
  renderState();
}

/** One GET /api/state now; while the event stream is down, also the polling loop. A call
 * while a request is out asks for another round right after it. */
export async function pollState() {
  if (stateInFlight) {
    stateAgain = true;
    return;
  }
  stateInFlight = true;
  clearTimeout(stateTimer);
  let s = null;
  try {
    s = await api("GET", "/state", undefined, 4000);
  } catch (_e) {
    live.connected = false;
  } finally {
    stateInFlight = false;
    live.polled = true;
  }
  if (s) applyState(s);
  else renderState();
  const again = stateAgain;
  stateAgain = false;
  if (again) stateTimer = setTimeout(pollState, 0);
  else if (!pushed) stateTimer = setTimeout(pollState, document.hidden ? STATE_HIDDEN_EVERY_MS : STATE_EVERY_MS);
}

/** Print and sync progress show in the lots list: reload it when the counts move. */
function changedCounts(a, b) {
  if (!a) return false;
  return (
    JSON.stringify([a.outbox && a.outbox.pending, a.printer && a.printer.jobs]) !==
    JSON.stringify([b.outbox && b.outbox.pending, b.printer && b.printer.jobs])
  );
}

// ---------------------------------------------------------------- recording

function recordBlocker() {
  if (busy) return "hint_busy";
  if (!live.connected || !live.station) return "hint_no_connection";
  if (!el.producerSelect.value) return "hint_choose_producer";
  if (!el.productSelect.value) return "hint_choose_product";
  const status = scaleStatus();
  if (status !== "stable") return "hint_scale_" + status;
  const w = live.station.scale.weight_g;
  if (typeof w !== "number" || w <= 0) return "hint_put_weight";
  return null;
}

/** Enabled or not, with the hint under the label saying what is missing. */
export function updateRecordButton() {
  const blocker = recordBlocker();
  el.record.disabled = blocker !== null;
  el.recordHint.textContent = t(blocker || "hint_ready");
  el.recordHint.dataset.blocker = blocker || "";
}

export async function recordLot() {
  // The button is the client's guard; the station decides (it refuses an
  // unstable or offline scale with a message we show as it comes).
  if (busy) return;
  busy = true;
  updateRecordButton();
  try {
    const lot = await api(
      "POST",
      "/lots",
      { producer_id: el.producerSelect.value, product_id: el.productSelect.value },
      15000,
    );
    showMessage(
      "ok",
      both("recorded", (l) => ({
        seq: lot.day_no ?? lot.seq, // the daily lot number, as on the label
        time: formatTime(lot.recorded_at),
        weight: formatKg(lot.net_g, l),
        producer: lot.producer_name,
        product: lot.product_name,
      })),
    );
    el.message.dataset.lotId = lot.id;
    el.message.dataset.seq = String(lot.seq);
    openPhoto(lot.id);
    offerReceipt(lot); // "In phiếu" for a priced lot, right under the message
  } catch (err) {
    if (err instanceof ApiError && err.code === "network") {
      showMessage("error", both("record_unknown"));
    } else {
      showError(err);
    }
  } finally {
    busy = false;
    updateRecordButton();
    refreshLots();
    pollState();
  }
}
