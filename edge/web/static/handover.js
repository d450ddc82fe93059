/* handover.js: the courier handover page (issue 14), handover.html. Plain ES module,
 * no build step; it shares sign-in, texts and the API helper with the station page.
 *
 * Steps, one shown at a time:
 *   carriers  the carriers with parcels waiting (GET /api/handovers/carriers); a tap
 *             starts the handover (POST /api/handovers) or resumes the one left open.
 *   scan      every scan's verdict at once, big and coloured, with a short sound:
 *             a barcode scanner in keyboard mode (a burst of keys ending in Enter,
 *             caught anywhere on the page, no box focused: scanner.js), the phone's camera (a photo
 *             sent to the station's decoder, /scans/photo) or the station's camera
 *             (/scans/capture); undo of the last scan; the live reconciliation (expected,
 *             scanned, missing, extra, kg and COD scanned, the missing tracking numbers).
 *   close     missing parcels need a lead's "not handed over" (a lead signed in here gets
 *             the button and a reason); then the courier confirms with a PIN or a
 *             signature drawn on the canvas (sent as a PNG data URL).
 *   done      "Đã in biên bản bàn giao" and a copy on demand.
 * The open handover's id is kept in the address (#<id>): a reload, or the station
 * restarted, comes back to it. Scans go to the station one at a time, in the order read.
 */
import { api, ApiError } from "./api.js";
import { formatDong, formatKg } from "./format.js";
import { both, lang, t, toggleLang } from "./i18n.js";
import { $ } from "./page.js";
import { catchScans } from "./scanner.js";
import { person, renderPerson, signIn } from "./signin.js";

const POLL_MS = 3000; // the view again (another device may have scanned or confirmed)
const GOOD = ["accepted"];
const SOFT = ["duplicate"]; // amber: ignored, nothing wrong

const ui = {
  notice: $("ho-notice"),
  home: $("ho-home"),
  subtitle: $("ho-subtitle"),
  langToggle: $("lang-toggle"),
  carriers: $("ho-carriers"),
  carrierList: $("ho-carrier-list"),
  carriersEmpty: $("ho-carriers-empty"),
  scan: $("ho-scan"),
  back: $("ho-back"),
  carrier: $("ho-carrier"),
  courier: $("ho-courier"),
  feedback: $("scan-feedback"),
  verdict: $("scan-verdict"),
  tracking: $("scan-tracking"),
  seq: $("scan-seq"),
  detail: $("scan-detail"),
  photoInput: $("photo-input"),
  capture: $("capture-button"),
  undo: $("undo-button"),
  finish: $("finish-button"),
  countExpected: $("count-expected"),
  countScanned: $("count-scanned"),
  countMissing: $("count-missing"),
  countExtra: $("count-extra"),
  scannedKg: $("scanned-kg"),
  scannedCod: $("scanned-cod"),
  missingDetails: $("missing-details"),
  missingSummary: $("missing-summary"),
  missingList: $("missing-list"),
  close: $("ho-close"),
  closeBack: $("close-back"),
  closeSummary: $("close-summary"),
  missingBox: $("missing-box"),
  missingWarning: $("missing-warning"),
  closeMissingList: $("close-missing-list"),
  missingForm: $("missing-form"),
  missingReason: $("missing-reason"),
  missingConfirm: $("missing-confirm"),
  missingConfirmed: $("missing-confirmed"),
  pinForm: $("pin-form"),
  pin: $("close-pin"),
  pinSubmit: $("close-pin-submit"),
  pad: $("signature-pad"),
  signClear: $("signature-clear"),
  signSubmit: $("close-signature-submit"),
  closeError: $("close-error"),
  done: $("ho-done"),
  doneTitle: $("done-title"),
  doneSummary: $("done-summary"),
  reprint: $("reprint-button"),
  reprintResult: $("reprint-result"),
  doneNext: $("done-next"),
};

const enc = encodeURIComponent;

