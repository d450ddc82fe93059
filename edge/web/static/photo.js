/* photo.js: the camera's status and the photo and grade step of a lot.
 *
 * After "Ghi & In" (or a lot's photo button) the photo card opens: take a photo with
 * the station camera or upload one from a phone, see the proposed grade and the
 * measurements behind it (or why the photo was declined), and confirm or change the
 * grade with one button, as the signed-in person.
 *
 * A photo the station is not sure of ("unsure": its model found no grade cheaper than
 * asking) is not the photo's fault: the card shows the station's words (the two likely
 * grades) without asking for another photo, and only a lead may choose the grade; other
 * staff see that a lead must decide (the station refuses them too: unsure_needs_lead).
 */
import { api } from "./api.js";
import { faultText } from "./faults.js";
import { gradeLabel } from "./format.js";
import { both, lang, t } from "./i18n.js";
import { refreshLots } from "./lots.js";
import { el, live, showError, showMessage } from "./page.js";
import { person } from "./signin.js";

let photoView = null; // GET /api/lots/{id}/photos: lot, grades, photo, proposal
let photoBusy = false;
let cameraState = null; // the "camera" part of /api/state

// ---------------------------------------------------------------- camera status

/** The status card's camera row and photo storage use, from /api/state's camera. */
export function renderCamera(cam) {
  cameraState = cam || null;
  const status = (cam && cam.status) || "unknown";
  el.cameraStatus.dataset.status = status;
  const known = ["ok", "ready", "no_device", "error", "none"].includes(status);
  el.cameraStatus.textContent = known ? t("camera_" + status) : "–";
  const photos = cam && cam.photos;
  const mb = (b) => (b / 1048576).toFixed(b < 10485760 ? 1 : 0);
  el.photosUsage.textContent = photos
    ? t("photos_usage", { used: mb(photos.total_bytes), limit: mb(photos.limit_bytes) })
    : "";
  el.photosOver.hidden = !(photos && photos.over_limit);
  el.photosOver.textContent =
    photos && photos.over_limit
      ? t("photos_over", { used: mb(photos.total_bytes), limit: mb(photos.limit_bytes) })
      : "";
  renderPhotoButtons();
}

function renderPhotoButtons() {
  const cam = cameraState;
  const none = cam && cam.status === "none";
  el.captureButton.hidden = Boolean(none);
  el.captureButton.disabled = photoBusy || !live.connected;
  el.uploadButton.classList.toggle("is-disabled", photoBusy);
  el.uploadInput.disabled = photoBusy;
  el.photoBusy.hidden = !photoBusy;
  const problem = cam && (cam.status === "no_device" || cam.status === "error");
  const text = problem ? faultText(cam.fault) : "";
  el.cameraProblem.hidden = !text;
  el.cameraProblem.textContent = text || "";
}

// ---------------------------------------------------------------- the photo card

/** Open the photo step for this lot (after recording it, or from the lots table). */
export async function openPhoto(lotId) {
  try {
    photoView = await api("GET", "/lots/" + encodeURIComponent(lotId) + "/photos");
    renderPhoto();
    if (typeof el.photoCard.scrollIntoView === "function") {
      el.photoCard.scrollIntoView({ block: "nearest" });
    }
    if (photoView.lead_decides) scrollToNote(); // a lead comes to choose the grade
  } catch (err) {
    showError(err);
  }
}

/** The lot's proposal: its latest graded photo's grade (a later declined photo keeps it). */
function proposalOf(view) {
  const g = view && view.grade;
  if (!g || !g.proposed_grade) return null;
  const source = view.photos.find((p) => p.id === g.photo_id);
  const result = source && source.grading;
  return { grade: g.proposed_grade, confidence: g.confidence, reasons: (result && result.reasons) || [] };
}

