/* people.js: the lead's "Người dùng" card in the station tab (issue 12). Who may sign
 * in here, with role and state; add staff, couriers and leads with a first PIN; give
 * someone a new PIN (which also unlocks them and ends their sessions); disable or
 * enable an account. Nothing is deleted. Technicians are added on the station itself
 * (edge users add). The station checks the role; this card only shows for leads.
 */
import { api, ApiError } from "./api.js";
import { lang, t } from "./i18n.js";
import { $ } from "./page.js";
import { person } from "./signin.js";

let parts = null;

function node(tag, testid, cls, text) {
  const n = document.createElement(tag);
  if (testid) n.setAttribute("data-testid", testid);
  if (cls) n.className = cls;
  if (text !== undefined) n.textContent = text;
  return n;
}

function say(kind, text) {
  parts.note.dataset.kind = kind;
  parts.note.textContent = text;
  parts.note.hidden = !text;
}

function errorText(err) {
  return err instanceof ApiError ? err.msg[lang] : String(err);
}

function pinInput(testid) {
  const pin = node("input", testid);
  pin.type = "password";
  pin.inputMode = "numeric";
  pin.autocomplete = "new-password";
  pin.minLength = 4;
  pin.maxLength = 8;
  pin.pattern = "[0-9]{4,8}";
  pin.required = true;
  pin.placeholder = t("people_pin");
  return pin;
}

function row(p) {
  const li = node("li", "person-row", "person-row");
  li.dataset.personId = p.id;
  let state = "";
  if (p.disabled) state = t("people_disabled");
  else if (p.locked_until) state = t("people_locked");
  li.append(node("span", "person-row-name", "person-row-name", p.name));
  li.append(node("span", "person-row-role", "pill", t("role_" + p.role)));
  if (state) li.append(node("span", "person-row-state", "pill", state));
  if (p.role === "technician" || p.id === person.id) return li;

  const pin = pinInput("person-new-pin");
  const setPin = node("button", "person-set-pin", "btn", t("people_set_pin"));
  setPin.type = "button";
  setPin.addEventListener("click", async () => {
    if (!pin.reportValidity()) return;
    try {
      await api("POST", "/people/" + encodeURIComponent(p.id) + "/pin", { pin: pin.value });
      say("ok", t("people_pin_done", { name: p.name }));
      refresh();
    } catch (err) {
      say("error", errorText(err));
    }
  });
  const toggle = node("button", "person-toggle", "btn", t(p.disabled ? "people_enable" : "people_disable"));
  toggle.type = "button";
  toggle.addEventListener("click", async () => {
    try {
      await api("POST", "/people/" + encodeURIComponent(p.id) + "/disabled", { disabled: !p.disabled });
      refresh();
    } catch (err) {
      say("error", errorText(err));
    }
  });
  li.append(pin, setPin, toggle);
  return li;
}

async function refresh() {
  try {
    const people = await api("GET", "/people");
    parts.list.replaceChildren(...people.map(row));
  } catch (err) {
    say("error", errorText(err));
  }
}

function build() {
  const card = node("div", "people-card", "card people-card");
  const title = node("h2", null, null, t("people_title"));
  const list = node("ul", "people-list", "people-list");
  const form = node("form", "person-form", "person-form");
  form.autocomplete = "off";
  const name = node("input", "person-name-input");
  name.required = true;
  name.maxLength = 60;
  name.placeholder = t("people_name");
  const role = node("select", "person-role");
  for (const r of ["staff", "courier", "lead"]) {
    const opt = node("option", null, null, t("role_" + r));
    opt.value = r;
    role.appendChild(opt);
  }
  const pin = pinInput("person-pin");
  const add = node("button", "person-add", "btn btn-primary", t("people_add"));
  add.type = "submit";
  form.append(name, role, pin, add);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const made = await api("POST", "/people", { name: name.value.trim(), role: role.value, pin: pin.value });
      say("ok", t("people_added", { name: made.name }));
      name.value = "";
      pin.value = "";
      refresh();
    } catch (err) {
      say("error", errorText(err));
    }
  });
  const note = node("p", "people-note", "people-note");
  note.setAttribute("role", "status");
  note.hidden = true;
  card.append(title, list, form, note);
  return { card, list, note };
}

/** Adds the card to the station tab when a lead is signed in. */
export function wirePeople() {
  if (!person || person.role !== "lead" || parts) return;
  const panel = $("panel-station");
  if (!panel) return;
  parts = build();
  panel.appendChild(parts.card);
  refresh();
}

/** After a language switch: the card again, in the page's language. */
export function renderPeople() {
  if (!parts) return;
  const old = parts.card;
  parts = build();
  old.replaceWith(parts.card);
  refresh();
}