let step = "carriers"; // "carriers" | "scan" | "close" | "done"
let carriers = [];
let view = null; // GET /api/handovers/{id}
let version = 0; // bumped by every answer that changes the view: older fetches are stale
let feedback = null; // {verdict, tracking, msg: {vi, en}}
let seq = 0; // answers shown so far
let lastScanOk = false; // an undo has something to take back
let queue = []; // [{code, source, at}] waiting for the station
let sending = false;
let busy = false; // a close, confirm, undo or reprint is out
let closeError = null; // {vi, en}
let notice = null; // {vi, en}
let reprinted = null; // {vi, en}
let signed = false; // the canvas holds a stroke
const missingItems = new Map(); // tracking -> <li> in the scan step's missing list

function isLead() {
  return Boolean(person) && person.role === "lead";
}

function errMsg(err) {
  return err instanceof ApiError ? err.msg : both("network_error");
}

function text(msg) {
  return msg ? msg[lang] || msg.vi : "";
}

// ---------------------------------------------------------------- sound

let audio = null;

/** A short beep: one high tone for a good scan, a mid one for a duplicate, two low
 * buzzes for a refusal. WebAudio only, no files; silent where the browser says no. */
function beep(kind) {
  try {
    if (!audio) {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return;
      audio = new Ctx();
    }
    if (audio.state === "suspended") audio.resume();
    const tones =
      kind === "good" ? [[1320, 0, 0.12]] : kind === "soft" ? [[660, 0, 0.18]] : [[220, 0, 0.16], [220, 0.22, 0.16]];
    const now = audio.currentTime;
    for (const [freq, start, length] of tones) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = kind === "bad" ? "square" : "sine";
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.2, now + start);
      gain.gain.exponentialRampToValueAtTime(0.001, now + start + length);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + start);
      osc.stop(now + start + length + 0.02);
    }
  } catch (_e) {
    /* no sound here: the colour says it */
  }
}

function verdictKind(verdict) {
  if (GOOD.includes(verdict)) return "good";
  if (SOFT.includes(verdict)) return "soft";
  return "bad";
}

// ---------------------------------------------------------------- steps

function show(next) {
  step = next;
  ui.carriers.hidden = step !== "carriers";
  ui.scan.hidden = step !== "scan";
  ui.close.hidden = step !== "close";
  ui.done.hidden = step !== "done";
  const id = view && step !== "carriers" ? "#" + view.id : "";
  if (window.location.hash !== id) {
    window.history.replaceState(null, "", window.location.pathname + window.location.search + id);
  }
  render();
}

async function loadCarriers() {
  try {
    carriers = await api("GET", "/handovers/carriers");
    notice = null;
  } catch (err) {
    notice = errMsg(err);
  }
  renderCarriers();
  renderNotice();
}

function span(cls, value, testid) {
  const s = document.createElement("span");
  if (cls) s.className = cls;
  if (testid) s.setAttribute("data-testid", testid);
  s.textContent = value;
  return s;
}

function renderCarriers() {
  ui.carrierList.textContent = "";
  for (const c of carriers) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.className = "ho-carrier-row";
    b.setAttribute("data-testid", "carrier-row");
    b.dataset.carrier = c.carrier;
    b.dataset.open = c.open_handover ? "true" : "false";
    b.append(
      span("ho-carrier-name", c.carrier, "carrier-name"),
      span("ho-carrier-waiting", t("ho_waiting", { n: c.waiting }), "carrier-waiting"),
      span("ho-carrier-action", t(c.open_handover ? "ho_resume" : "ho_start")),
    );
    b.addEventListener("click", () => openCarrier(c));
    li.appendChild(b);
    ui.carrierList.appendChild(li);
  }
  ui.carriersEmpty.hidden = carriers.length > 0;
}

async function openCarrier(c) {
  if (busy) return;
  busy = true;
  try {
    const v = c.open_handover
      ? await api("GET", "/handovers/" + enc(c.open_handover))
      : await api("POST", "/handovers", { carrier: c.carrier });
    openView(v);
  } catch (err) {
    notice = errMsg(err);
  } finally {
    busy = false;
    render();
  }
}

