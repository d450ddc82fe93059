/* i18n.js: the page's language and its texts.
 *
 * Vietnamese first; the "English" button switches the page and the choice is kept on
 * this device. t() looks a key up in strings.js in the chosen language (a key missing
 * in English falls back to Vietnamese); both() gives one message in both languages,
 * for texts that must survive a language switch.
 */
import { STRINGS } from "./strings.js";

/** "vi" or "en"; importers see it change (an ES module live binding). */
export let lang = readLang();

function readLang() {
  try {
    return window.localStorage.getItem("station.lang") === "en" ? "en" : "vi";
  } catch (_e) {
    return "vi";
  }
}

/** Vietnamese to English and back; remembered on this device when storage allows. */
export function toggleLang() {
  lang = lang === "vi" ? "en" : "vi";
  try {
    window.localStorage.setItem("station.lang", lang);
  } catch (_e) {
    /* private mode: the choice lasts until reload */
  }
}

function fill(template, vars) {
  return template.replace(/\{(\w+)\}/g, (m, k) => (vars && k in vars ? String(vars[k]) : m));
}

/** The text for key in inLang (default: the page's language), {name} filled from vars. */
export function t(key, vars, inLang) {
  const table = STRINGS[inLang || lang];
  const text = key in table ? table[key] : STRINGS.vi[key] || key;
  return fill(text, vars);
}

/** Both languages of one message: {vi, en}; varsFor(lang) gives each one's values. */
export function both(key, varsFor) {
  return {
    vi: t(key, varsFor ? varsFor("vi") : undefined, "vi"),
    en: t(key, varsFor ? varsFor("en") : undefined, "en"),
  };
}
