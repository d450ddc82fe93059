/* format.js: values as the staff read them, in Vietnamese or English.
 *
 * Weights arrive as integer grams and show as kg with three decimals ("12,345 kg" in
 * Vietnamese, "12.345 kg" in English); money is integer đồng ("1.200.000 đ"); times
 * are the site's clock (its time zone once /api/state has told us); grades are named.
 */
import { lang, t } from "./i18n.js";

function groupDigits(digits, sep) {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, sep);
}

/** Integer grams as kg with three decimals: "12,345 kg" in Vietnamese, "12.345 kg" in English. */
export function formatKg(grams, inLang) {
  if (typeof grams !== "number" || !Number.isFinite(grams)) return "– kg";
  const l = inLang || lang;
  const g = Math.round(grams);
  const abs = Math.abs(g);
  const whole = groupDigits(String(Math.floor(abs / 1000)), l === "vi" ? "." : ",");
  const frac = String(abs % 1000).padStart(3, "0");
  return (g < 0 ? "−" : "") + whole + (l === "vi" ? "," : ".") + frac + " kg";
}

/** Integer đồng, dot-grouped: "1.200.000 đ". */
export function formatDong(dong) {
  return groupDigits(String(Math.round(dong)), ".") + " đ";
}

let siteTimeZone = null;

/** The site's IANA time zone (from /api/state): times show on the station's clock. */
export function setSiteTimeZone(zone) {
  siteTimeZone = zone;
}

/** An ISO timestamp as HH:MM in the site's time zone; "–" when it cannot be read. */
export function formatTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "–";
  const opts = { hour: "2-digit", minute: "2-digit", hour12: false };
  if (siteTimeZone) opts.timeZone = siteTimeZone;
  try {
    return new Intl.DateTimeFormat("vi-VN", opts).format(d);
  } catch (_e) {
    return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
  }
}

/** A grade as the staff say it: "Hạng A" / "Grade A", or "Loại bỏ" / "Reject" (as edge.gradenames). */
export function gradeLabel(g) {
  return g === "reject" ? t("grade_reject") : t("grade_name", { grade: g });
}