function openView(v) {
  setView(v);
  feedback = null;
  lastScanOk = false;
  closeError = null;
  reprinted = null;
  notice = null;
  show(v.status === "closed" ? "done" : "scan");
}

function setView(v) {
  view = v;
  version += 1;
  rebuildMissing();
}

async function refreshView() {
  if (!view || sending || busy || queue.length) return;
  const id = view.id;
  const asked = version;
  try {
    const v = await api("GET", "/handovers/" + enc(id));
    if (!view || view.id !== id || asked !== version || sending || queue.length) return;
    const changed = JSON.stringify(v) !== JSON.stringify(view);
    if (!changed) return;
    setView(v);
    if (v.status === "closed" && step !== "done") show("done");
    else render();
  } catch (_e) {
    /* the next round asks again */
  }
}

// ---------------------------------------------------------------- scanning

/** Queue one code read by the scanner (source "keyboard"): sent one at a time. */
function scanned(code, source) {
  if (!view || view.status !== "open") return;
  if (step !== "scan") show("scan");
  queue.push({ code: code, source: source });
  if (!sending) sendNext();
}

async function sendNext() {
  if (!queue.length || !view) {
    sending = false;
    return;
  }
  sending = true;
  const { code, source } = queue.shift();
  const id = view.id;
  try {
    const answer = await api("POST", "/handovers/" + enc(id) + "/scans", { code: code, source: source }, 8000);
    if (view && view.id === id) applyAnswer(answer, code);
  } catch (err) {
    showFeedback({ verdict: "error", tracking: code, msg: errMsg(err) });
  }
  sendNext();
}

/** One scan's answer: the view's counts and the missing list follow it, then feedback. */
function applyAnswer(answer, code) {
  version += 1;
  view.counts = answer.counts;
  view.scanned_g = answer.scanned_g;
  view.scanned_cod_dong = answer.scanned_cod_dong;
  if (answer.verdict === "accepted") {
    const item = view.expected.find((x) => x.tracking === answer.tracking);
    if (item) item.scanned = true;
    const li = missingItems.get(answer.tracking);
    if (li) {
      li.remove();
      missingItems.delete(answer.tracking);
    }
  } else if (answer.verdict !== "duplicate") {
    view.extra.push({ code: answer.tracking || code, verdict: answer.verdict, at: null });
  }
  lastScanOk = true;
  showFeedback({
    verdict: answer.verdict,
    tracking: answer.tracking || code,
    msg: answer.message ? { vi: answer.message, en: answer.message_en || answer.message } : null,
  });
}

function showFeedback(f) {
  feedback = f;
  seq += 1;
  renderFeedback();
  renderCounts();
  beep(f.verdict === "error" ? "bad" : verdictKind(f.verdict));
}

function renderFeedback() {
  const f = feedback;
  ui.feedback.dataset.verdict = f ? f.verdict : "idle";
  ui.feedback.dataset.kind = f ? (f.verdict === "error" ? "bad" : f.verdict === "undo" ? "soft" : verdictKind(f.verdict)) : "";
  ui.feedback.setAttribute("role", f && ui.feedback.dataset.kind === "bad" ? "alert" : "status");
  if (!f) ui.verdict.textContent = t("ho_ready");
  else if (f.verdict === "undo") ui.verdict.textContent = t("ho_undone");
  else if (f.verdict === "busy") ui.verdict.textContent = t("ho_photo_busy");
  else ui.verdict.textContent = t("verdict_" + f.verdict);
  ui.tracking.textContent = f ? f.tracking || "" : "";
  ui.tracking.title = f ? text(f.msg) : "";
  ui.seq.dataset.seq = String(seq);
  ui.detail.textContent = f && f.msg ? text(f.msg) : "";
}

async function undo() {
  if (!view || busy || sending) return;
  busy = true;
  renderButtons();
  try {
    setView(await api("POST", "/handovers/" + enc(view.id) + "/undo"));
    lastScanOk = false;
    showFeedback({ verdict: "undo", tracking: "", msg: null });
  } catch (err) {
    showFeedback({ verdict: "error", tracking: "", msg: errMsg(err) });
  } finally {
    busy = false;
    render();
  }
}