export function renderPhoto() {
  const view = photoView;
  el.photoCard.hidden = !view;
  renderPhotoButtons();
  if (!view) return;
  el.photoCard.dataset.lotId = view.lot_id;
  el.photoLot.textContent = "— " + t("lot_short", { seq: view.seq }) + " · " + view.product_name;

  const photo = view.photo;
  el.photoResult.hidden = !photo;
  el.photoResult.dataset.photoId = photo ? photo.id : "";
  if (photo) {
    if (el.photoThumb.getAttribute("src") !== photo.thumb_url) el.photoThumb.src = photo.thumb_url;
    el.photoThumb.width = photo.thumb_width;
    el.photoThumb.height = photo.thumb_height;
    // The full photo with outlines, sizes and defects drawn; the thumbnail once retention
    // has removed the full one.
    el.photoLink.href = photo.url ? "/api/photos/" + encodeURIComponent(photo.id) + "/annotated.png" : photo.thumb_url;
  }
  const result = photo && photo.grading;
  const proposal = proposalOf(view);
  el.proposalGrade.textContent = proposal
    ? t("proposal", { grade: gradeLabel(proposal.grade), pct: Math.round(proposal.confidence * 100) })
    : t("proposal_none");
  el.proposalGrade.dataset.grade = proposal ? proposal.grade : "";
  el.reasons.textContent = "";
  // The station's short reasons (at most three, the one that set the grade first).
  for (const r of ((proposal && proposal.reasons) || []).slice(0, 3)) {
    const li = document.createElement("li");
    li.setAttribute("data-testid", "reason");
    li.dataset.passed = String(Boolean(r.passed));
    li.dataset.deciding = String(Boolean(r.deciding));
    li.textContent = lang === "en" ? r.text_en : r.text_vi;
    el.reasons.appendChild(li);
  }
  // Declined, no rules or an error: the station's own words, with what to do.
  const note = result && result.status !== "graded" ? result : null;
  const unsure = Boolean(note && note.reason === "unsure");
  const leadOnly = Boolean(view.lead_decides) && !isLead();
  el.photoNote.hidden = !note;
  el.photoNote.dataset.status = note ? note.status : "";
  el.photoNote.dataset.reason = (note && note.reason) || "";
  el.photoNote.textContent = note
    ? note.status === "declined" && !unsure
      ? t("photo_declined", { message: lang === "en" ? note.message_en : note.message })
      : lang === "en" ? note.message_en : note.message
    : "";
  if (unsure) {
    // Who decides: this lead, or a lead this person must fetch.
    const who = document.createElement("span");
    who.className = "photo-note-who";
    who.setAttribute("data-testid", "unsure-who");
    who.dataset.lead = String(!leadOnly);
    who.textContent = t(leadOnly ? "unsure_staff" : "unsure_lead");
    el.photoNote.appendChild(who);
  }

  const grade = view.grade || {};
  el.gradeButtons.textContent = "";
  for (const g of view.grades) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "btn grade-btn";
    b.setAttribute("data-testid", "grade-" + g);
    b.dataset.grade = g;
    b.textContent = g === "reject" ? t("grade_reject") : g;
    b.setAttribute("aria-pressed", String(grade.grade === g));
    if (proposal && proposal.grade === g) b.classList.add("proposed");
    b.disabled = photoBusy || leadOnly;
    b.addEventListener("click", () => confirmGrade(g));
    el.gradeButtons.appendChild(b);
  }
  el.gradeConfirmed.hidden = !grade.grade;
  if (grade.grade) {
    const overridden = grade.proposed_grade && grade.proposed_grade !== grade.grade;
    el.gradeConfirmed.textContent = overridden
      ? t("grade_overridden", {
          grade: gradeLabel(grade.grade),
          proposed: gradeLabel(grade.proposed_grade),
          by: grade.confirmed_by,
        })
      : t("grade_confirmed", { grade: gradeLabel(grade.grade), by: grade.confirmed_by });
  }
  el.gradeConfirmed.dataset.grade = grade.grade || "";
}

/** A lead chooses the grade of a lot the station was not sure of (until the person is
 * known the page acts as a lead would; the station refuses what the role may not do). */
function isLead() {
  return !person || person.role === "lead";
}

// ---------------------------------------------------------------- photo and grade requests

/** One photo request at a time; send(lotId) resolves to the lot's new photo view. */
async function photoRequest(send) {
  if (photoBusy || !photoView) return;
  photoBusy = true;
  renderPhoto();
  try {
    photoView = await send(photoView.lot_id);
    const result = photoView.photo && photoView.photo.grading;
    if (result && result.status === "graded") {
      showMessage("ok", both("photo_stored", () => ({ seq: photoView.seq })));
    } else if (result && result.reason === "unsure") {
      showMessage("warn", { vi: result.message, en: result.message_en }); // not an error
    } else if (result) {
      showMessage("error", { vi: result.message, en: result.message_en });
    }
  } catch (err) {
    showError(err);
    // Other produce than the lot's: the photo is kept, not graded; show it with why.
    if (err.code === "not_the_product") await reloadPhotoView();
  } finally {
    photoBusy = false;
    renderPhoto();
    refreshLots();
  }
  // Not sure of the grade: the station's words and who decides, in view beside the grades.
  if (!el.photoNote.hidden && el.photoNote.dataset.reason === "unsure") scrollToNote();
}

function scrollToNote() {
  if (typeof el.photoNote.scrollIntoView === "function") el.photoNote.scrollIntoView({ block: "nearest" });
}

async function reloadPhotoView() {
  if (!photoView) return;
  try {
    photoView = await api("GET", "/lots/" + encodeURIComponent(photoView.lot_id) + "/photos");
  } catch (_e) {
    /* the error already shown says what to do */
  }
}

function capturePhoto() {
  photoRequest((lotId) => api("POST", "/lots/" + encodeURIComponent(lotId) + "/capture", undefined, 60000));
}

function uploadPhoto() {
  const file = el.uploadInput.files && el.uploadInput.files[0];
  el.uploadInput.value = "";
  if (!file) return;
  photoRequest((lotId) => api("POST", "/lots/" + encodeURIComponent(lotId) + "/photos", file, 120000));
}

async function confirmGrade(g) {
  if (photoBusy || !photoView) return;
  photoBusy = true;
  renderPhoto();
  try {
    const res = await api("POST", "/lots/" + encodeURIComponent(photoView.lot_id) + "/grade", {
      grade: g, // confirmed by whoever is signed in (the station knows)
    });
    photoView = res;
    showMessage(
      "ok",
      both("grade_confirmed_msg", () => ({ seq: res.seq, grade: gradeLabel(res.confirmation.grade) })),
    );
  } catch (err) {
    showError(err);
  } finally {
    photoBusy = false;
    renderPhoto();
    refreshLots();
  }
}

export function wirePhoto() {
  el.captureButton.addEventListener("click", capturePhoto);
  el.uploadInput.addEventListener("change", uploadPhoto);
  el.photoClose.addEventListener("click", () => {
    photoView = null;
    renderPhoto();
  });
}
