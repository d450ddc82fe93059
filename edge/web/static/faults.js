/* faults.js: a device fault as staff read it.
 *
 * The station sends each device's fault as {code, message (Vietnamese), message_en}
 * (edge/faults.py): one sentence saying what happened and what to do, never the raw
 * error. faultText() picks the page's language; "" when there is no fault.
 */
import { lang } from "./i18n.js";

export function faultText(fault) {
  if (!fault || typeof fault !== "object") return "";
  const text = (lang === "en" && fault.message_en) || fault.message;
  return typeof text === "string" ? text : "";
}