/** Photo answers (phone or station camera): each code's verdict, the last one shown. */
async function photoScan(path, body) {
  if (!view || busy) return;
  busy = true;
  const id = view.id;
  feedback = { verdict: "busy", tracking: "", msg: null };
  renderFeedback();
  renderButtons();
  try {
    const r = await api("POST", "/handovers/" + enc(id) + path, body, 20000);
    busy = false;
    const results = (r && r.results) || [];
    // an accepted answer last, so it is the one shown (a label's barcode and QR: one parcel)
    results.sort((a, b) => (a.verdict === "accepted") - (b.verdict === "accepted"));
    for (const answer of results) {
      if (view && view.id === id) applyAnswer(answer, answer.tracking || "");
    }
    if (!results.length) showFeedback({ verdict: "no_code", tracking: "", msg: null });
  } catch (err) {
    busy = false;
    showFeedback({ verdict: err.code === "no_code" ? "no_code" : "error", tracking: "", msg: errMsg(err) });
  } finally {
    busy = false;
    render();
  }
}

// ---------------------------------------------------------------- reconciliation

function missing() {
  return view ? view.expected.filter((x) => !x.scanned) : [];
}

function missingRow(x, testid) {
  const li = document.createElement("li");
  li.setAttribute("data-testid", testid);
  li.dataset.tracking = x.tracking;
  li.append(span("ho-missing-tracking", x.tracking), span("ho-missing-who", " " + (x.recipient || "")));
  return li;
}

/** The scan step's missing list drawn again (a scan only takes its row out). */
function rebuildMissing() {
  missingItems.clear();
  ui.missingList.textContent = "";
  for (const x of missing()) {
    const li = missingRow(x, "missing-item");
    missingItems.set(x.tracking, li);
    ui.missingList.appendChild(li);
  }
}

function renderCounts() {
  if (!view) return;
  const c = view.counts;
  ui.countExpected.textContent = String(c.expected);
  ui.countScanned.textContent = String(c.scanned);
  ui.countMissing.textContent = String(c.missing);
  ui.countExtra.textContent = String(c.extra);
  ui.countMissing.parentElement.dataset.some = String(c.missing > 0);
  ui.countExtra.parentElement.dataset.some = String(c.extra > 0);
  ui.scannedKg.textContent = formatKg(view.scanned_g);
  ui.scannedCod.textContent = t("ho_cod", { amount: formatDong(view.scanned_cod_dong || 0) });
  ui.missingSummary.textContent = c.missing ? t("ho_missing_summary", { n: c.missing }) : t("ho_missing_none");
  renderButtons();
}

function renderButtons() {
  const open = Boolean(view) && view.status === "open";
  ui.undo.disabled = !open || busy || !lastScanOk || !view.counts.scanned;
  ui.capture.disabled = !open || busy;
  ui.finish.disabled = !open || busy;
  ui.photoInput.disabled = !open || busy;
  ui.pinSubmit.disabled = !open || busy;
  ui.signSubmit.disabled = !open || busy || !signed;
  ui.missingConfirm.disabled = busy;
}

function renderScan() {
  if (!view) return;
  ui.carrier.textContent = view.carrier;
  ui.courier.textContent = view.courier ? t("ho_courier", { name: view.courier.name }) : "";
  ui.back.setAttribute("aria-label", t("ho_back"));
  ui.back.title = t("ho_back");
  renderFeedback();
  renderCounts();
}

// ---------------------------------------------------------------- closing

function summaryVars(v) {
  return {
    scanned: v.counts.scanned,
    expected: v.counts.expected,
    weight: formatKg(v.scanned_g),
    cod: formatDong(v.scanned_cod_dong || 0),
    carrier: v.carrier,
    courier: v.courier ? v.courier.name : "",
  };
}

