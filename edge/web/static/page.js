/* page.js: what every part of the page shares.
 *
 * - el: the page's elements, found once by their data-testid (index.html);
 * - live: what the last GET /api/state said (written only by station.js);
 * - the message box under the record button: one message at a time, kept in both
 *   languages so it survives a language switch.
 */
import { ApiError } from "./api.js";
import { both, lang } from "./i18n.js";

/** The element with this data-testid. */
export const $ = (id) => document.querySelector('[data-testid="' + id + '"]');

export const el = {
  site: $("site-name"),
  langToggle: $("lang-toggle"),
  banner: $("connection-banner"),
  weight: $("weight"),
  weightLabel: document.querySelector(".weight-label"),
  scaleStatus: $("scale-status"),
  scaleStatusText: document.querySelector(".scale-status-text"),
  scaleDetail: $("scale-detail"),
  tareInfo: $("tare-info"),
  tareButton: $("tare-button"),
  tareClear: $("tare-clear-button"),
  zeroButton: $("zero-button"),
  producerSelect: $("producer-select"),
  productSelect: $("product-select"),
  producerToggle: $("producer-add-toggle"),
  productToggle: $("product-add-toggle"),
  producerForm: $("producer-form"),
  productForm: $("product-form"),
  record: $("record-button"),
  recordHint: $("record-hint"),
  message: $("message"),
  outboxPending: $("outbox-pending"),
  linkStatus: $("link-status"),
  linkPlaintext: $("link-plaintext"),
  printerStatus: $("printer-status"),
  printerQueued: $("printer-queued"),
  printerError: $("printer-error"),
  held: $("held-jobs"),
  heldList: $("held-list"),
  sim: $("simulator"),
  simForm: $("sim-form"),
  simWeight: $("sim-weight"),
  lotsBody: $("lots-body"),
  lotsEmpty: $("lots-empty"),
  lotsCount: $("lots-count"),
  productGrading: $("product-grading"),
  cameraStatus: $("camera-status"),
  photosUsage: $("photos-usage"),
  photosOver: $("photos-over"),
  photoCard: $("photo-card"),
  photoLot: $("photo-lot"),
  photoClose: $("photo-close"),
  captureButton: $("capture-button"),
  uploadButton: $("upload-button"),
  uploadInput: $("upload-input"),
  cameraProblem: $("camera-problem"),
  photoBusy: $("photo-busy"),
  photoResult: $("photo-result"),
  photoLink: $("photo-link"),
  photoThumb: $("photo-thumb"),
  proposalGrade: $("proposal-grade"),
  reasons: $("reasons"),
  photoNote: $("photo-note"),
  gradeButtons: $("grade-buttons"),
  gradeConfirmed: $("grade-confirmed"),
};

/** The station as last seen; station.js polls and writes it, the others read it. */
export const live = {
  station: null, // last GET /api/state body
  connected: false, // the last poll was answered
  polled: false, // at least one poll has finished (no "connection lost" banner before)
};

// ---------------------------------------------------------------- the message box

let message = null; // {kind, msg: {vi, en}}

/** kind "ok" or "error"; msg {vi, en}. Replaces the message shown and scrolls to it. */
export function showMessage(kind, msg) {
  message = { kind: kind, msg: msg };
  delete el.message.dataset.lotId;
  delete el.message.dataset.seq;
  renderMessage();
  if (typeof el.message.scrollIntoView === "function") {
    el.message.scrollIntoView({ block: "nearest" });
  }
}

/** In English the Vietnamese original follows, for staff who read both. */
export function renderMessage() {
  const box = el.message;
  box.textContent = "";
  if (!message) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  box.dataset.kind = message.kind;
  box.setAttribute("role", message.kind === "error" ? "alert" : "status");
  const main = document.createElement("p");
  main.className = "message-main";
  main.textContent = message.msg[lang] || message.msg.vi;
  box.appendChild(main);
  if (lang === "en" && message.msg.vi && message.msg.vi !== message.msg.en) {
    const second = document.createElement("p");
    second.className = "message-second";
    second.lang = "vi";
    second.textContent = message.msg.vi;
    box.appendChild(second);
  }
}

/** The station's own words for an ApiError; anything else reads as a network error. */
export function showError(err) {
  if (err instanceof ApiError) showMessage("error", err.msg);
  else showMessage("error", both("network_error"));
}