function renderClose() {
  if (!view) return;
  ui.closeSummary.textContent = t("ho_close_summary", summaryVars(view));
  const lacking = missing();
  ui.missingBox.hidden = lacking.length === 0;
  ui.closeMissingList.textContent = "";
  for (const x of lacking) ui.closeMissingList.appendChild(missingRow(x, "close-missing-item"));
  ui.missingWarning.textContent =
    t("ho_missing_warning", { n: lacking.length }) + (isLead() || view.missing_confirmed ? "" : " " + t("ho_missing_lead"));
  ui.missingWarning.hidden = Boolean(view.missing_confirmed);
  ui.missingForm.hidden = !isLead() || Boolean(view.missing_confirmed);
  ui.missingReason.placeholder = t("ho_missing_reason_hint");
  ui.missingConfirmed.hidden = !view.missing_confirmed;
  ui.missingConfirmed.textContent = t("ho_missing_confirmed", { n: lacking.length });
  ui.closeError.hidden = !closeError;
  ui.closeError.textContent = text(closeError);
  ui.closeBack.setAttribute("aria-label", t("ho_back"));
  renderButtons();
}

async function confirmMissing(ev) {
  ev.preventDefault();
  const reason = ui.missingReason.value.trim();
  if (!reason) {
    closeError = both("reason_required");
    renderClose();
    ui.missingReason.focus();
    return;
  }
  if (!view || busy) return;
  busy = true;
  renderButtons();
  try {
    const v = await api("POST", "/handovers/" + enc(view.id) + "/missing", { reason: reason });
    setView(v);
    closeError = null;
  } catch (err) {
    closeError = errMsg(err);
  } finally {
    busy = false;
    render();
  }
}

async function closeWith(body) {
  if (!view || busy) return;
  busy = true;
  closeError = null;
  renderClose();
  try {
    const v = await api("POST", "/handovers/" + enc(view.id) + "/close", body, 15000);
    setView(v);
    ui.pin.value = "";
    clearSignature();
    show("done");
  } catch (err) {
    closeError = errMsg(err);
    ui.pin.value = "";
    refreshView();
  } finally {
    busy = false;
    render();
  }
}

function closeWithPin(ev) {
  ev.preventDefault();
  const pin = ui.pin.value.trim();
  if (!pin) {
    closeError = both("ho_need_pin");
    renderClose();
    return;
  }
  closeWith({ pin: pin });
}

// the signature: pointer events on the canvas, kept as a PNG data URL

let drawing = null; // the pointer id drawing, or null

function padPoint(ev) {
  const r = ui.pad.getBoundingClientRect();
  return [((ev.clientX - r.left) * ui.pad.width) / r.width, ((ev.clientY - r.top) * ui.pad.height) / r.height];
}

function wireSignature() {
  const ctx = ui.pad.getContext("2d");
  const clear = () => {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, ui.pad.width, ui.pad.height);
  };
  clear();
  ui.pad.addEventListener("pointerdown", (ev) => {
    ev.preventDefault();
    drawing = ev.pointerId;
    try {
      ui.pad.setPointerCapture(ev.pointerId);
    } catch (_e) {
      /* not captured: the stroke ends at the edge */
    }
    const [x, y] = padPoint(ev);
    ctx.beginPath();
    ctx.moveTo(x, y);
  });
  ui.pad.addEventListener("pointermove", (ev) => {
    if (drawing !== ev.pointerId) return;
    const [x, y] = padPoint(ev);
    ctx.lineWidth = 3;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.strokeStyle = "#111";
    ctx.lineTo(x, y);
    ctx.stroke();
    if (!signed) {
      signed = true;
      renderButtons();
    }
  });
  const end = (ev) => {
    if (drawing === ev.pointerId) drawing = null;
  };
  ui.pad.addEventListener("pointerup", end);
  ui.pad.addEventListener("pointercancel", end);
  ui.signClear.addEventListener("click", clearSignature);
  ui.signSubmit.addEventListener("click", () => {
    if (!signed) {
      closeError = both("ho_need_pin");
      renderClose();
      return;
    }
    closeWith({ signature_png: ui.pad.toDataURL("image/png") });
  });
  clearSignature.paint = clear;
}

function clearSignature() {
  if (clearSignature.paint) clearSignature.paint();
  signed = false;
  renderButtons();
}

// ---------------------------------------------------------------- done

function renderDone() {
  if (!view) return;
  ui.doneTitle.textContent = view.status === "closed" ? t("ho_done") : t("ho_closed_already");
  ui.doneSummary.textContent = t("ho_done_summary", summaryVars(view));
  ui.doneSummary.dataset.manifest = view.manifest_job_id || "";
  ui.reprintResult.hidden = !reprinted;
  ui.reprintResult.textContent = text(reprinted);
  ui.reprint.disabled = busy;
}

async function reprint() {
  if (!view || busy) return;
  busy = true;
  renderDone();
  try {
    await api("POST", "/handovers/" + enc(view.id) + "/reprint", {});
    reprinted = both("ho_reprinted");
  } catch (err) {
    reprinted = errMsg(err);
  } finally {
    busy = false;
    renderDone();
  }
}

function backToCarriers() {
  view = null;
  feedback = null;
  queue = [];
  show("carriers");
  loadCarriers();
}

// ---------------------------------------------------------------- page

function renderNotice() {
  ui.notice.hidden = !notice;
  ui.notice.textContent = text(notice);
}

function render() {
  ui.subtitle.textContent = view && step !== "carriers" ? view.carrier : "";
  renderNotice();
  if (step === "carriers") renderCarriers();
  if (step === "scan") renderScan();
  if (step === "close") renderClose();
  if (step === "done") renderDone();
}

function applyLanguage() {
  document.documentElement.lang = lang;
  document.title = t("ho_title");
  document.querySelectorAll("[data-i18n]").forEach((node) => {
    node.textContent = t(node.dataset.i18n);
  });
  ui.langToggle.textContent = t("lang_button");
  ui.langToggle.lang = lang === "vi" ? "en" : "vi";
  renderPerson();
  render();
}

async function start() {
  ui.langToggle.addEventListener("click", () => {
    toggleLang();
    applyLanguage();
  });
  applyLanguage();
  await signIn();
  ui.home.hidden = person.role === "courier";
  applyLanguage();
  if (person.role !== "courier" && person.role !== "lead") {
    notice = both("ho_wrong_role");
    renderNotice();
    return;
  }
  catchScans(
    () => true,
    (code, at) => {
      window.__handoverEnterAt = at; // bench/handover_page.py: Enter to painted feedback
      if (view && view.status === "open" && (step === "scan" || step === "close")) scanned(code, "keyboard");
    },
  );
  ui.back.addEventListener("click", backToCarriers);
  ui.finish.addEventListener("click", () => {
    closeError = null;
    show("close");
    refreshView();
  });
  ui.closeBack.addEventListener("click", () => show("scan"));
  ui.undo.addEventListener("click", undo);
  ui.capture.addEventListener("click", () => photoScan("/scans/capture", undefined));
  ui.photoInput.addEventListener("change", () => {
    const file = ui.photoInput.files && ui.photoInput.files[0];
    ui.photoInput.value = "";
    if (file) photoScan("/scans/photo", file);
  });
  ui.missingForm.addEventListener("submit", confirmMissing);
  ui.pinForm.addEventListener("submit", closeWithPin);
  ui.reprint.addEventListener("click", reprint);
  ui.doneNext.addEventListener("click", backToCarriers);
  wireSignature();
  window.addEventListener("hashchange", () => {
    const id = window.location.hash.slice(1);
    if (id && (!view || view.id !== id)) openId(id);
  });
  setInterval(() => {
    if (document.hidden) return;
    if (step === "scan" || step === "close") refreshView();
    else if (step === "carriers") loadCarriers();
  }, POLL_MS);
  const id = window.location.hash.slice(1);
  if (id) await openId(id);
  else {
    show("carriers");
    await loadCarriers();
  }
  document.body.dataset.ready = "true";
}

async function openId(id) {
  try {
    openView(await api("GET", "/handovers/" + enc(id)));
  } catch (err) {
    notice = errMsg(err);
    show("carriers");
    loadCarriers();
  }
}

start();
